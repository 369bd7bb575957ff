"""The reports' table of per-conversation facts (`ConversationFacts`), one row per conversation.

Written as things happen by `app.runtime.facts` (ingest, routing, replies, status changes), never
rebuilt from the messages table on a report's path; `flask reports backfill` fills it for
conversations that existed before it. Times are UTC.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models._types import UTCDateTime, utcnow


#: The columns a report can break down by (queue, agent, address, intent).
BREAKDOWN_COLUMNS = ("queue_id", "agent_id", "address_id", "intent")


class ConversationFacts(db.Model):
    """What the reports and the dashboard read about one conversation.

    `first_response_at`: the first reply an agent wrote (automatic mail does not count);
    `resolved_at`: when it was last resolved or closed (None while open; a customer's answer
    reopens it and counts in `reopened_count`). The `*_breached` columns are the SLA's to fill
    (None: no SLA measured it).
    """

    __tablename__ = "conversation_facts"

    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"),
                                                 primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    queue_id: Mapped[int | None] = mapped_column(ForeignKey("queues.id", ondelete="SET NULL"))
    address_id: Mapped[int | None] = mapped_column(ForeignKey("email_addresses.id", ondelete="SET NULL"))
    intent: Mapped[str | None] = mapped_column(String(100))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(20), default="open")
    first_customer_message_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_customer_message_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The two durations the reports measure, in seconds, kept with their times (`app.runtime.facts.measure`)
    first_response_seconds: Mapped[int | None] = mapped_column()
    resolution_seconds: Mapped[int | None] = mapped_column()
    reopened_count: Mapped[int] = mapped_column(default=0, server_default="0")
    reply_count: Mapped[int] = mapped_column(default=0, server_default="0")
    messages_in: Mapped[int] = mapped_column(default=0, server_default="0")
    first_response_breached: Mapped[bool | None] = mapped_column()
    next_response_breached: Mapped[bool | None] = mapped_column()
    resolution_breached: Mapped[bool | None] = mapped_column()

    # Covering indexes: a report reads a period's rows from the index alone (its day, breakdown and duration;
    # by the day received, the SLA's judgements too).
    __table_args__ = (
        Index("ix_conversation_facts_created", "created_at", *BREAKDOWN_COLUMNS, "first_response_breached",
              "resolution_breached"),
        Index("ix_conversation_facts_first_response", "first_response_at", "first_response_seconds",
              *BREAKDOWN_COLUMNS),
        Index("ix_conversation_facts_resolved", "resolved_at", "resolution_seconds", *BREAKDOWN_COLUMNS),
        Index("ix_conversation_facts_queue_status", "queue_id", "status"),
    )
