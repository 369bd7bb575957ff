"""One `flask mail idle` process: which mailboxes it holds, their leases, their watchers.

Every `IDLE_REFRESH_SECONDS` the supervisor reads the live configuration (published,
enabled, inbound IMAP addresses of custom domains): it stops the watchers of
mailboxes that were unpublished, disabled or archived (and gives their leases
back), restarts those whose server settings changed, and takes the free leases of
new mailboxes (at most `IDLE_MAX_MAILBOXES` per process) and starts a watcher for
each. Between refreshes it renews its leases and the heartbeats of healthy
watchers every third of `IDLE_LEASE_SECONDS`; a lease found in another process's
hands (this one stalled past its lease) stops the watcher. A watcher whose server
lacks IDLE leaves a mark (see `leases.py`) and its lease, and the mailbox stays
with polling alone.

Redis unreachable: the process and its IMAP connections keep going; fetches wait,
since the poll lock lives in Redis (each watcher tries again every
`IDLE_RETRY_SECONDS` without reconnecting), so mail that arrives meanwhile is
fetched once Redis answers, and exactly once. The outage is logged once ("Redis
does not answer"), and once more when Redis answers again (pinged every tick while
it is down); the first renewal after that writes the leases and heartbeats back
into it (into an empty Redis too: the renewal takes a missing lease back).
"""
from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
import time
import uuid

from flask import Flask
from redis.exceptions import RedisError

from app.extensions import db
from app.queues import redis_connection
from app.runtime.idle.leases import Leases
from app.runtime.idle.watcher import MailboxWatcher, WatchSettings
from app.runtime.live import PublishedAddress, published_addresses
from app.runtime.poll import pollable

log = logging.getLogger(__name__)


def fingerprint(address: PublishedAddress) -> str:
    """What a watcher's connection depends on: a change means reconnecting with the new settings."""
    parts = (address.incoming_host, address.incoming_port, address.incoming_security, address.login,
             address.password_encrypted)
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def idle_candidates() -> dict[int, PublishedAddress]:
    """The live mailboxes IDLE may watch: published, enabled, inbound IMAP of a custom domain (app context)."""
    return {a.id: a for a in published_addresses("custom", holding=True)
            if pollable(a) and a.incoming_protocol == "imap"}


class IdleSupervisor:
    """Holds the IDLE connections of one process; `run(stop)` until `stop` is set."""

    def __init__(self, app: Flask, owner: str | None = None) -> None:
        self.app = app
        config = app.config
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.refresh_seconds = float(config["IDLE_REFRESH_SECONDS"])
        self.lease_seconds = float(config["IDLE_LEASE_SECONDS"])
        self.recheck_seconds = int(config["IDLE_RECHECK_SECONDS"])
        self.capacity = int(config["IDLE_MAX_MAILBOXES"])
        self.settings = WatchSettings.from_config(config)
        self.gate = threading.BoundedSemaphore(max(int(config["IDLE_FETCH_CONCURRENCY"]), 1))
        with app.app_context():
            self.leases = Leases(redis_connection(), self.owner, self.lease_seconds)
        self.watchers: dict[int, MailboxWatcher] = {}
        self.redis_down = False  # a step failed for want of Redis; `_probe` says when it answers again

    def run(self, stop: threading.Event) -> None:
        tick = max(min(self.lease_seconds / 3, self.refresh_seconds), 0.05)
        next_refresh = 0.0
        try:
            while not stop.is_set():
                if self.redis_down:
                    self._guard(self._probe)
                self._reap()
                if time.monotonic() >= next_refresh:
                    self._guard(self.refresh)
                    next_refresh = time.monotonic() + self.refresh_seconds
                self._guard(self.renew)
                stop.wait(tick)
        finally:
            self.shutdown()

    def _guard(self, step) -> None:
        try:
            step()
        except RedisError as exc:
            if not self.redis_down:
                log.warning("IDLE: Redis does not answer (%s); the IMAP connections stay, fetches and leases "
                            "wait for it", exc)
            self.redis_down = True
        except Exception:  # noqa: BLE001 - one bad step must not stop the process
            log.exception("IDLE: %s failed", step.__name__)

    # --- steps ------------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Follow the live configuration: stop, restart and start watchers; take free leases."""
        with self.app.app_context():
            wanted = idle_candidates()
            db.session.rollback()
        prints = {address_id: fingerprint(address) for address_id, address in wanted.items()}
        gone = []
        for address_id, watcher in list(self.watchers.items()):
            if address_id not in wanted:
                self._stop(address_id)
                gone.append(address_id)
            elif watcher.fingerprint != prints[address_id]:
                log.info("IDLE: %s changed; reconnecting with its published settings", watcher.address.address)
                self._stop(address_id)
                self._start(wanted[address_id], prints[address_id])
        self.leases.release(gone)
        free = self.capacity - len(self.watchers)
        new = [address_id for address_id in sorted(wanted) if address_id not in self.watchers]
        marks = self.leases.unsupported(new)
        new = [address_id for address_id in new if marks.get(address_id) != prints[address_id]]
        if free <= 0 or not new:
            return
        for address_id in self.leases.acquire(new[:free]):
            self._start(wanted[address_id], prints[address_id])

    def _probe(self) -> None:
        """While Redis is down: ping it; say so once it answers (the next renewal then writes the leases)."""
        self.leases.redis.ping()
        self.redis_down = False
        log.warning("IDLE: Redis answers again; leases and heartbeats resume, owed fetches run")

    def renew(self) -> None:
        held = sorted(self.watchers)
        healthy = {address_id for address_id, watcher in self.watchers.items() if watcher.healthy}
        states = {address_id: watcher.status_fields() for address_id, watcher in self.watchers.items()}
        for address_id in self.leases.renew(held, healthy, states):
            log.warning("IDLE: the lease of %s is held by another process; letting it go",
                        self.watchers[address_id].address.address)
            self._stop(address_id)

    def _reap(self) -> None:
        """Forget watchers that ended on their own: no IDLE on the server, or the address is gone."""
        ended = [address_id for address_id, watcher in self.watchers.items() if not watcher.is_alive()]
        for address_id in ended:
            watcher = self.watchers.pop(address_id)
            if watcher.unsupported:
                self._guard(lambda: self.leases.mark_unsupported(address_id, watcher.fingerprint,
                                                                 self.recheck_seconds))
        if ended:
            self._guard(lambda: self.leases.release(ended))

    def shutdown(self) -> None:
        """Stop every watcher and give every lease back (another process takes over at its next refresh)."""
        held = list(self.watchers)
        for address_id in held:
            self.watchers[address_id].stop()
        for address_id in held:
            self.watchers.pop(address_id).join(10)
        self._guard(lambda: self.leases.release(held))

    # --- helpers ----------------------------------------------------------------------------------

    def _start(self, address: PublishedAddress, print_: str) -> None:
        watcher = MailboxWatcher(self.app, address, print_, self.settings, self.gate)
        self.watchers[address.id] = watcher
        watcher.start()

    def _stop(self, address_id: int) -> None:
        watcher = self.watchers.pop(address_id, None)
        if watcher is not None:
            watcher.stop()
