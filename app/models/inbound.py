"""Inbound mail bookkeeping: every raw message that arrived, and what became of it.

An `InboundRaw` row is written for each arrival of a message for one address
(SMTP ingress, IMAP, POP3 or `flask mail ingest`). Its raw bytes (`raw_sha256`) are
durable no later than the row: in the blob store already, or (the ingress) staged in
the `blobs` table by the same commit, until the ingest job settles them into the blob
store. So the row is the durable promise "this message will be ingested". Ingress writes it as `pending` before it
answers 250; the ingest service moves it to its final status in the same
transaction that writes the conversation rows. Polled mail is ingested inline, so
its rows are written with their final status directly.

Admins see rows with `stored_with_error` (and stale `pending` ones) on the Ops
page, with the raw message to download, and the automatic replies that matched no
conversation (`auto_reply`: stored as a message without a conversation, out of the
agents' views).
"""
from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models._types import UTCDateTime, utcnow


class InboundStatus(str, enum.Enum):
    PENDING = "pending"                      # stored raw, not ingested yet
    HELD = "held"                            # stored raw for a disabled "Hold new mail" address; pending once it is live
    CREATED = "created"                      # opened a new conversation
    THREADED = "threaded"                    # added to an existing conversation
    DUPLICATE = "duplicate"                  # seen before for this address (or our own mail echoed back)
    BOUNCE = "bounce"                        # a delivery report: marked our outgoing message, no conversation opened
    AUTO_REPLY = "auto_reply"                # an automatic reply (out-of-office, MDN) that matched no conversation
    FORWARDING_CONFIRMATION = "fwd_confirmation"  # a provider's "confirm forwarding" mail, shown to admins
    STORED_WITH_ERROR = "stored_with_error"  # could not be understood; raw kept, admins see it


class InboundRaw(db.Model):
    __tablename__ = "inbound_raws"
    __table_args__ = (Index("ix_inbound_raws_status_received", "status", "received_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    address_id: Mapped[int] = mapped_column(ForeignKey("email_addresses.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(10))  # smtp / imap / pop3 / cli
    source_ref: Mapped[str | None] = mapped_column(String(300))  # "INBOX;v=7;uid=42", a POP3 UIDL, a file name
    raw_sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(default=0)
    envelope_from: Mapped[str | None] = mapped_column(Text)
    # The SMTP client of an ingress arrival (its address and HELO name), for the SPF check the ingest job runs.
    client_ip: Mapped[str | None] = mapped_column(String(45))
    helo: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(20), default=InboundStatus.PENDING.value)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=0)
    message_row_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The contact-center address this arrival was forwarded from, when its headers show one
    # (app.mail.forwarding): the Forwarding status of a platform address is read from it.
    forwarded_for: Mapped[str | None] = mapped_column(String(320))

    address = relationship("EmailAddress")
    message = relationship("Message")


class ForwardingConfirmation(db.Model):
    """A provider's forwarding-confirmation mail (Gmail's), kept for the admins instead of a conversation.

    Shown on the address's Forwarding page and in the admins' banner, with its link (for the
    admin to click; the server never fetches it) and its code, until an admin dismisses it.
    """

    __tablename__ = "forwarding_confirmations"

    id: Mapped[int] = mapped_column(primary_key=True)
    address_id: Mapped[int] = mapped_column(ForeignKey("email_addresses.id", ondelete="CASCADE"), index=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    provider: Mapped[str] = mapped_column(String(20))  # a key of app.mail.forwarding.PROVIDERS
    requested_by: Mapped[str | None] = mapped_column(String(320))  # the address that asks to forward to us
    link: Mapped[str | None] = mapped_column(Text)
    code: Mapped[str | None] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(Text, default="")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    dismissed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    dismissed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    address = relationship("EmailAddress")
    message = relationship("Message")  # its sender-authentication verdict says whether it may be forged
