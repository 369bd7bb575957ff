"""Test emails ("Send test email"): one row per test an admin (or `flask mail send-test`) sent from an address.

Kept outside conversations on purpose: a test is not customer traffic, so it never shows
in the workspace, its searches or reports. It goes through the same send queue, renderer,
DKIM signing and SMTP server as a reply, and its delivery columns mirror `Message`'s
(the same names, so `app.runtime.outbound.states.claimable` reads both): queued → sending →
sent, or retrying (with the server's words) → failed. `raw` holds the rendered bytes,
frozen when the test was queued, so a retry sends exactly those.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models._types import UTCDateTime, utcnow


class SendTest(db.Model):
    __tablename__ = "send_tests"
    __table_args__ = (
        Index("ix_send_tests_requested_by_created", "requested_by_id", "created_at"),  # the hourly limit
        Index("ix_send_tests_delivery_due", "delivery_status", "next_attempt_at"),  # the cron sweep
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    address_id: Mapped[int] = mapped_column(ForeignKey("email_addresses.id", ondelete="CASCADE"), index=True)
    # The admin who asked; None for the command line.
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    recipient: Mapped[str] = mapped_column(String(320))
    from_addr: Mapped[str] = mapped_column(Text, default="")
    subject: Mapped[str] = mapped_column(Text, default="")
    message_id: Mapped[str] = mapped_column(String(998))
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    # Delivery, as on `Message`.
    delivery_status: Mapped[str] = mapped_column(String(20), default="queued")
    delivery_attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claim_token: Mapped[str | None] = mapped_column(String(40))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    smtp_code: Mapped[int | None]
    smtp_reply: Mapped[str | None] = mapped_column(Text)
    delivery_error: Mapped[str | None] = mapped_column(Text)
    dkim_signature: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
