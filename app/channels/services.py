"""Reading and changing the email channel configuration. The channel-setup issue grows this module."""
from __future__ import annotations

from flask import current_app
from sqlalchemy import select

from app.extensions import db
from app.models.channels import Domain, DomainKind, PublishRecord


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


def publish_history(limit: int = 100) -> list[PublishRecord]:
    return list(db.session.scalars(select(PublishRecord).order_by(PublishRecord.created_at.desc()).limit(limit)))
