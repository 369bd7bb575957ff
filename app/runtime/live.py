"""The live configuration: what the published, enabled addresses say, for everything that moves mail.

Admins edit drafts (`EmailAddress` columns); Publish copies a draft into the row's
`published` snapshot. Ingress, polling, flows and sending read only this module's
`PublishedAddress`, built from that snapshot, so an unpublished edit never changes
live traffic. None means "not live": never published, disabled, or archived.

A disabled address whose published "When disabled" is "hold" still receives: the
ingress, polling and IDLE take its mail through `receiving_address()`, and ingest
stores it as held, unrouted, until the address is published enabled again
(`app.runtime.hold`). Sending and everything else read only `published_address()`.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from email.headerregistry import Address

from sqlalchemy import bindparam, select

from app.crypto import decrypt_secret
from app.extensions import db
from app.models.channels import AuthMethod, Domain, DomainKind, EmailAddress, Usage, WhenDisabled


@dataclass(frozen=True)
class PublishedAddress:
    """The live configuration of one address: what runtime code may act on."""

    id: int
    domain_kind: str
    address: str
    display_name: str
    usage: str
    send_vcard: bool
    enabled: bool
    template_enabled: bool
    header_html: str
    footer_html: str
    forwarded_from: str | None
    username: str | None
    incoming_protocol: str | None
    incoming_host: str | None
    incoming_port: int | None
    incoming_security: str | None
    outgoing_host: str | None
    outgoing_port: int | None
    outgoing_security: str | None
    use_reply_to_identity: bool
    channel_sessions: bool
    flow_id: int | None
    password_encrypted: bytes | None = None
    auth_method: str = AuthMethod.PASSWORD.value  # snapshots published before OAuth existed say nothing
    oauth_provider: str | None = None
    tls_ca_pem: str | None = None  # the address's private CA (PEM), besides the system's
    smtp_username: str | None = None  # the outgoing server's own sign-in (None: the mailbox's)
    smtp_password_encrypted: bytes | None = None
    smtp_no_auth: bool = False  # "Outgoing server needs no sign-in": SMTP without AUTH
    save_to_sent: bool = False  # replies are also APPENDed to the mailbox's \Sent folder
    allow_plaintext_auth: bool = False  # may sign in without encryption ("Allow unencrypted sign-in")
    # What it does with new mail while disabled: "hold" or "refuse". Snapshots published before the
    # choice existed say nothing and refused then, so they still refuse until published again.
    when_disabled: str = WhenDisabled.REFUSE.value

    @property
    def can_receive(self) -> bool:
        return self.usage in (Usage.INBOUND.value, Usage.BOTH.value)

    @property
    def holds_mail(self) -> bool:
        """Disabled, and published to hold new mail (accept and store it, route it once enabled)."""
        return not self.enabled and self.when_disabled == WhenDisabled.HOLD.value

    @property
    def can_send(self) -> bool:
        return self.usage in (Usage.OUTBOUND.value, Usage.BOTH.value)

    @property
    def is_platform(self) -> bool:
        return self.domain_kind == DomainKind.PLATFORM.value

    @property
    def login(self) -> str:
        return self.username or self.address

    @property
    def uses_oauth(self) -> bool:
        return self.auth_method == AuthMethod.OAUTH.value

    def password(self) -> str | None:
        return decrypt_secret(self.password_encrypted)

    @property
    def smtp_login(self) -> str:
        return self.smtp_username or self.login

    def smtp_password(self) -> str | None:
        """The outgoing server's password: its own, else the mailbox's; None when it needs no sign-in."""
        if self.smtp_no_auth:
            return None
        return decrypt_secret(self.smtp_password_encrypted) if self.smtp_username else self.password()

    @property
    def from_header(self) -> str:
        return str(Address(display_name=self.display_name, addr_spec=self.address))


_PUBLISHED_FIELDS = frozenset(f.name for f in fields(PublishedAddress)) - {"id"}
_PUBLISHED = select(EmailAddress.id, EmailAddress.published, EmailAddress.archived_at, Domain.kind).join(
    Domain, Domain.id == EmailAddress.domain_id)
_PUBLISHED_BY_ID = _PUBLISHED.where(EmailAddress.id == bindparam("id"))
# By the address as published (`live_address`), never the draft's `address`: a rename is live only once
# published (archiving clears it; the archived filter is a second guard).
_PUBLISHED_BY_ADDRESS = _PUBLISHED.where(EmailAddress.live_address == bindparam("address"),
                                         EmailAddress.archived_at.is_(None)).order_by(EmailAddress.id)


def published_address(address_or_id: str | int) -> PublishedAddress | None:
    """The live configuration of an address (by id or its published email), or None.

    None when the address does not exist, was never published, or its published
    version is disabled, or it is archived. Runtime code must use only this (or, to
    receive, `receiving_address`).
    """
    address = published_configuration(address_or_id)
    return address if address is not None and address.enabled else None


def receiving_address(address_or_id: str | int) -> PublishedAddress | None:
    """The published configuration of an address that takes new mail: enabled, or disabled and holding it.

    The caller checks `can_receive`, and `holds_mail` to store the mail without routing it.
    """
    address = published_configuration(address_or_id)
    return address if address is not None and (address.enabled or address.holds_mail) else None


def published_configuration(address_or_id: str | int) -> PublishedAddress | None:
    """What was published for an address (by id or its published email), enabled or not; None when it
    does not exist, was never published or is archived. Only for telling "disabled" from "unknown":
    live traffic goes through `published_address` and `receiving_address`."""
    # Columns in one prebuilt query on the session's connection, no ORM objects: this runs for every
    # message sent and received. That bypasses autoflush, so pending changes are flushed first.
    db.session.flush()
    connection = db.session.connection()
    if isinstance(address_or_id, int):
        row = connection.execute(_PUBLISHED_BY_ID, {"id": address_or_id}).first()
    else:
        row = connection.execute(_PUBLISHED_BY_ADDRESS, {"address": address_or_id.strip().lower()}).first()
    if row is None or row.published is None or row.archived_at is not None:
        return None
    snap = row.published
    values = {k: v for k, v in snap.items() if k in _PUBLISHED_FIELDS}
    for key in ("password_encrypted", "smtp_password_encrypted"):
        if values.get(key):
            values[key] = values[key].encode("ascii")
    values.setdefault("domain_kind", row.kind)
    values["enabled"] = bool(values.get("enabled"))
    return PublishedAddress(id=row.id, **values)


def published_addresses(kind: str | None = None, holding: bool = False) -> list[PublishedAddress]:
    """Every live address (optionally of one domain kind), for cron and ingress; with `holding`, also the
    disabled ones that hold new mail (polling and IDLE fetch their mail to hold it)."""
    ids = db.session.scalars(
        select(EmailAddress.id).where(EmailAddress.published.is_not(None), EmailAddress.archived_at.is_(None))
    )
    look_up = receiving_address if holding else published_address
    out = [p for p in (look_up(i) for i in ids) if p is not None]
    return [p for p in out if kind is None or p.domain_kind == kind]
