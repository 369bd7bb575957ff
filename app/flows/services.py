"""Reading and changing flows. The flows issue grows this module.

Which flow serves an address is part of the *address's* draft (`EmailAddress.flow_id`,
in its published snapshot), so attaching or moving a flow shows up as an unpublished
change of that address and reaches live traffic only when it is published.
"""
from __future__ import annotations

from sqlalchemy import select

from app.extensions import db
from app.models.channels import EmailAddress
from app.models.flows import Flow


class FlowError(ValueError):
    """A flow change was refused; `conflicts` lists addresses another flow serves."""

    def __init__(self, message: str, conflicts: list[EmailAddress] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.conflicts = conflicts or []


def all_flows() -> list[Flow]:
    return list(db.session.scalars(select(Flow).order_by(Flow.name)))


def get_flow(flow_id: int) -> Flow | None:
    return db.session.get(Flow, flow_id)


def ensure_flow(name: str, description: str = "", rules: list | None = None) -> Flow:
    flow = db.session.scalar(select(Flow).where(Flow.name == name))
    if flow is None:
        flow = Flow(name=name, description=description, rules=rules or [])
        db.session.add(flow)
        db.session.flush()
    return flow


def assignable_addresses() -> list[EmailAddress]:
    """Every address a flow can serve (not archived), by address."""
    return list(db.session.scalars(
        select(EmailAddress).where(EmailAddress.archived_at.is_(None)).order_by(EmailAddress.address)))


def served_addresses(flow: Flow) -> list[EmailAddress]:
    return list(db.session.scalars(select(EmailAddress).where(
        EmailAddress.flow_id == flow.id, EmailAddress.archived_at.is_(None)).order_by(EmailAddress.address)))


def set_flow_addresses(flow_id: int, address_ids: list[int], move: bool = False) -> tuple[list[str], list[str]]:
    """Make the flow serve exactly these addresses; returns (attached, detached) address names.

    An address has at most one flow: selecting one that another flow serves raises
    `FlowError` (with `conflicts`) unless `move` says to move it. Each changed
    address gets an unpublished change. Raises `FlowError` for an unknown flow or
    an unknown or archived address.
    """
    from app.channels.services import touch_draft

    flow = db.session.get(Flow, flow_id)
    if flow is None:
        raise FlowError("This flow no longer exists.")
    wanted = set(address_ids)
    selected = list(db.session.scalars(select(EmailAddress).where(EmailAddress.id.in_(wanted))))
    if len(selected) != len(wanted) or any(a.archived_at is not None for a in selected):
        raise FlowError("An address you selected no longer exists or is archived. Open the dialog again.")
    conflicts = [a for a in selected if a.flow_id not in (None, flow.id)]
    if conflicts and not move:
        names = ", ".join(f"{a.address} ({a.flow.name})" for a in conflicts)
        raise FlowError(f"Another flow serves {names}. An address has one flow: tick "
                        f"\u201cMove these addresses to this flow\u201d to move {'them' if len(conflicts) > 1 else 'it'}.",
                        conflicts)
    attached, detached = [], []
    for a in selected:
        if a.flow_id != flow.id:
            a.flow_id = flow.id
            touch_draft(a)
            attached.append(a.address)
    for a in served_addresses(flow):
        if a.id not in wanted:
            a.flow_id = None
            touch_draft(a)
            detached.append(a.address)
    db.session.flush()
    return attached, detached


def published_flow_rules(flow_id: int) -> list | None:
    """The live rules of a flow, or None when it was never published (runtime reads only this)."""
    flow = db.session.get(Flow, flow_id)
    if flow is None or flow.published_at is None:
        return None
    return list(flow.published_rules or [])
