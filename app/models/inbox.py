"""Customers, conversations, messages, attachments and agents' drafts."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models._types import UTCDateTime, utcnow


class Contact(db.Model):
    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)  # lower-cased
    name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Conversation(db.Model):
    __tablename__ = "conversations"
    __table_args__ = (
        Index("ix_conversations_status_last", "status", "last_message_at"),
        Index("ix_conversations_contact_address", "contact_id", "address_id"),  # subject threading
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
    # flows (issue 7): the intent the classifier gave the first message ("unknown" below the threshold)
    intent: Mapped[str | None] = mapped_column(String(100))
    intent_confidence: Mapped[float | None]
    # Inbound (issue 4): with "Channel-Based Sessions", the To address this conversation belongs to.
    session_key: Mapped[str | None] = mapped_column(String(320))

    address = relationship("EmailAddress")
    contact: Mapped[Contact] = relationship()
    queue = relationship("Queue")
    assignee = relationship("User")
    messages: Mapped[list["Message"]] = relationship(
        back_populates="conversation", order_by="Message.created_at"
    )


class Message(db.Model):
    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_message_id", "message_id"),
        Index("ix_messages_conversation_created", "conversation_id", "created_at"),
        UniqueConstraint("address_id", "dedupe_key", name="uq_messages_address_dedupe"),  # inbound: nothing twice
        Index("ix_messages_delivery_due", "delivery_status", "next_attempt_at"),  # outbound (issue 5)
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
    # flows (issue 7): "auto_reply" / "acknowledgement" for automatic mail (sent with Auto-Submitted: auto-replied)
    automatic: Mapped[str | None] = mapped_column(String(20))
    # Inbound (issue 4): the reply without quoted history, what kind of mail it is, loop safety, dedupe.
    visible_text: Mapped[str | None] = mapped_column(Text)
    classification: Mapped[str | None] = mapped_column(String(20))  # auto_reply/bounce/feedback/list/bulk
    no_auto_reply: Mapped[bool] = mapped_column(default=False)  # never answer it automatically
    dedupe_key: Mapped[str | None] = mapped_column(String(300))  # "mid:<...>" or "sha:<hex>", unique per address

    # outbound delivery (issue 5): attempts, backoff, the worker's claim (lease) and the server's last reply
    delivery_attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claim_token: Mapped[str | None] = mapped_column(String(40))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    smtp_code: Mapped[int | None]
    smtp_reply: Mapped[str | None] = mapped_column(Text)

    conversation: Mapped[Conversation | None] = relationship(back_populates="messages")
    attachments: Mapped[list["Attachment"]] = relationship(back_populates="message")
    author = relationship("User")


class Attachment(db.Model):
    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    filename: Mapped[str] = mapped_column(String(500), default="")
    content_type: Mapped[str] = mapped_column(String(200), default="application/octet-stream")
    size: Mapped[int] = mapped_column(default=0)
    content_id: Mapped[str | None] = mapped_column(String(500))
    inline: Mapped[bool] = mapped_column(default=False)
    sha256: Mapped[str] = mapped_column(String(64))

    message: Mapped[Message] = relationship(back_populates="attachments")


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
