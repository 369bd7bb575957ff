"""What one poll of a mailbox reports, and where a first connection starts: shared by the IMAP and POP3 pollers."""
from __future__ import annotations

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
