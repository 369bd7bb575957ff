"""What one poll of a mailbox reports, where a first connection starts, and the memory a batch leaves behind:
shared by the IMAP and POP3 pollers."""
from __future__ import annotations

import ctypes
import ctypes.util
import gc

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select

from app.extensions import db
from app.models.channels import EmailAddress


@dataclass
class PollResult:
    address: str
    protocol: str | None = None
    fetched: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    skipped_by_backfill: int = 0
    resynced: bool = False
    locked: bool = False
    error: str | None = None

    def count(self, results) -> None:
        for result in results:
            self.fetched += 1
            self.statuses[result.status] = self.statuses.get(result.status, 0) + 1

    def as_dict(self) -> dict:
        return {"address": self.address, "protocol": self.protocol, "fetched": self.fetched,
                "statuses": dict(self.statuses), "skipped_by_backfill": self.skipped_by_backfill,
                "resynced": self.resynced, "locked": self.locked, "error": self.error}

    def summary(self) -> str:
        if self.locked:
            return f"{self.address}: already being polled; nothing done"
        if self.error:
            return f"{self.address}: error: {self.error}"
        parts = ", ".join(f"{n} {s}" for s, n in sorted(self.statuses.items())) or "no new mail"
        extra = f"; {self.skipped_by_backfill} older messages left alone (backfill window)" \
            if self.skipped_by_backfill else ""
        resync = "; UIDVALIDITY changed, resynchronised" if self.resynced else ""
        return f"{self.address} ({self.protocol}): {self.fetched} fetched: {parts}{extra}{resync}"


def backfill_start(address_id: int, now: datetime) -> datetime:
    """Where a first connection starts: publish time (`MAILBOX_BACKFILL=publish`) or N days back."""
    setting = str(current_app.config.get("MAILBOX_BACKFILL", "publish")).strip().lower()
    if setting.isdigit():
        return now - timedelta(days=int(setting))
    published_at = db.session.scalar(select(EmailAddress.published_at).where(EmailAddress.id == address_id))
    return published_at or now


def _libc_malloc_trim():
    """glibc's `malloc_trim`, or None (another C library, or none to be found)."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


_malloc_trim = _libc_malloc_trim()


def release_batch_memory() -> bool:
    """Hand the heap pages a finished batch freed back to the operating system; True when that was possible.

    A batch allocates and frees tens of megabytes (raw messages, parsed bodies, rows). glibc
    keeps freed memory in its heap, and what the next batch allocates lands between pieces
    still in use, so a long poll's resident memory grew with every batch though Python's
    own objects did not (tracemalloc flat, RSS up by several MB a batch). `malloc_trim(0)`
    returns the free pages (not only the heap's top), which keeps a poll's memory flat in
    the number of messages. Without glibc it only collects garbage.
    """
    gc.collect()
    if _malloc_trim is None:
        return False
    _malloc_trim(0)
    return True
