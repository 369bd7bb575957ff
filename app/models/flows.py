"""Experience flows: ordered rules (draft and published), intents and their trained model,
the per-address Email Blocklist, the run log, and the ledger of automatic mail.

A `Flow` row's `rules` are the admin's draft; `published_rules` is the copy the
workers run (see `app.flows.publishing.publish_flows`). The rule format is documented
in `app.flows.engine`.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models._types import UTCDateTime, utcnow
from app.models.channels import EmailAddress


class Flow(db.Model):
    __tablename__ = "flows"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    rules: Mapped[list] = mapped_column(JSON, default=list)
    published_rules: Mapped[list | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    draft_updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    #: "Never published" / "Unpublished changes" / "Published", as for addresses
    publish_state = EmailAddress.publish_state


class Intent(db.Model):
    """What a customer wants (billing, delivery, ...), taught by example phrases."""

    __tablename__ = "intents"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)  # lower-case slug, e.g. "account access"
    description: Mapped[str] = mapped_column(Text, default="")
    examples: Mapped[list] = mapped_column(JSON, default=list)  # phrases, one string each
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class IntentModel(db.Model):
    """A trained classifier, stored as plain JSON parameters (no pickle); the newest row is live."""

    __tablename__ = "intent_models"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    algorithm: Mapped[str] = mapped_column(String(200))
    labels: Mapped[list] = mapped_column(JSON, default=list)
    parameters: Mapped[dict] = mapped_column(JSON)
    example_count: Mapped[int] = mapped_column(default=0)
    examples_sha256: Mapped[str] = mapped_column(String(64))  # retrain only when the examples change


class FlowRun(db.Model):
    """One run of a flow on a conversation: what matched, what ran, which intent; shown to agents."""

    __tablename__ = "flow_runs"
    __table_args__ = (
        Index("ix_flow_runs_conversation_created", "conversation_id", "created_at"),
        UniqueConstraint("message_id"),  # a message runs through a flow once, even if its job is retried
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    flow_id: Mapped[int | None] = mapped_column(ForeignKey("flows.id", ondelete="SET NULL"))
    flow_name: Mapped[str] = mapped_column(String(200), default="")
    outcome: Mapped[str] = mapped_column(String(20))  # ran / blocked / no_flow / skipped
    intent: Mapped[str | None] = mapped_column(String(100))
    intent_confidence: Mapped[float | None]
    matched: Mapped[list] = mapped_column(JSON, default=list)  # [{"id", "name"}] in run order
    actions: Mapped[list] = mapped_column(JSON, default=list)  # [{"action", "result"}]
    notes: Mapped[list] = mapped_column(JSON, default=list)    # warnings: regex timeouts, suppressed mail
    duration_ms: Mapped[float] = mapped_column(default=0.0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    conversation = relationship("Conversation")


class BlocklistEntry(db.Model):
    """Email Blocklist of one address: a sender address (`a@b.com`) or a whole domain (`b.com`)."""

    __tablename__ = "blocklist_entries"
    __table_args__ = (UniqueConstraint("address_id", "value"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    address_id: Mapped[int] = mapped_column(ForeignKey("email_addresses.id", ondelete="CASCADE"))
    value: Mapped[str] = mapped_column(String(320))  # lower-cased address or domain
    source: Mapped[str] = mapped_column(String(10), default="manual")  # manual / csv
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def is_domain(self) -> bool:
        return "@" not in self.value


class AutomaticMail(db.Model):
    """Ledger of automatic mail queued to a customer: the per-hour cap and the acknowledgement interval."""

    __tablename__ = "automatic_mails"
    __table_args__ = (Index("ix_automatic_mails_recipient_created", "recipient", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    recipient: Mapped[str] = mapped_column(String(320))  # lower-cased
    kind: Mapped[str] = mapped_column(String(20))  # auto_reply / acknowledgement
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id", ondelete="SET NULL"))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    address_id: Mapped[int | None] = mapped_column(ForeignKey("email_addresses.id", ondelete="SET NULL"))
    queue_id: Mapped[int | None] = mapped_column(ForeignKey("queues.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
