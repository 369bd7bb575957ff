"""One mailbox's IDLE connection, in a thread of its own.

A watcher logs in (the poller's `connect`, TLS verified), checks the IDLE
capability (a server without it ends the watcher with `unsupported` set: the
mailbox stays with polling) and opens INBOX read-only. Then, in a loop:

* IDLE, then fetch whatever arrived before IDLE began (Dovecot, for one, reports
  only the changes made once IDLE is running), then wait for untagged responses;
* on `EXISTS`: fetch at once through `poll_address` on a connection of its own,
  while this one stays in IDLE — the poller's own path, under its per-mailbox lock,
  with its watermark, batches and error records, so IDLE and polling never fetch
  the same mailbox at the same time and nothing is stored twice. When a poll holds
  the lock, the fetch waits for it and runs after it (the poll may have searched
  before the new message arrived);
* before `IDLE_RENEW_SECONDS` (RFC 2177's 29 minutes at most): DONE, and IDLE again
  (with the fetch after it, for what arrived in between).

Any network or protocol error closes the connection and retries after
`IDLE_RETRY_SECONDS`, doubled after each failure up to `IDLE_MAX_BACKOFF`; the
catch-up fetch after reconnecting stores what arrived meanwhile. `stop()` (from
another thread) shuts the socket down, which wakes the wait at once.

Redis unreachable: a fetch cannot take the poll lock, so it is owed (`owed`) and
tried again every `IDLE_RETRY_SECONDS` while the connection stays in IDLE (no
reconnect, no log line per attempt: the supervisor reports the outage once); the
first try after Redis answers stores what arrived meanwhile, once.

`healthy` is true while the connection is established and idling; the process
turns it into the mailbox's heartbeat for cron. `since`, `last_exists` and
`last_reissue` (wall-clock seconds) and `last_error` are what Ops › Inbound mail shows
(`status_fields()`, written to Redis by the process with each renewal).
"""
from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass

from flask import Flask
from imapclient import IMAPClient
from redis.exceptions import RedisError

from app.runtime.imap import connect
from app.runtime.live import PublishedAddress
from app.runtime.poll import NotPollable, describe_error, poll_address

log = logging.getLogger(__name__)

FOLDER = "INBOX"
#: Longest single wait for the server, so a wait never outlives a lost wake-up by much.
MAX_WAIT = 300.0
#: How often a fetch asks again for a poll lock another poller holds.
LOCK_RETRY = 0.1


@dataclass(frozen=True)
class WatchSettings:
    renew_seconds: float
    retry_seconds: float
    max_backoff: float
    lock_seconds: float

    @classmethod
    def from_config(cls, config) -> WatchSettings:
        return cls(renew_seconds=float(min(config["IDLE_RENEW_SECONDS"], 29 * 60)),
                   retry_seconds=float(config["IDLE_RETRY_SECONDS"]),
                   max_backoff=float(config["IDLE_MAX_BACKOFF"]),
                   lock_seconds=float(config["POLL_LOCK_SECONDS"]))


def _has_exists(responses) -> bool:
    return any(len(r) >= 2 and r[1] == b"EXISTS" for r in responses)


class MailboxWatcher(threading.Thread):
    """Keeps one mailbox in IDLE and fetches on EXISTS until `stop()`; see the module docstring."""

    def __init__(self, app: Flask, address: PublishedAddress, fingerprint: str, settings: WatchSettings,
                 gate: threading.Semaphore) -> None:
        super().__init__(name=f"idle-{address.id}", daemon=True)
        self.app = app
        self.gate = gate  # the process's limit on logins and fetches running at once
        self.address = address
        self.fingerprint = fingerprint
        self.settings = settings
        self.healthy = False
        self.unsupported = False
        self.gone = False  # the address is no longer pollable (unpublished between refreshes)
        self.errors = 0
        self.last_error: str | None = None
        self.fetches = 0
        self.owed = False  # a fetch failed for want of Redis (the poll lock): try again while idling
        self.since: float | None = None  # when this connection began to idle (None while not connected)
        self.last_exists: float | None = None  # the last EXISTS the server sent
        self.last_reissue: float | None = None  # the last DONE + IDLE before the server's timeout
        self._stopping = threading.Event()
        self._client: IMAPClient | None = None

    # --- control, from the supervisor's thread -------------------------------------------------

    def stop(self) -> None:
        """Ask the watcher to end; wakes a wait on the server at once."""
        self._stopping.set()
        client = self._client
        if client is not None:
            _shutdown(client)

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    # --- the thread ----------------------------------------------------------------------------

    def run(self) -> None:
        while not self._stopping.is_set():
            delay = 0.0
            try:
                self._session()
            except Exception as exc:  # noqa: BLE001 - any failure: reconnect after a backoff
                if self._stopping.is_set():
                    break
                self.errors += 1
                self.last_error = describe_error(exc)
                delay = min(self.settings.retry_seconds * 2 ** (self.errors - 1), self.settings.max_backoff)
                log.warning("IDLE on %s failed (%s); reconnecting in %.0f s",
                            self.address.address, self.last_error, delay)
            finally:
                self.healthy = False
                self.since = None
                self._close()
            if self.unsupported or self.gone:
                return
            self._stopping.wait(delay)

    def _session(self) -> None:
        with self.gate:
            with self.app.app_context():
                client = connect(self.address)
            self._client = client
            if self._stopping.is_set():
                return
            if not client.has_capability("IDLE"):
                log.info("%s: the server does not offer IDLE; the mailbox stays with polling", self.address.address)
                self.unsupported = True
                return
            client.select_folder(FOLDER, readonly=True)
        while not self._stopping.is_set() and not self.gone:
            client.idle()
            if self.since is None:
                self.since = time.time()
            else:
                self.last_reissue = time.time()
            self.healthy = True
            self.errors = 0
            # Dovecot reports only what changes once IDLE has begun: what arrived before (while nobody
            # watched, or between DONE and IDLE) is fetched now, with the connection already listening.
            self._fetch()
            self._listen(client, time.monotonic() + self.settings.renew_seconds)
            if self._stopping.is_set():
                return
            client.idle_done()  # renewal due, or a wake-up with nothing read: DONE fails on a closed connection

    def _listen(self, client: IMAPClient, deadline: float) -> None:
        """Stay in IDLE and fetch on each EXISTS, until the renewal deadline or a wake-up with nothing read."""
        while not self._stopping.is_set() and not self.gone:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            wait = min(remaining, MAX_WAIT, self.settings.retry_seconds if self.owed else MAX_WAIT)
            started = time.monotonic()
            responses = client.idle_check(timeout=wait)
            if _has_exists(responses):
                self.last_exists = time.time()
                self._fetch()  # on its own connection; the IDLE one keeps listening meanwhile
            elif not responses and time.monotonic() - started < wait - 0.05:
                return  # most likely the server closed the connection (imapclient swallows the EOF)
            elif self.owed:
                self._fetch()  # Redis was down at the last fetch: try again

    def status_fields(self) -> dict[str, str]:
        """What the process publishes about this watcher (`app.runtime.idle.leases.idle_statuses` reads it)."""
        fields = {"since": self.since, "last_exists": self.last_exists, "last_reissue": self.last_reissue,
                  "last_error": self.last_error if not self.healthy else None}
        return {name: str(value) for name, value in fields.items() if value is not None}

    def _fetch(self) -> None:
        """Fetch new mail now through the poller (its lock, watermark and ingest); waits out a running poll.
        Without Redis (no poll lock) the fetch is owed instead: see the module docstring."""
        deadline = time.monotonic() + self.settings.lock_seconds
        while not self._stopping.is_set():
            try:
                with self.gate, self.app.app_context():
                    result = poll_address(self.address.id)
            except NotPollable:
                self.gone = True
                return
            except RedisError:
                self.owed = True  # no poll lock without Redis: `_listen` tries again every IDLE_RETRY_SECONDS
                return
            self.owed = False
            if not result.locked:
                self.fetches += 1
                return
            if time.monotonic() > deadline:
                log.warning("%s: the poll lock stayed taken for %.0f s; the next EXISTS or poll fetches",
                            self.address.address, self.settings.lock_seconds)
                return
            self._stopping.wait(LOCK_RETRY)

    def _close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.shutdown()
        except Exception:  # noqa: BLE001 - already closed
            pass


def _shutdown(client: IMAPClient) -> None:
    """Shut the connection's socket down from another thread (wakes a blocked read, leaves TLS state alone)."""
    try:
        fd = client.socket().fileno()
        if fd < 0:
            return
        dup = socket.socket(fileno=socket.dup(fd))
        try:
            dup.shutdown(socket.SHUT_RDWR)
        finally:
            dup.close()
    except OSError:
        pass
