"""Reading and changing the email channel configuration.

Draft and published: an `EmailAddress` row's columns are the admin's draft.
`publish_addresses()` copies drafts into their `published` snapshot atomically and
records who, when and why. Everything that moves live mail (ingress, polling,
flows, sending) reads the configuration through `published_address()`, which
answers only for published, enabled, non-archived addresses, so an unpublished
edit never changes live traffic.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime, timezone

from flask import current_app
from sqlalchemy import func, select

from app.extensions import db
from app.models.channels import Domain, DomainKind, EmailAddress, PublishRecord, Usage

#: The draft columns that make up a published snapshot.
SNAPSHOT_FIELDS = (
    "address", "display_name", "usage", "send_vcard", "enabled", "template_enabled", "header_html",
    "footer_html", "forwarded_from", "username", "incoming_protocol", "incoming_host", "incoming_port",
    "incoming_security", "outgoing_host", "outgoing_port", "outgoing_security", "use_reply_to_identity",
    "channel_sessions", "flow_id",
)


class NothingToPublish(ValueError):
    pass


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

    @property
    def can_receive(self) -> bool:
        return self.usage in (Usage.INBOUND.value, Usage.BOTH.value)

    @property
    def can_send(self) -> bool:
        return self.usage in (Usage.OUTBOUND.value, Usage.BOTH.value)

    @property
    def is_platform(self) -> bool:
        return self.domain_kind == DomainKind.PLATFORM.value

    @property
    def login(self) -> str:
        return self.username or self.address

    def password(self) -> str | None:
        from app.crypto import decrypt_secret

        return decrypt_secret(self.password_encrypted)

    @property
    def from_header(self) -> str:
        from email.headerregistry import Address

        return str(Address(display_name=self.display_name, addr_spec=self.address))


def ensure_platform_domain() -> Domain:
    """The platform domain row (`PLATFORM_MAIL_DOMAIN`), created on first use."""
    name = current_app.config["PLATFORM_MAIL_DOMAIN"].lower()
    domain = db.session.scalar(select(Domain).where(Domain.name == name))
    if domain is None:
        domain = Domain(name=name, kind=DomainKind.PLATFORM.value)
        db.session.add(domain)
        db.session.flush()
    return domain


def domains() -> tuple[Domain | None, list[Domain]]:
    """(platform domain or None, custom domains by name)."""
    name = current_app.config["PLATFORM_MAIL_DOMAIN"].lower()
    platform = db.session.scalar(select(Domain).where(Domain.name == name))
    custom = db.session.scalars(
        select(Domain).where(Domain.kind == DomainKind.CUSTOM.value).order_by(Domain.name)
    )
    return platform, list(custom)


def touch_draft(address: EmailAddress) -> None:
    """Mark the draft as changed (call after every edit of an address)."""
    address.draft_updated_at = datetime.now(timezone.utc)


def snapshot(address: EmailAddress) -> dict:
    """The draft as a JSON-able dict (what publishing stores)."""
    data = {name: getattr(address, name) for name in SNAPSHOT_FIELDS}
    data["domain_kind"] = address.domain.kind
    # The encrypted password travels in the snapshot so a draft password edit is not live either.
    data["password_encrypted"] = address.password_encrypted.decode("ascii") if address.password_encrypted else None
    return data


def publish_addresses(address_ids: list[int], user_id: int | None, comment: str,
                      summaries: dict[int, str] | None = None) -> PublishRecord:
    """Publish the drafts of these addresses in one transaction and record it.

    Raises `NothingToPublish` when the list is empty or `ValueError` without a
    comment. The caller commits.
    """
    comment = (comment or "").strip()
    if not comment:
        raise ValueError("a comment is required to publish")
    if not address_ids:
        raise NothingToPublish("select at least one address to publish")
    addresses = list(db.session.scalars(select(EmailAddress).where(EmailAddress.id.in_(address_ids))))
    now = datetime.now(timezone.utc)
    changes = []
    for address in addresses:
        address.published = snapshot(address)
        address.published_at = now
        if address.draft_updated_at > now:
            address.draft_updated_at = now
        changes.append({"kind": "address", "id": address.id, "name": address.address,
                        "summary": (summaries or {}).get(address.id, "published")})
    record = PublishRecord(user_id=user_id, comment=comment, changes=changes, created_at=now)
    db.session.add(record)
    db.session.flush()
    return record


def published_address(address_or_id: str | int) -> PublishedAddress | None:
    """The live configuration of an address (by id or email), or None.

    None when the address does not exist, was never published, or its published
    version is disabled, or it is archived. Runtime code must use only this.
    """
    query = select(EmailAddress)
    if isinstance(address_or_id, int):
        query = query.where(EmailAddress.id == address_or_id)
    else:
        query = query.where(func.lower(EmailAddress.address) == address_or_id.strip().lower())
    row = db.session.scalar(query)
    if row is None or row.published is None or row.archived_at is not None:
        return None
    snap = row.published
    if not snap.get("enabled"):
        return None
    known = {f.name for f in fields(PublishedAddress)}
    values = {k: v for k, v in snap.items() if k in known}
    if values.get("password_encrypted"):
        values["password_encrypted"] = values["password_encrypted"].encode("ascii")
    values.setdefault("domain_kind", row.domain.kind)
    return PublishedAddress(id=row.id, **values)


def published_addresses(kind: str | None = None) -> list[PublishedAddress]:
    """Every live address (optionally of one domain kind), for cron and ingress."""
    ids = db.session.scalars(
        select(EmailAddress.id).where(EmailAddress.published.is_not(None), EmailAddress.archived_at.is_(None))
    )
    out = [p for p in (published_address(i) for i in ids) if p is not None]
    return [p for p in out if kind is None or p.domain_kind == kind]


def publish_history(limit: int = 100) -> list[PublishRecord]:
    return list(db.session.scalars(select(PublishRecord).order_by(PublishRecord.created_at.desc()).limit(limit)))
