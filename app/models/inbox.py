"""Customers, conversations, messages, attachments and agents' drafts."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import DDL, JSON, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint, event, or_
from sqlalchemy import false as sa_false
from sqlalchemy import text as sql_text  # `text` is also a column of Message
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models._types import UTCDateTime, utcnow


class Contact(db.Model):
    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)  # lower-cased
    name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Edited on the contact page (app.inbox.contacts): the customer's other addresses (one a line),
    # an organisation that overrides the one read from the email domain, and the agents' notes.
    extra_addresses: Mapped[str] = mapped_column(Text, default="", server_default="")
    organization: Mapped[str] = mapped_column(String(200), default="", server_default="")
    notes: Mapped[str] = mapped_column(Text, default="", server_default="")


class Conversation(db.Model):
    __tablename__ = "conversations"
    __table_args__ = (
        Index("ix_conversations_status_last", "status", "last_message_at"),
        Index("ix_conversations_contact_address", "contact_id", "address_id"),  # subject threading
        # Keyset pagination of the inbox views (newest activity first, id breaks ties).
        Index("ix_conversations_last_id", "last_message_at", "id"),
        Index("ix_conversations_queue_last", "queue_id", "last_message_at"),
        Index("ix_conversations_assignee_last", "assignee_id", "last_message_at"),
        Index("ix_conversations_contact", "contact_id"),
        # The inbox's filters and sort (priority, address) and the snooze timer's sweep.
        Index("ix_conversations_priority_last", "priority", "last_message_at", "id"),
        Index("ix_conversations_address_last", "address_id", "last_message_at"),
        Index("ix_conversations_snoozed", "snoozed_until"),
        Index("ix_conversations_sla_due", "sla_due_at"),  # service levels: "Due soonest" and the cron sweep
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    address_id: Mapped[int] = mapped_column(ForeignKey("email_addresses.id"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    token: Mapped[str] = mapped_column(String(40), unique=True)  # opaque, put in our Message-IDs
    subject: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20), default="open")  # open/pending/resolved/closed
    queue_id: Mapped[int | None] = mapped_column(ForeignKey("queues.id"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    priority: Mapped[int] = mapped_column(default=0)
    tags: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_message_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The intent the classifier gave the first message ("unknown" below the threshold)
    intent: Mapped[str | None] = mapped_column(String(100))
    intent_confidence: Mapped[float | None]
    # With "Channel-Based Sessions", the To address this conversation belongs to.
    session_key: Mapped[str | None] = mapped_column(String(320))
    # Who last assigned it and set its status, and when (`app.inbox.collisions`: a colleague's recent
    # change is named before it is overwritten). None: never by an agent (automation, older rows).
    assigned_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    status_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Snooze ("Pending until …"): the status is pending until then, or until the customer answers
    # (None with status pending); cron reopens it in the Mine view of `snoozed_by` when due.
    snoozed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    snoozed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Merged into another conversation of the same customer: its page leads there.
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id", ondelete="SET NULL"))
    # Service levels (app.runtime.sla, docs/sla.md): the policy, its anchors, due times and breaches
    sla_policy_id: Mapped[int | None] = mapped_column(ForeignKey("sla_policies.id", ondelete="SET NULL"))
    sla_waiting_since: Mapped[datetime | None] = mapped_column(UTCDateTime)  # oldest unanswered customer message
    first_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_response_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_response_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolution_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sla_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the soonest of the three that still runs
    sla_warn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # when it becomes "at risk"
    first_response_breached_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_response_breached_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolution_breached_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sla_warned_for: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the due time the at-risk notice was for
    sla_overdue_for: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the due time the overdue notice was for

    address = relationship("EmailAddress")
    contact: Mapped[Contact] = relationship()
    queue = relationship("Queue")
    assignee = relationship("User", foreign_keys=[assignee_id])
    assigned_by = relationship("User", foreign_keys=[assigned_by_id])
    status_by = relationship("User", foreign_keys=[status_by_id])
    messages: Mapped[list["Message"]] = relationship(
        back_populates="conversation", order_by="Message.created_at"
    )


class Message(db.Model):
    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_message_id", "message_id"),
        Index("ix_messages_conversation_created", "conversation_id", "created_at"),
        UniqueConstraint("address_id", "dedupe_key", name="uq_messages_address_dedupe"),  # inbound: nothing twice
        Index("ix_messages_delivery_due", "delivery_status", "next_attempt_at"),  # the send sweep's query
        # The Dashboard's last hour and replies today (app.reports.dashboard): a time range, not every message.
        Index("ix_messages_created", "created_at", "direction"),
        # The inbox's "Not delivered" marker (`app.inbox.lists.INBOX_SQL`): a conversation's failed
        # deliveries without reading each of its messages. Partial: only failed and bounced messages
        # are in it, so it stays tiny. The marker's SQL must say `delivery_status IN ('failed', 'bounced')`
        # exactly like this for SQLite's planner to use it.
        Index("ix_messages_delivery_failed", "conversation_id",
              sqlite_where=sql_text("delivery_status IN ('failed', 'bounced')"),
              postgresql_where=sql_text("delivery_status IN ('failed', 'bounced')")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id"))
    address_id: Mapped[int | None] = mapped_column(ForeignKey("email_addresses.id"))
    direction: Mapped[str] = mapped_column(String(10))  # in / out / note
    message_id: Mapped[str | None] = mapped_column(String(998))
    in_reply_to: Mapped[str | None] = mapped_column(Text)
    references: Mapped[str | None] = mapped_column(Text)
    from_addr: Mapped[str] = mapped_column(Text, default="")
    to_addrs: Mapped[str] = mapped_column(Text, default="")
    cc_addrs: Mapped[str] = mapped_column(Text, default="")
    bcc_addrs: Mapped[str] = mapped_column(Text, default="")
    reply_to: Mapped[str] = mapped_column(Text, default="")
    subject: Mapped[str] = mapped_column(Text, default="")
    text: Mapped[str] = mapped_column(Text, default="")
    html: Mapped[str | None] = mapped_column(Text)  # sanitised
    raw_sha256: Mapped[str | None] = mapped_column(String(64))
    parse_error: Mapped[str | None] = mapped_column(Text)
    delivery_status: Mapped[str | None] = mapped_column(String(20))  # queued/sending/sent/retrying/failed/bounced
    delivery_error: Mapped[str | None] = mapped_column(Text)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Automatic mail: "auto_reply" / "acknowledgement" for automatic mail (sent with Auto-Submitted: auto-replied)
    automatic: Mapped[str | None] = mapped_column(String(20))
    # Inbound: the reply without quoted history, what kind of mail it is, loop safety, dedupe.
    visible_text: Mapped[str | None] = mapped_column(Text)
    classification: Mapped[str | None] = mapped_column(String(20))  # auto_reply/bounce/feedback/list/bulk
    no_auto_reply: Mapped[bool] = mapped_column(default=False)  # never answer it automatically
    dedupe_key: Mapped[str | None] = mapped_column(String(300))  # "mid:<...>" or "sha:<hex>", unique per address
    # Inbound: None when the sender is From, else the header it was taken from ("sender", "reply-to", "return-path")
    sender_source: Mapped[str | None] = mapped_column(String(20))
    parse_notes: Mapped[str | None] = mapped_column(Text)  # the parser's defects and fallbacks, one per line
    edited_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # an internal note edited by its author

    # Outbound delivery: attempts, backoff, the worker's claim (lease) and the server's last reply
    delivery_attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claim_token: Mapped[str | None] = mapped_column(String(40))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    smtp_code: Mapped[int | None]
    smtp_reply: Mapped[str | None] = mapped_column(Text)
    # The DKIM-Signature header put in front of the stored bytes when it was sent (None: sent unsigned),
    # so the Sent-folder copy is the message as it left.
    dkim_signature: Mapped[str | None] = mapped_column(Text)
    # Inbound sender authentication (app.mail.senderauth): SPF / DKIM / DMARC results ("pass", "fail", "none",
    # "temperror", ...) with the domain each was about, why, and the own domain the From domain imitates.
    # NULL on outgoing mail and on mail stored before the checks existed.
    auth_spf: Mapped[str | None] = mapped_column(String(12))
    auth_spf_domain: Mapped[str | None] = mapped_column(String(253))
    auth_dkim: Mapped[str | None] = mapped_column(String(12))
    auth_dkim_domain: Mapped[str | None] = mapped_column(String(253))
    auth_dmarc: Mapped[str | None] = mapped_column(String(12))
    auth_from_domain: Mapped[str | None] = mapped_column(String(253))
    auth_reason: Mapped[str | None] = mapped_column(Text)
    auth_lookalike: Mapped[str | None] = mapped_column(String(253))

    conversation: Mapped[Conversation | None] = relationship(back_populates="messages")
    attachments: Mapped[list["Attachment"]] = relationship(back_populates="message")
    author = relationship("User")


#: Inbound kinds written by a machine, not by the customer: an out-of-office or read receipt, a delivery
#: report, a complaint. They sit in the conversation they answer but are never what Reply answers,
#: what a reply threads under by default, or what automation reads as the customer's latest words.
AUTOMATIC_KINDS = ("auto_reply", "bounce", "feedback")


def customer_written():
    """SQL: an inbound message the customer wrote (not one of `AUTOMATIC_KINDS`)."""
    return (Message.direction == "in") & or_(Message.classification.is_(None),
                                             Message.classification.not_in(AUTOMATIC_KINDS))


class Attachment(db.Model):
    __tablename__ = "attachments"
    __table_args__ = (Index("ix_attachments_message_id", "message_id"),)  # a thread's attachments at once

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    filename: Mapped[str] = mapped_column(String(500), default="")
    content_type: Mapped[str] = mapped_column(String(200), default="application/octet-stream")
    size: Mapped[int] = mapped_column(default=0)
    content_id: Mapped[str | None] = mapped_column(String(500))
    inline: Mapped[bool] = mapped_column(default=False)
    sha256: Mapped[str] = mapped_column(String(64))

    message: Mapped[Message] = relationship(back_populates="attachments")


class OutgoingMime(db.Model):
    """The exact bytes of an outgoing message, written in the same transaction as its row.

    One durable commit covers both (a blob-store write would add two fsyncs to every
    Send), the send job sends these bytes, and they stay as the record of what was sent.
    Outgoing messages queued before this table existed have theirs in the blob store
    (`Message.raw_sha256`); `app.runtime.outbound.outgoing_bytes` reads either.
    """
    __tablename__ = "outgoing_mime"

    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class Draft(db.Model):
    __tablename__ = "drafts"
    __table_args__ = (UniqueConstraint("author_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(40))  # client-chosen id, so autosave is idempotent
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(20), default="reply")  # reply/reply_all/forward/new
    from_address_id: Mapped[int | None] = mapped_column(ForeignKey("email_addresses.id"))
    to_addrs: Mapped[str] = mapped_column(Text, default="")
    cc_addrs: Mapped[str] = mapped_column(Text, default="")
    bcc_addrs: Mapped[str] = mapped_column(Text, default="")
    subject: Mapped[str] = mapped_column(Text, default="")
    body: Mapped[str] = mapped_column(Text, default="")
    attachments: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The message answered or forwarded (Reply, Reply All, Forward); None for New Mail.
    reply_to_message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    # New Mail: the queue the new conversation goes to.
    queue_id: Mapped[int | None] = mapped_column(ForeignKey("queues.id", ondelete="SET NULL"))
    # The newest message of the conversation when the agent started writing: sending over a
    # newer one asks for confirmation first.
    base_message_id: Mapped[int | None]
    # Nothing its author wrote yet (a composer opened, perhaps left): not listed or counted in
    # Drafts, discarded when its composer is left (`app.inbox.drafts.written`).
    blank: Mapped[bool] = mapped_column(default=False, server_default=sa_false())

    conversation = relationship("Conversation")
    author = relationship("User")
    reply_to_message = relationship("Message")


class ConversationSeen(db.Model):
    """When a user last opened a conversation (the inbox's unread marker)."""

    __tablename__ = "conversation_seen"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"),
                                                 primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# --- Full-text search index of messages ------------------------------------------------------
#
# SQLite: an FTS5 table with external content (`messages`), kept up to date by triggers, so
# every writer (ingest, sending, notes, a bulk import) is indexed without calling anything.
# PostgreSQL: a GIN index on the same tsvector expression that `app.inbox.search` queries.
# Migration 0005 creates the same objects (migrations never import app code); these DDL
# events do it for `db.create_all()` (the tests and `bench/web.py`).

FTS_COLUMNS = "subject, text, from_addr, to_addrs"
SQLITE_FTS_DDL = [
    f"CREATE VIRTUAL TABLE IF NOT EXISTS messages_fts USING fts5({FTS_COLUMNS}, content='messages', "
    "content_rowid='id', tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER IF NOT EXISTS messages_fts_ai AFTER INSERT ON messages BEGIN "
    f"INSERT INTO messages_fts(rowid, {FTS_COLUMNS}) "
    "VALUES (new.id, new.subject, new.text, new.from_addr, new.to_addrs); END",
    "CREATE TRIGGER IF NOT EXISTS messages_fts_ad AFTER DELETE ON messages BEGIN "
    f"INSERT INTO messages_fts(messages_fts, rowid, {FTS_COLUMNS}) "
    "VALUES ('delete', old.id, old.subject, old.text, old.from_addr, old.to_addrs); END",
    "CREATE TRIGGER IF NOT EXISTS messages_fts_au AFTER UPDATE OF subject, text, from_addr, to_addrs "
    "ON messages BEGIN "
    f"INSERT INTO messages_fts(messages_fts, rowid, {FTS_COLUMNS}) "
    "VALUES ('delete', old.id, old.subject, old.text, old.from_addr, old.to_addrs); "
    f"INSERT INTO messages_fts(rowid, {FTS_COLUMNS}) "
    "VALUES (new.id, new.subject, new.text, new.from_addr, new.to_addrs); END",
]
SQLITE_FTS_DROP = ["DROP TABLE IF EXISTS messages_fts"]
PG_TSVECTOR = ("to_tsvector('simple', coalesce(subject, '') || ' ' || coalesce(text, '') || ' ' || "
               "coalesce(from_addr, '') || ' ' || coalesce(to_addrs, ''))")
PG_FTS_DDL = [f"CREATE INDEX IF NOT EXISTS ix_messages_fts ON messages USING gin ({PG_TSVECTOR})"]

for _statement in SQLITE_FTS_DDL:
    event.listen(Message.__table__, "after_create", DDL(_statement).execute_if(dialect="sqlite"))
for _statement in SQLITE_FTS_DROP:
    event.listen(Message.__table__, "before_drop", DDL(_statement).execute_if(dialect="sqlite"))
for _statement in PG_FTS_DDL:
    event.listen(Message.__table__, "after_create", DDL(_statement).execute_if(dialect="postgresql"))
