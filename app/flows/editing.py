"""Editing a flow's draft: the flows, their rules, and which addresses they serve.

`Flow.rules` is the draft the editor changes (`add_rule`, `update_rule`, `move_rule`,
`delete_rule`); workers read only `Flow.published_rules` (`published_flow_rules`), which
`app.flows.publishing.publish_flows` copies from the draft, so no edit changes live mail
until it is published.

Which flow serves an address is part of the *address's* draft (`EmailAddress.flow_id`,
in its published snapshot), so attaching or moving a flow (`set_flow_addresses`) shows
up as an unpublished change of that address and reaches live traffic only when it is
published.
"""
from __future__ import annotations

from sqlalchemy import func, select

from app.extensions import db
from app.flows import engine
from app.models._types import utcnow
from app.models.channels import EmailAddress
from app.models.flows import Flow


class FlowNotFound(LookupError):
    pass


class FlowInUse(ValueError):
    """A flow attached to an address (draft or published) cannot be deleted."""


class FlowError(ValueError):
    """A flow change was refused; `conflicts` lists addresses another flow serves."""

    def __init__(self, message: str, conflicts: list[EmailAddress] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.conflicts = conflicts or []


def all_flows() -> list[Flow]:
    return list(db.session.scalars(select(Flow).order_by(Flow.name)))


def ensure_flow(name: str, description: str = "", rules: list | None = None) -> Flow:
    flow = db.session.scalar(select(Flow).where(Flow.name == name))
    if flow is None:
        flow = Flow(name=name, description=description, rules=rules or [])
        db.session.add(flow)
        db.session.flush()
    return flow


def get_flow(flow_id: int) -> Flow:
    """Raises `FlowNotFound`."""
    flow = db.session.get(Flow, flow_id)
    if flow is None:
        raise FlowNotFound(flow_id)
    return flow


def create_flow(name: str, description: str = "") -> Flow:
    """A new, empty draft flow. Raises `ValueError` for an empty or taken name."""
    name = (name or "").strip()
    if not name:
        raise ValueError("Give the flow a name.")
    if db.session.scalar(select(Flow.id).where(func.lower(Flow.name) == name.lower())):
        raise ValueError("A flow with this name exists already.")
    flow = Flow(name=name, description=(description or "").strip(), rules=[])
    db.session.add(flow)
    db.session.flush()
    return flow


def delete_flow(flow_id: int) -> None:
    """Raises `FlowInUse` when an address uses the flow (in its draft or its live version)."""
    flow = get_flow(flow_id)
    for address in db.session.scalars(select(EmailAddress)):
        if address.flow_id == flow.id or (address.published or {}).get("flow_id") == flow.id:
            raise FlowInUse(f"{address.address} uses this flow; attach another flow and publish first.")
    db.session.delete(flow)


# --- rules of the draft -------------------------------------------------------------------------

def _save_rules(flow: Flow, rules: list[dict]) -> None:
    flow.rules = engine.order_rules(rules)  # a new list, so the JSON column sees the change
    flow.draft_updated_at = utcnow()


def find_rule(flow: Flow, rule_id: str) -> dict:
    for rule in flow.rules or []:
        if rule.get("id") == rule_id:
            return rule
    raise FlowNotFound(f"rule {rule_id}")


def add_rule(flow_id: int, data: dict) -> dict:
    """Append a rule to the draft (before the always rule). Raises `RuleError`, `FlowNotFound`."""
    flow = get_flow(flow_id)
    rule = engine.normalise_rule({**data, "id": None})
    _save_rules(flow, [*(flow.rules or []), rule])
    return rule


def update_rule(flow_id: int, rule_id: str, data: dict) -> dict:
    """Replace a rule of the draft, keeping its place. Raises `RuleError`, `FlowNotFound`."""
    flow = get_flow(flow_id)
    find_rule(flow, rule_id)
    rule = engine.normalise_rule({**data, "id": rule_id})
    _save_rules(flow, [rule if r.get("id") == rule_id else r for r in flow.rules])
    return rule


def delete_rule(flow_id: int, rule_id: str) -> None:
    flow = get_flow(flow_id)
    find_rule(flow, rule_id)
    _save_rules(flow, [r for r in flow.rules if r.get("id") != rule_id])


def move_rule(flow_id: int, rule_id: str, offset: int) -> None:
    """Move an ordinary rule up (-1) or down (+1); the always rule stays last."""
    flow = get_flow(flow_id)
    rules = [r for r in flow.rules if not r.get("always")]
    always = [r for r in flow.rules if r.get("always")]
    index = next((i for i, r in enumerate(rules) if r.get("id") == rule_id), None)
    if index is None:
        raise FlowNotFound(f"rule {rule_id}")
    target = max(0, min(len(rules) - 1, index + offset))
    rules.insert(target, rules.pop(index))
    _save_rules(flow, rules + always)


# --- which addresses a flow serves -------------------------------------------------------------

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
    flow = db.session.get(Flow, flow_id)
    if flow is None:
        raise FlowError("This flow no longer exists.")
    wanted = set(address_ids)
    selected = list(db.session.scalars(select(EmailAddress).where(EmailAddress.id.in_(wanted)).order_by(EmailAddress.address)))
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
            a.touch_draft()
            attached.append(a.address)
    for a in served_addresses(flow):
        if a.id not in wanted:
            a.flow_id = None
            a.touch_draft()
            detached.append(a.address)
    db.session.flush()
    return attached, detached


def published_flow_rules(flow_id: int) -> list | None:
    """The live rules of a flow, or None when it was never published (runtime reads only this)."""
    flow = db.session.get(Flow, flow_id)
    if flow is None or flow.published_at is None:
        return None
    return list(flow.published_rules or [])
