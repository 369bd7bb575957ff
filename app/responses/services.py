"""Reading and changing Standard Responses. The workspace issue grows this module."""
from __future__ import annotations

from sqlalchemy import select

from app.extensions import db
from app.models.responses import ResponseGroup


def all_groups() -> list[ResponseGroup]:
    return list(db.session.scalars(select(ResponseGroup).order_by(ResponseGroup.name)))
