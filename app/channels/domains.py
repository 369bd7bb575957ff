"""Domains of the email channel: the platform domain and the custom domains, and their address limit.

The platform domain (`PLATFORM_MAIL_DOMAIN`) is created on first use and never
deleted; its addresses are forwarded to from the contact center's own mailboxes.
A custom domain is a valid DNS name, unique, and neither the platform domain nor
below it; it holds at most `MAX_ADDRESSES_PER_CUSTOM_DOMAIN` live (non-archived)
addresses, and can be deleted only when it holds no address at all (archived ones
keep their conversations readable, so their domain stays).

A custom domain may be of type "Microsoft Exchange" (app-only, as Kore calls it): it keeps
the Entra app (Tenant ID, Client ID, Client Secret) whose client-credentials tokens open its
mailboxes (`set_microsoft_exchange`). The secret is encrypted and never shown back; left
blank it keeps the stored one, except when the tenant or client changes: a stored secret is
only sent for the app it was typed for. A change takes effect at once (the app-only
addresses drop the tokens the old app gave).

Services raise `DomainError` / `DomainInUse` / `AddressLimitReached` and flush but
never commit: the caller commits.
"""
from __future__ import annotations

import re

from flask import current_app
from sqlalchemy import delete, func, select

from app.channels.errors import AddressLimitReached, DomainError, DomainInUse
from app.channels.validation import normalise_domain_name
from app.crypto import encrypt_secret
from app.extensions import db
from app.models.channels import AddressSetup, Domain, DomainKind, EmailAddress
from app.runtime.oauth import forget_app_tokens

#: A tenant is a GUID or a domain (contoso.onmicrosoft.com); a client id a GUID. Both go into the token URL.
_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,199}$")
_CLIENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


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


def create_domain(name: str, exchange: tuple[str, str, str] | None = None) -> Domain:
    """Add a custom domain; `exchange` = (tenant, client id, client secret) makes it a Microsoft Exchange one.

    Raises `DomainError` (invalid, taken, the platform's; a missing or bad app field, naming it).
    """
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
    if exchange is not None:
        set_microsoft_exchange(domain, *exchange)
    return domain


def set_microsoft_exchange(domain: Domain, tenant: str, client_id: str, client_secret: str) -> bool:
    """Make the custom domain a Microsoft Exchange one with this app, or change its app; returns True when
    the app changed. An empty `client_secret` keeps the stored one unless the tenant or client changed.

    Raises `DomainError` naming the field ("tenant_id", "client_id", "client_secret").
    """
    if domain.kind != DomainKind.CUSTOM.value:
        raise DomainError("Only a custom domain can be a Microsoft Exchange domain.")
    tenant, client_id = (tenant or "").strip(), (client_id or "").strip()
    if not tenant:
        raise DomainError("Enter the Tenant ID: the directory (tenant) ID of your Microsoft Entra tenant, or its "
                          "domain like contoso.onmicrosoft.com.", "tenant_id")
    if not _TENANT.match(tenant):
        raise DomainError("A Tenant ID is a GUID or a domain name (letters, digits, dots and hyphens).", "tenant_id")
    if not client_id:
        raise DomainError("Enter the Client ID: the app registration's Application (client) ID.", "client_id")
    if not _CLIENT_ID.match(client_id):
        raise DomainError("A Client ID is the app's GUID (letters, digits and hyphens).", "client_id")
    moved = (tenant, client_id) != (domain.ms_app_tenant, domain.ms_app_client_id)
    if not client_secret:
        if domain.ms_app_client_secret_encrypted is None:
            raise DomainError("Enter the Client Secret (its value, not its ID).", "client_secret")
        if moved:
            raise DomainError("You changed the Tenant ID or Client ID: type the Client Secret again. A stored "
                              "secret is only sent for the app it was typed for.", "client_secret")
    domain.ms_app_tenant, domain.ms_app_client_id = tenant, client_id
    if client_secret:
        domain.ms_app_client_secret_encrypted = encrypt_secret(client_secret)
    db.session.flush()
    if moved or client_secret:
        forget_app_tokens(domain.id)
        return True
    return False


def clear_microsoft_exchange(domain: Domain) -> bool:
    """Make a Microsoft Exchange domain a plain custom one (its app-only addresses fall back to the
    `OAUTH_MICROSOFT_APP_*` settings); returns True when it was one."""
    was = domain.ms_app_tenant is not None or domain.ms_app_client_secret_encrypted is not None
    domain.ms_app_tenant = domain.ms_app_client_id = domain.ms_app_client_secret_encrypted = None
    db.session.flush()
    if was:
        forget_app_tokens(domain.id)
    return was


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
        raise AddressLimitReached(limit_reached_message(domain, limit))


def limit_reached_message(domain: Domain, limit: int) -> str:
    """Why a full custom domain takes no "New Email Address" (shown beside the disabled button, too)."""
    return (f"{domain.name} has its {limit} email address{'es' if limit != 1 else ''}, the most a custom domain can "
            f"have (the MAX_ADDRESSES_PER_CUSTOM_DOMAIN setting). Delete one to add another.")
