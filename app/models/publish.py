"""Publish approvals: the setting that turns them on, and the requests waiting for a second admin.

With `PublishSettings.approvals_required` on, Publish records a `PublishRequest`
(who asked, the Comments, the items and the draft version of each as reviewed) instead of
going live. Another admin approves it (it is published then, as the requester reviewed it)
or declines it with a reason; the requester may withdraw it. Versions themselves are
`PublishRecord` rows (app/models/channels.py).
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models._types import UTCDateTime, utcnow

#: The states of a Publish request; only "pending" changes, once, into one of the others.
REQUEST_STATES = ("pending", "approved", "declined", "withdrawn")


class PublishSettings(db.Model):
    """One row (or none: the defaults) of Publish settings."""

    __tablename__ = "publish_settings"

    id: Mapped[int] = mapped_column(primary_key=True)
    approvals_required: Mapped[bool] = mapped_column(default=False)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def publish_approvals_required() -> bool:
    """True when a Publish must be approved by a second admin before it goes live (off by default)."""
    return bool(db.session.scalar(select(PublishSettings.approvals_required).order_by(PublishSettings.id).limit(1)))


class PublishRequest(db.Model):
    """A Publish waiting for (or decided by) a second admin."""

    __tablename__ = "publish_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    requester_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    comment: Mapped[str] = mapped_column(Text)
    items: Mapped[list] = mapped_column(JSON, default=list)      # ["address:3", "flow:1"]
    expected: Mapped[dict] = mapped_column(JSON, default=dict)   # item -> draft version as reviewed
    changes: Mapped[list] = mapped_column(JSON, default=list)    # [{"kind", "id", "name", "summary"}] as reviewed
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reason: Mapped[str | None] = mapped_column(Text)             # why it was declined
    record_id: Mapped[int | None] = mapped_column(ForeignKey("publish_records.id", ondelete="SET NULL"))

    requester = relationship("User", foreign_keys=[requester_id])
    decided_by = relationship("User", foreign_keys=[decided_by_id])
    record = relationship("PublishRecord")
