"""Domains of the email channel: the platform domain and the custom domains, and their address limit.

The platform domain (`PLATFORM_MAIL_DOMAIN`) is created on first use and never
deleted; its addresses are forwarded to from the contact center's own mailboxes.
A custom domain is a valid DNS name, unique, and neither the platform domain nor
below it; it holds at most `MAX_ADDRESSES_PER_CUSTOM_DOMAIN` live (non-archived)
addresses, and can be deleted only when it holds no address at all (archived ones
keep their conversations readable, so their domain stays).

Services raise `DomainError` / `DomainInUse` / `AddressLimitReached` and flush but
never commit: the caller commits.
"""
from __future__ import annotations

from flask import current_app
from sqlalchemy import delete, func, select

from app.channels.errors import AddressLimitReached, DomainError, DomainInUse
from app.channels.validation import normalise_domain_name
from app.extensions import db
from app.models.channels import AddressSetup, Domain, DomainKind, EmailAddress


def platform_domain_name() -> str:
    return current_app.config["PLATFORM_MAIL_DOMAIN"].lower()


def ensure_platform_domain() -> Domain:
    """The platform domain row (`PLATFORM_MAIL_DOMAIN`), created on first use."""
    name = platform_domain_name()
    domain = db.session.scalar(select(Domain).where(Domain.name == name))
    if domain is None:
        domain = Domain(name=name, kind=DomainKind.PLATFORM.value)
        db.session.add(domain)
        db.session.flush()
    return domain


def domains() -> tuple[Domain | None, list[Domain]]:
    """(platform domain or None, custom domains by name)."""
    name = platform_domain_name()
    platform = db.session.scalar(select(Domain).where(Domain.name == name))
    custom = db.session.scalars(
        select(Domain).where(Domain.kind == DomainKind.CUSTOM.value).order_by(Domain.name)
    )
    return platform, list(custom)


def get_domain(domain_id: int) -> Domain | None:
    return db.session.get(Domain, domain_id)


def create_domain(name: str) -> Domain:
    """Add a custom domain. Raises `DomainError` (invalid, taken, the platform's)."""
    name = normalise_domain_name(name)
    platform = platform_domain_name()
    if name == platform or name.endswith("." + platform):
        raise DomainError(f"{name} is the platform email domain (or below it); "
                          "add platform addresses in the platform section instead.", "name")
    if db.session.scalar(select(Domain.id).where(Domain.name == name)) is not None:
        raise DomainError(f"The domain {name} already exists.", "name")
    domain = Domain(name=name, kind=DomainKind.CUSTOM.value)
    db.session.add(domain)
    db.session.flush()
    return domain


def domain_delete_blocker(domain: Domain) -> str | None:
    """Why this domain cannot be deleted now, or None when it can."""
    if domain.kind == DomainKind.PLATFORM.value:
        return "The platform email domain cannot be deleted."
    total = len(domain.addresses)
    if not total:
        return None
    archived = sum(1 for a in domain.addresses if a.archived_at is not None)
    text = (f"{domain.name} still has {total} email address{'es' if total != 1 else ''}. "
            "A domain can be deleted only when it holds no address.")
    if archived:
        text += (f" {archived} of them {'are' if archived != 1 else 'is'} archived: archived addresses keep "
                 "their conversations readable, so their domain stays.")
    else:
        text += " Delete its addresses first."
    return text


def delete_domain(domain_id: int) -> str:
    """Delete a custom domain that holds no address; returns its name.

    Raises `DomainInUse` while it holds addresses (archived ones included) and
    `DomainError` for the platform domain or an unknown id.
    """
    domain = db.session.get(Domain, domain_id, with_for_update=True)
    if domain is None:
        raise DomainError("This domain no longer exists.")
    reason = domain_delete_blocker(domain)
    if reason:
        raise (DomainError if domain.kind == DomainKind.PLATFORM.value else DomainInUse)(reason)
    name = domain.name
    db.session.execute(delete(AddressSetup).where(AddressSetup.domain_id == domain.id))
    db.session.delete(domain)
    db.session.flush()
    return name


def address_limit() -> int:
    return int(current_app.config["MAX_ADDRESSES_PER_CUSTOM_DOMAIN"])


def live_address_count(domain: Domain) -> int:
    """Addresses that count against the limit: every one not archived."""
    return db.session.scalar(select(func.count(EmailAddress.id)).where(
        EmailAddress.domain_id == domain.id, EmailAddress.archived_at.is_(None))) or 0


def check_room_for_address(domain: Domain) -> None:
    """Raise `AddressLimitReached` when a custom domain is full."""
    if domain.kind != DomainKind.CUSTOM.value:
        return
    limit = address_limit()
    if live_address_count(domain) >= limit:
        raise AddressLimitReached(
            f"{domain.name} already has {limit} email address{'es' if limit != 1 else ''}, the most a custom "
            f"domain can have. Delete one first, or ask your administrator to raise MAX_ADDRESSES_PER_CUSTOM_DOMAIN.")
