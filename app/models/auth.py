"""Users, roles, queues, sign-in sessions, the failed-login throttle, password-reset links and the audit log."""
from __future__ import annotations

import enum
from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import JSON, Column, ForeignKey, Index, Integer, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from app.extensions import db
from app.models._types import UTCDateTime, utcnow


class Role(str, enum.Enum):
    """Roles widen in this order: an admin can do what a supervisor can, and so on."""

    AGENT = "agent"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return [Role.AGENT, Role.SUPERVISOR, Role.ADMIN].index(self)


queue_members = Table(
    "queue_members",
    db.metadata,
    Column("queue_id", Integer, ForeignKey("queues.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
)


def _default_landing_view(context) -> str:
    """A new user's start page: agents work their own conversations ("Mine"), others see all."""
    role = context.get_current_parameters().get("role") if context is not None else None
    return "inbox_mine" if role in (None, Role.AGENT.value, Role.AGENT) else "inbox"


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    nickname: Mapped[str] = mapped_column(String(100), default="", server_default="")  # Standard Responses
    password_hash: Mapped[str] = mapped_column(String(300))
    role: Mapped[str] = mapped_column(String(20), default=Role.AGENT.value)
    active: Mapped[bool] = mapped_column(default=True)
    email_capacity: Mapped[int] = mapped_column(default=5)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Attempts on this account refused or with a wrong password since its last sign-in: said at the next one.
    failed_signins: Mapped[int] = mapped_column(default=0, server_default="0")
    last_failed_signin_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Routing: when it last gave this agent a conversation ("longest idle" tie-break)
    last_assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Profile: the signature under the agent's replies (sanitised HTML), the zone times are shown in,
    # and where "/" leads after sign-in (a key of `app.web.LANDING_VIEWS`). `time_zone` is the zone the
    # user chose, None while they keep "Browser's time zone": then `browser_time_zone`, the zone their
    # browser last reported (`app.auth.accounts.note_browser_zone`), is used; `shown_time_zone` is the one in use.
    signature_html: Mapped[str] = mapped_column(Text, default="", server_default="")
    time_zone: Mapped[str | None] = mapped_column(String(64))
    browser_time_zone: Mapped[str | None] = mapped_column(String(64))
    landing_view: Mapped[str] = mapped_column(String(40), default=_default_landing_view, server_default="inbox")
    deactivated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    queues: Mapped[list["Queue"]] = relationship(secondary=queue_members, back_populates="members")

    def set_password(self, password: str) -> None:
        from flask import current_app

        self.password_hash = generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        return self.active

    def has_role(self, role: Role) -> bool:
        return Role(self.role).rank >= role.rank

    @property
    def shown_time_zone(self) -> str:
        """The zone this user's times are shown in: the one they chose, else their browser's, else UTC."""
        return self.time_zone or self.browser_time_zone or "UTC"

    def __repr__(self) -> str:
        return f"<User {self.email} {self.role}>"


class Queue(db.Model):
    __tablename__ = "queues"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(String(1000), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Routing: business hours calendar, acknowledgement, outbound addresses
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC")
    business_hours: Mapped[dict | None] = mapped_column(JSON)  # None: always open; see app.flows.routing
    ack_enabled: Mapped[bool] = mapped_column(default=False)
    ack_subject: Mapped[str] = mapped_column(String(300), default="")
    ack_body_html: Mapped[str] = mapped_column(Text, default="")
    ack_interval_minutes: Mapped[int] = mapped_column(default=24 * 60)
    outbound_address_ids: Mapped[list] = mapped_column(JSON, default=list)
    # The queue that mail matching no flow rule (or arriving on an address with no flow) lands in;
    # at most one queue has it (app.flows.queues.default_queue chooses one when none does).
    is_default: Mapped[bool] = mapped_column(default=False)

    members: Mapped[list[User]] = relationship(secondary=queue_members, back_populates="queues")


class UserSession(db.Model):
    """One sign-in of a user on one browser: the server-side half of its session and "Keep me signed in".

    The browser holds the key (in the signed session cookie) and, when it asked to be kept
    signed in, a remember token `<key>.<secret>` in its own cookie; the database holds only
    their SHA-256. Deleting the row ends both at once (`app.auth.sessions`).
    """

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # "Keep me signed in": the current secret's hash and, for a short grace after it rotated, the previous one's
    remember_hash: Mapped[str | None] = mapped_column(String(64))
    previous_remember_hash: Mapped[str | None] = mapped_column(String(64))
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    client_address: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(300), default="")


class LoginThrottle(db.Model):
    """Sign-in attempts counted per key in a window (`app.auth.throttle`): "pair:<email>|<ip>",
    "address:<ip>", "account:<email>", "pace:<email>"."""

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)



class PasswordReset(db.Model):
    """A one-time link that sets a user's password (`app.auth.resets`): only the token's SHA-256 is kept.

    It works once (`used_at`), until `expires_at`, and only while it is the user's newest link.
    """

    __tablename__ = "password_resets"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class AuditEntry(db.Model):
    """One change to an account (`app.auth.audit`): who did what to whom, when, and details without secrets."""

    __tablename__ = "audit_entries"
    __table_args__ = (Index("ix_audit_entries_target_created", "target_user_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(40))
    target_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    details: Mapped[dict] = mapped_column(JSON, default=dict)

    actor = relationship(User, foreign_keys=[actor_id])
    target = relationship(User, foreign_keys=[target_user_id])
