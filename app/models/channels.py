"""Email channel configuration: domains, addresses (draft + published), publish history, mailbox sync state.

An `EmailAddress` row's own columns are the admin's *draft*. Publishing copies the
draft into `published` (a JSON snapshot) and stamps `published_at`; ingress,
polling, flows and sending read only that snapshot, so an edit never changes live
traffic until it is published.
"""
from __future__ import annotations

import enum
import secrets
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models._types import UTCDateTime, utcnow


class DomainKind(str, enum.Enum):
    PLATFORM = "platform"  # the installation's own domain: forwarding in, BCC/Reply-To out
    CUSTOM = "custom"      # the customer's domain: IMAP/POP3 polling and their SMTP


class AuthMethod(str, enum.Enum):
    """How Pigeonhole signs in to a custom-domain mailbox."""

    PASSWORD = "password"
    OAUTH = "oauth"  # an OAuth 2.0 access token through SASL XOAUTH2/OAUTHBEARER (app.mail.sasl)


class CredentialStatus(str, enum.Enum):
    ACTIVE = "active"
    SIGN_IN_NEEDED = "sign_in_needed"  # the refresh token was revoked or expired: an admin must sign in again


class Usage(str, enum.Enum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"
    BOTH = "both"


class WhenDisabled(str, enum.Enum):
    """What a disabled address does with new mail (its "When disabled" choice under Enable Channel)."""

    HOLD = "hold"      # accept and store it, out of every agent's view; routed when enabled and published again
    REFUSE = "refuse"  # refuse it at once (550 at the ingress): the sender's server bounces it


WHEN_DISABLED_LABELS = {WhenDisabled.HOLD.value: "Hold new mail", WhenDisabled.REFUSE.value: "Refuse new mail"}


class Domain(db.Model):
    __tablename__ = "domains"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(253), unique=True)
    kind: Mapped[str] = mapped_column(String(20), default=DomainKind.CUSTOM.value)
    # A "Microsoft Exchange" custom domain (app-only): the Entra app whose client-credentials tokens open
    # this domain's mailboxes, no user signing in (docs/oauth.md). Live credentials, like OAuth tokens: a
    # change takes effect at once. The secret is encrypted (app/crypto.py) and never shown back.
    ms_app_tenant: Mapped[str | None] = mapped_column(String(200))
    ms_app_client_id: Mapped[str | None] = mapped_column(String(200))
    ms_app_client_secret_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    addresses: Mapped[list["EmailAddress"]] = relationship(back_populates="domain")

    @property
    def microsoft_exchange(self) -> bool:
        """True for a "Microsoft Exchange" domain: its own app-only tenant, client id and secret."""
        return bool(self.ms_app_tenant and self.ms_app_client_id and self.ms_app_client_secret_encrypted)


class EmailAddress(db.Model):
    __tablename__ = "email_addresses"

    id: Mapped[int] = mapped_column(primary_key=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id"))
    address: Mapped[str] = mapped_column(String(320), unique=True)  # lower-cased
    display_name: Mapped[str] = mapped_column(String(200), default="")
    usage: Mapped[str] = mapped_column(String(20), default=Usage.BOTH.value)
    send_vcard: Mapped[bool] = mapped_column(default=False)
    enabled: Mapped[bool] = mapped_column(default=True)
    when_disabled: Mapped[str] = mapped_column(String(10), default=WhenDisabled.HOLD.value,
                                               server_default=WhenDisabled.HOLD.value)

    # Email Template Design
    template_enabled: Mapped[bool] = mapped_column(default=False)
    header_html: Mapped[str] = mapped_column(Text, default="")
    footer_html: Mapped[str] = mapped_column(Text, default="")

    # Platform domain: the contact center's own mailbox that forwards here.
    forwarded_from: Mapped[str | None] = mapped_column(String(320))

    # Custom domain: mailbox login and servers.
    username: Mapped[str | None] = mapped_column(String(320))
    password_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    auth_method: Mapped[str] = mapped_column(String(20), default=AuthMethod.PASSWORD.value)
    oauth_provider: Mapped[str | None] = mapped_column(String(40))  # a key of app.mail.oauth.providers()
    incoming_protocol: Mapped[str | None] = mapped_column(String(10))  # imap / pop3
    incoming_host: Mapped[str | None] = mapped_column(String(253))
    incoming_port: Mapped[int | None]
    incoming_security: Mapped[str | None] = mapped_column(String(10))  # ssl / starttls / none
    outgoing_host: Mapped[str | None] = mapped_column(String(253))
    outgoing_port: Mapped[int | None]
    outgoing_security: Mapped[str | None] = mapped_column(String(10))
    # The outgoing server's own sign-in, where it differs from the mailbox's (None: the same).
    smtp_username: Mapped[str | None] = mapped_column(String(320))
    smtp_password_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    # "Outgoing server needs no sign-in": a relay that trusts the network, so SMTP sends without AUTH.
    smtp_no_auth: Mapped[bool] = mapped_column(default=False)
    # A private CA (PEM) the address's servers are verified against, besides the system's.
    tls_ca_pem: Mapped[str | None] = mapped_column(Text)
    # Replies are also put in the mailbox's Sent folder (IMAP APPEND to the \Sent special-use folder).
    save_to_sent: Mapped[bool] = mapped_column(default=False)
    # "Allow unencrypted sign-in": the password may go to the servers on a connection without SSL or
    # STARTTLS (refused otherwise, except on loopback: app/mail/netguard.py).
    allow_plaintext_auth: Mapped[bool] = mapped_column(default=False)
    last_test_ok: Mapped[bool | None]
    last_test_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_test_message: Mapped[str | None] = mapped_column(Text)  # what the last Test Connection said

    # Session settings
    use_reply_to_identity: Mapped[bool] = mapped_column(default=False)
    channel_sessions: Mapped[bool] = mapped_column(default=False)

    flow_id: Mapped[int | None] = mapped_column(ForeignKey("flows.id"))

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    draft_updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    published: Mapped[dict | None] = mapped_column(JSON)
    # The address as published (`published["address"]`, lower-cased), kept in its own indexed column
    # for the ingress's per-recipient lookup: a draft rename changes `address`, never this.
    live_address: Mapped[str | None] = mapped_column(String(320), index=True)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    domain: Mapped[Domain] = relationship(back_populates="addresses")
    flow: Mapped["Flow | None"] = relationship()  # noqa: F821 (app.models.flows)

    def touch_draft(self) -> None:
        """Mark the draft as changed (call after every edit of its configuration)."""
        self.draft_updated_at = utcnow()

    @property
    def publish_state(self) -> str:
        if self.published_at is None:
            return "Never published"
        if getattr(self, "published", True) is None:  # archived, then restored: live once, not until published
            return "Unpublished changes"
        if self.draft_updated_at > self.published_at:
            return "Unpublished changes"
        return "Published"


class PublishRecord(db.Model):
    """Who published what, when and why (the publish history): each record is a version.

    `number` counts versions from 1; `snapshot` is the whole published configuration right
    after this Publish (`app.runtime.versions`), written once and never changed (records from
    before versions were kept have none). With Publish approvals on, `user_id` is the admin
    who asked and `approved_by_id` the one who approved.
    """

    __tablename__ = "publish_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    comment: Mapped[str] = mapped_column(Text)
    changes: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    number: Mapped[int | None] = mapped_column(unique=True)
    snapshot: Mapped[dict | None] = mapped_column(JSON)
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    user = relationship("User", foreign_keys=[user_id])
    approved_by = relationship("User", foreign_keys=[approved_by_id])


class MailboxState(db.Model):
    """IMAP/POP3 sync watermark per (address, folder)."""

    __tablename__ = "mailbox_states"
    __table_args__ = (UniqueConstraint("address_id", "folder"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    address_id: Mapped[int] = mapped_column(ForeignKey("email_addresses.id", ondelete="CASCADE"))
    folder: Mapped[str] = mapped_column(String(200), default="INBOX")
    uidvalidity: Mapped[int | None]
    uidnext: Mapped[int | None]
    last_uid: Mapped[int | None]
    seen_uidls: Mapped[list | None] = mapped_column(JSON)  # POP3 UIDL watermark
    last_poll_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    error_count: Mapped[int] = mapped_column(default=0)
    next_poll_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Where this mailbox's sync starts (publish time or the backfill window).
    sync_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Since when every poll failed (None: the last one worked), and when admins were told of it.
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    alerted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OAuthCredential(db.Model):
    """The OAuth 2.0 tokens a custom-domain address signs in with (one row per address).

    Tokens are live credentials, not draft configuration: signing in again takes effect
    at once, without a publish. Both tokens are encrypted (app/crypto.py). `subject` is
    the mailbox the provider says signed in; `status` turns to "sign_in_needed" when
    the provider refuses the refresh token, with the provider's words in `status_message`.
    App-only providers (client credentials) have no refresh token: a new access token
    is asked for each time the old one is about to expire.
    """

    __tablename__ = "oauth_credentials"

    id: Mapped[int] = mapped_column(primary_key=True)
    address_id: Mapped[int] = mapped_column(ForeignKey("email_addresses.id", ondelete="CASCADE"), unique=True)
    provider: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str | None] = mapped_column(String(320))
    scope: Mapped[str] = mapped_column(Text, default="")
    access_token_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    refresh_token_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(20), default=CredentialStatus.ACTIVE.value)
    status_message: Mapped[str | None] = mapped_column(Text)
    refreshed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When admins were told that it needs a sign-in (app/runtime/oauth_alerts.py); None once signed in again.
    alerted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def status_label(self) -> str:
        return "Sign-in needed" if self.status == CredentialStatus.SIGN_IN_NEEDED.value else "Signed in"


class AddressSetup(db.Model):
    """An unfinished "New Email Address" or "Edit" wizard: its state lives here, not in the session.

    `values` holds the form values of every step so far (EmailAddress column names);
    a password typed in the wizard is kept only encrypted. `test_result` is the last
    Test Connection run from the wizard, with a fingerprint of the settings it
    tested. `preview_html` is the last rendered Preview, served to a sandboxed frame.
    Saving the wizard writes the address's draft and deletes this row.
    """

    __tablename__ = "address_setups"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The wizard's id in its URLs: random, never reused, so an old link cannot open another wizard.
    token: Mapped[str | None] = mapped_column(String(64), unique=True, index=True,
                                              default=lambda: secrets.token_urlsafe(24))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"))
    address_id: Mapped[int | None] = mapped_column(ForeignKey("email_addresses.id", ondelete="CASCADE"))
    values: Mapped[dict] = mapped_column(JSON, default=dict)
    password_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    smtp_password_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    # "Sign in with …" under way: its OAuth state, and (JSON) provider, encrypted PKCE verifier and,
    # once the provider answered, encrypted tokens and the signed-in mailbox (app/channels/sign_in.py).
    oauth_state: Mapped[str | None] = mapped_column(String(64), unique=True, index=True)
    oauth_sign_in: Mapped[dict | None] = mapped_column(JSON)
    test_result: Mapped[dict | None] = mapped_column(JSON)
    preview_html: Mapped[str] = mapped_column(Text, default="")
    preview_version: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    domain: Mapped[Domain] = relationship()
    address: Mapped[EmailAddress | None] = relationship()
