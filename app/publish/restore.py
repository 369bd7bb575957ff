"""Restore as draft: make the drafts of addresses and flows equal to an earlier version.

Nothing goes live: the drafts change, and the admin publishes them as usual (with a
Publish approval when those are on). Secrets are not part of a version, so passwords
(mailbox and SMTP) and OAuth sign-ins stay as they are now. Addresses and flows that did
not exist in the version are left as they are; an address or flow deleted or archived
since cannot be brought back this way and is reported instead.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select

from app.channels.addresses import SNAPSHOT_FIELDS
from app.extensions import db
from app.models._types import utcnow
from app.models.channels import EmailAddress
from app.models.flows import Flow
from app.publish.versions import get_version


class RestoreError(ValueError):
    """The version cannot be restored (unknown, or kept before versions had snapshots)."""


@dataclass
class RestoreResult:
    number: int
    restored: list[str] = field(default_factory=list)   # drafts changed
    unchanged: list[str] = field(default_factory=list)  # drafts already equal to the version
    skipped: list[str] = field(default_factory=list)    # sentences: what could not be restored, and why


def _restore_address(address: EmailAddress, data: dict, result: RestoreResult) -> None:
    values = {k: data[k] for k in SNAPSHOT_FIELDS if k in data}
    if values.get("flow_id") and db.session.get(Flow, values["flow_id"]) is None:
        result.skipped.append(f"{data.get('address')}: its flow was deleted since; its draft keeps its current flow.")
        values.pop("flow_id")
    name = (values.get("address") or address.address).lower()
    if name != address.address and db.session.scalar(
            select(EmailAddress.id).where(EmailAddress.address == name, EmailAddress.id != address.id)):
        result.skipped.append(f"{address.address}: {name} is now another address, so its draft keeps its "
                              "current name.")
        values.pop("address")
    if all(getattr(address, k) == v for k, v in values.items()):
        result.unchanged.append(address.address)
        return
    for key, value in values.items():
        setattr(address, key, value)
    address.touch_draft()
    result.restored.append(address.address)


def restore_as_draft(number: int) -> RestoreResult:
    """Make the drafts equal to version `number` (the caller commits). Raises `RestoreError`."""
    record = get_version(number)
    if record is None:
        raise RestoreError(f"There is no version {number}.")
    if not record.snapshot:
        raise RestoreError(f"Version {number} was published before versions were kept; it cannot be restored.")
    result = RestoreResult(number)
    for key, data in sorted(record.snapshot.get("addresses", {}).items(), key=lambda kv: kv[1].get("address", "")):
        address = db.session.get(EmailAddress, int(key), with_for_update=True)
        if address is None or address.archived_at is not None:
            why = "deleted" if address is None else "archived"
            result.skipped.append(f"{data.get('address')} was {why} since; create it again to use it.")
            continue
        _restore_address(address, data, result)
    for key, data in sorted(record.snapshot.get("flows", {}).items(), key=lambda kv: kv[1].get("name", "")):
        flow = db.session.get(Flow, int(key), with_for_update=True)
        if flow is None:
            result.skipped.append(f"The flow “{data.get('name')}” was deleted since.")
            continue
        rules = [dict(r) for r in data.get("rules") or []]
        if (flow.rules or []) == rules:
            result.unchanged.append(flow.name)
            continue
        flow.rules = rules
        flow.draft_updated_at = utcnow()
        result.restored.append(flow.name)
    db.session.flush()
    return result
