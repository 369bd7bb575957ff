"""What agents and automation do to conversations: the audit trail (`ConversationEvent`, one line each)
and the conversations' tags (`ConversationTag`, indexed for the inbox's tag filter).

`Conversation.tags` (JSON) keeps the same tags in the conversation's row for display;
`app.runtime.tags.set_tags` writes both, for the workspace and for flows alike.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models._types import UTCDateTime, database_objects, utcnow

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


#: `ConversationTag`'s copies of the conversation's columns the inbox filters by, at the end of its indexes.
TAG_FILTER_COPIES = ("sort_status", "sort_queue_id", "sort_assignee_id")


class ConversationTag(db.Model):
    """A tag on a conversation (lower-case, at most 50 characters), with copies of the conversation's
    sort keys (`sort_priority`, `sort_last_at`: its priority and last activity) and of what the inbox
    filters it by (`sort_status`, `sort_queue_id`, `sort_assignee_id`).

    With the copies, a tag's page of the inbox reads the tag's index in the page's order and stops at
    the page's end, instead of reading every conversation with the tag and sorting them; the filter
    copies at the end of the indexes leave out the conversations of another status or that the agent
    may not see without looking them up. The database keeps them equal to the conversation's
    (`TAG_SORT_DDL`: triggers on both tables), whoever writes.
    """
    __tablename__ = "conversation_tags"
    __table_args__ = (
        Index("ix_conversation_tags_tag", "tag", "conversation_id"),
        Index("ix_conversation_tags_last", "tag", "sort_last_at", "conversation_id", *TAG_FILTER_COPIES),
        Index("ix_conversation_tags_priority", "tag", "sort_priority", "sort_last_at", "conversation_id",
              *TAG_FILTER_COPIES),
    )

    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"),
                                                 primary_key=True)
    tag: Mapped[str] = mapped_column(String(50), primary_key=True)
    # Set by the database (`TAG_SORT_DDL`), never by the application.
    sort_priority: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    sort_last_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sort_status: Mapped[str | None] = mapped_column(String(20))
    sort_queue_id: Mapped[int | None] = mapped_column(Integer)
    sort_assignee_id: Mapped[int | None] = mapped_column(Integer)


# The copies follow the conversation: filled when a tag is added, updated when the conversation's
# priority, last activity, status, queue or assignee changes. Migrations 0038 and 0039 create the same
# objects (migrations never import app code); these DDL events do it for `db.create_all()`.
TAG_SORT_DDL = {
    "sqlite": [
        "CREATE TRIGGER IF NOT EXISTS conversation_tags_sort_ai AFTER INSERT ON conversation_tags BEGIN "
        "UPDATE conversation_tags SET (sort_priority, sort_last_at, sort_status, sort_queue_id, sort_assignee_id) = "
        "(SELECT priority, last_message_at, status, queue_id, assignee_id FROM conversations "
        "WHERE id = new.conversation_id) WHERE conversation_id = new.conversation_id AND tag = new.tag; END",
        "CREATE TRIGGER IF NOT EXISTS conversations_tags_sort_au AFTER UPDATE OF priority, last_message_at, status, "
        "queue_id, assignee_id ON conversations BEGIN UPDATE conversation_tags SET sort_priority = new.priority, "
        "sort_last_at = new.last_message_at, sort_status = new.status, sort_queue_id = new.queue_id, "
        "sort_assignee_id = new.assignee_id WHERE conversation_id = new.id; END",
    ],
    "postgresql": [
        "CREATE OR REPLACE FUNCTION conversation_tags_sort() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "SELECT priority, last_message_at, status, queue_id, assignee_id INTO NEW.sort_priority, NEW.sort_last_at, "
        "NEW.sort_status, NEW.sort_queue_id, NEW.sort_assignee_id FROM conversations "
        "WHERE id = NEW.conversation_id; RETURN NEW; END $$",
        "CREATE TRIGGER conversation_tags_sort_bi BEFORE INSERT ON conversation_tags "
        "FOR EACH ROW EXECUTE FUNCTION conversation_tags_sort()",
        "CREATE OR REPLACE FUNCTION conversations_tags_sort() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "UPDATE conversation_tags SET sort_priority = NEW.priority, sort_last_at = NEW.last_message_at, "
        "sort_status = NEW.status, sort_queue_id = NEW.queue_id, sort_assignee_id = NEW.assignee_id "
        "WHERE conversation_id = NEW.id; RETURN NEW; END $$",
        "CREATE TRIGGER conversations_tags_sort_au AFTER UPDATE OF priority, last_message_at, status, queue_id, "
        "assignee_id ON conversations FOR EACH ROW WHEN (NEW.priority IS DISTINCT FROM OLD.priority "
        "OR NEW.last_message_at IS DISTINCT FROM OLD.last_message_at OR NEW.status IS DISTINCT FROM OLD.status "
        "OR NEW.queue_id IS DISTINCT FROM OLD.queue_id OR NEW.assignee_id IS DISTINCT FROM OLD.assignee_id) "
        "EXECUTE FUNCTION conversations_tags_sort()",
    ],
}
TAG_SORT_DROP = {
    "sqlite": ["DROP TRIGGER IF EXISTS conversations_tags_sort_au"],
    "postgresql": ["DROP TRIGGER IF EXISTS conversations_tags_sort_au ON conversations",
                   "DROP FUNCTION IF EXISTS conversations_tags_sort()"],
}
database_objects(ConversationTag.__table__, TAG_SORT_DDL, TAG_SORT_DROP)
