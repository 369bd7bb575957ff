"""One mailbox's IDLE connection, in a thread of its own.

A watcher logs in (the poller's `connect`, TLS verified), checks the IDLE
capability (a server without it ends the watcher with `unsupported` set: the
mailbox stays with polling), opens INBOX read-only and fetches once to catch up
with what arrived while nobody watched. Then, in a loop:

* IDLE, and wait for the server's untagged responses;
* on `EXISTS`: DONE, NOOP (the connection's view catches up), and fetch at once
  through `poll_address` — the poller's own path, under its per-mailbox lock,
  with its watermark, batches and error records, so IDLE and polling never fetch
  the same mailbox at the same time and nothing is stored twice. When a poll holds
  the lock, the fetch waits for it and runs after it (the poll may have searched
  before the new message arrived). A message that lands after NOOP is reported by
  the server as soon as IDLE starts again;
* before `IDLE_RENEW_SECONDS` (RFC 2177's 29 minutes at most): DONE and IDLE again.

Any network or protocol error closes the connection and retries after
`IDLE_RETRY_SECONDS`, doubled after each failure up to `IDLE_MAX_BACKOFF`; the
catch-up fetch after reconnecting stores what arrived meanwhile. `stop()` (from
another thread) shuts the socket down, which wakes the wait at once.

`healthy` is true while the connection is established and idling; the process
turns it into the mailbox's heartbeat for cron.
"""
from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass

from flask import Flask
from imapclient import IMAPClient

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

    def __init__(self, app: Flask, address: PublishedAddress, fingerprint: str, settings: WatchSettings) -> None:
        super().__init__(name=f"idle-{address.id}", daemon=True)
        self.app = app
        self.address = address
        self.fingerprint = fingerprint
        self.settings = settings
        self.healthy = False
        self.unsupported = False
        self.gone = False  # the address is no longer pollable (unpublished between refreshes)
        self.errors = 0
        self.last_error: str | None = None
        self.fetches = 0
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
                self._close()
            if self.unsupported or self.gone:
                return
            self._stopping.wait(delay)

    def _session(self) -> None:
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
        self._fetch()  # what arrived while nobody watched
        renew = self.settings.renew_seconds
        while not self._stopping.is_set() and not self.gone:
            client.idle()
            self.healthy = True
            self.errors = 0
            changed = self._wait(client, time.monotonic() + renew)
            if self._stopping.is_set():
                return
            _text, responses = client.idle_done()
            if changed or _has_exists(responses):
                client.noop()
                self._fetch()

    def _wait(self, client: IMAPClient, deadline: float) -> bool:
        """Wait in IDLE until EXISTS or a wake-up with nothing read (True), or the renewal deadline (False)."""
        while not self._stopping.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            wait = min(remaining, MAX_WAIT)
            started = time.monotonic()
            responses = client.idle_check(timeout=wait)
            if _has_exists(responses):
                return True
            if not responses and time.monotonic() - started < wait - 0.05:
                # Woken with nothing read: most likely the server closed the connection (imapclient swallows
                # the EOF). DONE then fails and the watcher reconnects; if the connection lives, a fetch is harmless.
                return True
        return False

    def _fetch(self) -> None:
        """Fetch new mail now through the poller (its lock, watermark and ingest); waits out a running poll."""
        deadline = time.monotonic() + self.settings.lock_seconds
        while not self._stopping.is_set():
            try:
                with self.app.app_context():
                    result = poll_address(self.address.id)
            except NotPollable:
                self.gone = True
                return
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
