"""DKIM keys of the sending domains (DKIM Configuration): one row per (domain, selector).

The private key is stored encrypted (app.crypto, like mail passwords) and never shown
again. `status` is the last DNS check of its record (Pending, Success, Failed, Temporary
Failure; app.mail.dnscheck); `active` marks the one key per domain that signs, which only
a verified (Success) key can become. Rotation: add a second selector, publish and verify
it, make it active; the old one stops signing at once and can be deleted later.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models._types import UTCDateTime, utcnow


class DkimKey(db.Model):
    __tablename__ = "dkim_keys"
    __table_args__ = (UniqueConstraint("domain", "selector", name="uq_dkim_keys_domain_selector"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    domain: Mapped[str] = mapped_column(String(253), index=True)  # lower-cased
    selector: Mapped[str] = mapped_column(String(63))
    private_key_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(20), default="Pending")
    status_detail: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(default=False)
    last_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
