"""What agents and automation do to conversations: the audit trail (`ConversationEvent`, one line each)
and the conversations' tags (`ConversationTag`, indexed for the inbox's tag filter).

`Conversation.tags` (JSON) keeps the same tags in the conversation's row for display;
`app.runtime.tags.set_tags` writes both, for the workspace and for flows alike.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models._types import UTCDateTime, utcnow

#: A conversation's priority (`Conversation.priority`) and its name, for agents and flows alike.
PRIORITIES = {-1: "Low", 0: "Normal", 1: "High", 2: "Urgent"}


class ConversationEvent(db.Model):
    """One line of a conversation's trail: "Alex Agent transferred to Returns" and when.

    `actor_id` None: automation (a flow, the snooze timer, the customer's reply). `kind` is
    one of `app.runtime.trail.KINDS`; `text` is the sentence as written at the time (names
    change, the trail does not); `data` holds the values before and after, for exports.
    """
    __tablename__ = "conversation_events"
    __table_args__ = (
        Index("ix_conversation_events_conversation", "conversation_id", "created_at"),
        Index("ix_conversation_events_created", "created_at"),  # the supervisors' export by date range
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(20))
    text: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    actor = relationship("User")


class ConversationTag(db.Model):
    """A tag on a conversation (lower-case, at most 50 characters)."""
    __tablename__ = "conversation_tags"
    __table_args__ = (Index("ix_conversation_tags_tag", "tag", "conversation_id"),)

    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"),
                                                 primary_key=True)
    tag: Mapped[str] = mapped_column(String(50), primary_key=True)
