"""Reading and changing flows. The flows issue grows this module."""
from __future__ import annotations

from sqlalchemy import select

from app.extensions import db
from app.models.flows import Flow


def all_flows() -> list[Flow]:
    return list(db.session.scalars(select(Flow).order_by(Flow.name)))


def ensure_flow(name: str, description: str = "", rules: list | None = None) -> Flow:
    flow = db.session.scalar(select(Flow).where(Flow.name == name))
    if flow is None:
        flow = Flow(name=name, description=description, rules=rules or [])
        db.session.add(flow)
        db.session.flush()
    return flow
