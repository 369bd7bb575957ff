"""The whole published configuration as one JSON document: what a Publish version keeps.

`published_snapshot()` reads only what is live (each address's `published` snapshot, each
flow's `published_rules`), never drafts, and leaves secrets out: the encrypted passwords
become "set or not" flags, so a version can be shown, compared and restored without ever
holding a credential. Names of the queues, agents and Standard Responses that published
rules refer to are kept beside them, so a version still reads by name after a rename or a
deletion. `record_version()` numbers a `PublishRecord` and stores the snapshot on it once;
nothing changes a version afterwards.

Shape::

    {"addresses": {"<id>": {<published fields>, "domain": "acme.com", "has_password": bool,
                            "has_smtp_password": bool}},
     "flows": {"<id>": {"name": "...", "rules": [...]}},
     "names": {"queues": {"<id>": "Billing"}, "users": {...}, "responses": {...}}}
"""
from __future__ import annotations

from sqlalchemy import func, select

from app.extensions import db
from app.models.auth import Queue, User
from app.models.channels import Domain, EmailAddress, PublishRecord
from app.models.flows import Flow
from app.models.responses import StandardResponse

#: Published fields that hold secrets: never copied into a version.
SECRET_FIELDS = ("password_encrypted", "smtp_password_encrypted")


def _referenced(rules: list[dict]) -> dict[str, set[int]]:
    refs = {"queues": set(), "users": set(), "responses": set()}
    for rule in rules:
        for item in list(rule.get("conditions") or []) + list(rule.get("actions") or []):
            if item.get("queue_id"):
                refs["queues"].add(int(item["queue_id"]))
            if item.get("user_id"):
                refs["users"].add(int(item["user_id"]))
            if item.get("response_id"):
                refs["responses"].add(int(item["response_id"]))
    return refs


def published_snapshot() -> dict:
    """Every live address and published flow, as described in the module docstring."""
    addresses = {}
    rows = db.session.execute(select(EmailAddress, Domain.name).join(Domain, EmailAddress.domain_id == Domain.id)
                              .where(EmailAddress.published.is_not(None), EmailAddress.archived_at.is_(None))
                              .order_by(EmailAddress.id))
    for address, domain in rows:
        data = {k: v for k, v in dict(address.published).items() if k not in SECRET_FIELDS}
        data["domain"] = domain
        data["has_password"] = bool(address.published.get("password_encrypted"))
        data["has_smtp_password"] = bool(address.published.get("smtp_password_encrypted"))
        addresses[str(address.id)] = data
    flows, refs = {}, {"queues": set(), "users": set(), "responses": set()}
    for flow in db.session.scalars(select(Flow).where(Flow.published_rules.is_not(None)).order_by(Flow.id)):
        rules = [dict(r) for r in flow.published_rules or []]
        flows[str(flow.id)] = {"name": flow.name, "rules": rules}
        for kind, ids in _referenced(rules).items():
            refs[kind] |= ids
    names = {"queues": {}, "users": {}, "responses": {}}
    if refs["queues"]:
        names["queues"] = {str(i): n for i, n in db.session.execute(
            select(Queue.id, Queue.name).where(Queue.id.in_(refs["queues"])))}
    if refs["users"]:
        names["users"] = {str(u.id): u.name or u.email for u in db.session.scalars(
            select(User).where(User.id.in_(refs["users"])))}
    if refs["responses"]:
        names["responses"] = {str(i): t for i, t in db.session.execute(
            select(StandardResponse.id, StandardResponse.title).where(StandardResponse.id.in_(refs["responses"])))}
    return {"addresses": addresses, "flows": flows, "names": names}


def record_version(record: PublishRecord) -> PublishRecord:
    """Give this new record the next version number and the snapshot of what is live now (the caller commits).

    Call it after the Publish has changed the published columns, in the same transaction.
    Two Publishes racing for one number: the unique constraint refuses the second commit.
    """
    db.session.flush()
    record.number = (db.session.scalar(select(func.max(PublishRecord.number))) or 0) + 1
    record.snapshot = published_snapshot()
    db.session.flush()
    return record
