"""The suppression list: recipients whose mail bounced (hard, or soft too often). See app.runtime.suppression.

One row per address (lower-cased), created by the first bounce that counts for it and
kept afterwards (a cleared entry keeps its history). `suppressed_at` is set while the
address is suppressed: at once on a hard bounce (a 5.x.x final failure), or when
`soft_bounce_times` (the final 4.x.x failures within SOFT_BOUNCE_WINDOW_DAYS, oldest first)
reaches SOFT_BOUNCE_LIMIT. `status`, `reason` and `source_message_id` are those of the last
bounce (the delivery report as stored; `outgoing_message_id` the message of ours it reports
on). Clearing (an admin, Ops › Suppressions) empties `suppressed_at` and the soft count and
records who and when.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models._types import UTCDateTime


class Suppression(db.Model):
    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)  # lower-cased
    kind: Mapped[str] = mapped_column(String(10))  # of the last bounce: hard / soft
    status: Mapped[str | None] = mapped_column(String(20))  # RFC 3463 enhanced status code, e.g. 5.1.1
    reason: Mapped[str] = mapped_column(Text, default="")  # the server's words (Diagnostic-Code or excerpt)
    first_bounce_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_bounce_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    soft_bounce_count: Mapped[int] = mapped_column(default=0)
    soft_bounce_times: Mapped[list] = mapped_column(JSON, default=list)  # ISO times within the window
    suppressed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    source_message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    outgoing_message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cleared_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    cleared_by = relationship("User", foreign_keys=[cleared_by_id])

    @property
    def suppressed(self) -> bool:
        return self.suppressed_at is not None
