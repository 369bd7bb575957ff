"""Redis locks that die with their holder: a short lease, renewed while the holder lives.

A lock taken with a long timeout outlives a killed worker by that whole timeout (issue 18: a
SIGKILLed ingest held `pigeonhole:ingest-address:<id>` for 300 s and every other worker waited).
`leased_lock` takes the lock for `lease` seconds and a daemon thread renews it every third of
that while the `with` block runs; when the process dies the renewals stop and the lock is free
again within `lease` seconds. The thread never touches the database.

A holder that stalls longer than its lease (a stopped process, a lost Redis) can lose the lock;
`LeasedLock.lost` says so afterwards. Callers use the lock to serialise, never as their only
guard against doing work twice (ingest keeps its dedupe constraint).
"""
from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from typing import Iterator

from redis import Redis
from redis.exceptions import LockError, RedisError

log = logging.getLogger(__name__)


class LeasedLock:
    """A held lock and its renewing thread (see `leased_lock`)."""

    def __init__(self, connection: Redis, name: str, lease: float):
        # thread_local=False: the renewing thread must see the token the holder's thread acquired with.
        self.lock = connection.lock(name, timeout=lease, thread_local=False)
        self.lease = lease
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self, wait: float) -> bool:
        if not self.lock.acquire(blocking=True, blocking_timeout=wait):
            return False
        self._thread = threading.Thread(target=self._renew, name=f"lease {self.lock.name}", daemon=True)
        self._thread.start()
        return True

    def _renew(self) -> None:
        while not self._stop.wait(self.lease / 3):
            try:
                self.lock.reacquire()
            except (LockError, RedisError) as exc:
                self.lost = True
                log.warning("lost the lock %s: %s", self.lock.name, exc.__class__.__name__)
                return

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        try:
            self.lock.release()
        except (LockError, RedisError):
            pass  # expired or taken over meanwhile: nothing of ours to release


@contextmanager
def leased_lock(connection: Redis, name: str, *, lease: float, wait: float) -> Iterator[LeasedLock | None]:
    """Hold `name` while the block runs, or yield None when it stayed taken for `wait` seconds.

    Raises what Redis raises when taking it (the caller decides whether to go on unlocked).
    """
    held = LeasedLock(connection, name, lease)
    if not held.acquire(wait):
        yield None
        return
    try:
        yield held
    finally:
        held.release()
