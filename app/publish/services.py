"""Publish: make the drafts of addresses and flows live, together, with a comment, and keep the history.

Admins edit drafts in the channels and flows areas. `pending_changes()` lists every
address and flow whose draft differs from what is live, with a one-line summary per
item; `publish()` copies the chosen drafts into their published versions in the
caller's one transaction (addresses: `EmailAddress.published`, read by
`app.runtime.live`, and their mailboxes polled at once after the commit; flows: `app.flows.publishing.publish_flows`) and records a
`PublishRecord`: who, when, why and what. This area sits above channels and flows
and is the only one that changes both.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import func, or_, select

from app.channels.addresses import snapshot
from app.channels.validation import SECURITY_LABELS, USAGE_LABELS
from app.extensions import db
from app.flows.publishing import publish_flows
from app.flows.queues import default_queue_name
from app.models.channels import WHEN_DISABLED_LABELS, EmailAddress, MailboxState, PublishRecord, WhenDisabled
from app.models.flows import Flow
from app.runtime.hold import release_held
from app.runtime.poll import poll_soon
from app.runtime.snapshot import record_version


class NothingToPublish(ValueError):
    pass


class PublishError(ValueError):
    """A selected item cannot be published (gone, archived); `message` says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class StaleDraft(PublishError):
    """A selected draft changed after the admin reviewed it."""


_FIELD_LABELS = {
    "address": "Email Address", "display_name": "Display Name", "usage": "Usage",
    "send_vcard": "Send contact card (.VCF)", "enabled": "Enable Channel", "template_enabled": "Email Template Design",
    "forwarded_from": "Forwarded from", "flow_id": "Flow", "save_to_sent": "Save replies to the Sent folder",
    "when_disabled": "When disabled",
}


def _show(key: str, value) -> str:
    if key == "usage":
        return USAGE_LABELS.get(value, str(value))
    if key == "template_enabled":
        return "on" if value else "off"
    if key == "when_disabled":  # snapshots published before the choice existed refused
        return WHEN_DISABLED_LABELS.get(value or WhenDisabled.REFUSE.value, str(value))
    if key == "flow_id":
        flow = db.session.get(Flow, value) if value else None
        return flow.name if flow else "none"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    return str(value) if value not in (None, "") else "none"


def _server_text(data: dict, side: str) -> str:
    host = data.get(f"{side}_host")
    if not host:
        return "none"
    protocol = (data.get("incoming_protocol") or "imap").upper() if side == "incoming" else "SMTP"
    return f"{protocol} {host}:{data.get(f'{side}_port')} ({SECURITY_LABELS.get(data.get(f'{side}_security'), '?')})"


def describe_changes(address: EmailAddress) -> list[str]:
    """What publishing this address would change, one short phrase per difference."""
    draft = snapshot(address)
    live = address.published
    if live is None:
        state = "enabled" if address.enabled else \
            f"disabled, {WHEN_DISABLED_LABELS.get(address.when_disabled, address.when_disabled).lower()}"
        return [f"New address ({USAGE_LABELS.get(address.usage, address.usage)}, {state})"]
    out = []
    for key in ("address", "display_name", "usage", "enabled", "when_disabled", "send_vcard", "forwarded_from",
                "template_enabled", "flow_id", "save_to_sent"):
        if key == "when_disabled" and _show(key, draft.get(key)) == _show(key, live.get(key)):
            continue
        if draft.get(key) != live.get(key):
            out.append(f"{_FIELD_LABELS[key]}: {_show(key, live.get(key))} → {_show(key, draft.get(key))}"
                       + (_disabling(draft) if key == "enabled" else ""))
    for key, label in (("header_html", "Header changed"), ("footer_html", "Footer changed"),
                       ("username", "User Name changed"), ("password_encrypted", "Password changed"),
                       ("tls_ca_pem", "Private CA changed"), ("smtp_username", "SMTP User Name changed"),
                       ("smtp_no_auth", "Outgoing server sign-in changed"),
                       ("smtp_password_encrypted", "SMTP Password changed")):
        if (draft.get(key) or None) != (live.get(key) or None):
            out.append(label)
    for side, label in (("incoming", "Incoming server"), ("outgoing", "Outgoing server")):
        if _server_text(draft, side) != _server_text(live, side):
            out.append(f"{label}: {_server_text(live, side)} → {_server_text(draft, side)}")
    if bool(draft.get("allow_plaintext_auth")) != bool(live.get("allow_plaintext_auth")):  # older snapshots lack it
        out.append("Allow unencrypted sign-in: " + " → ".join(_show("", bool(s.get("allow_plaintext_auth")))
                                                              for s in (live, draft)))
    if any(draft.get(k) != live.get(k) for k in ("use_reply_to_identity", "channel_sessions")):
        out.append("Session settings changed")
    return out or ["No differences from the published version"]


def _disabling(draft: dict) -> str:
    """What publishing "Enable Channel: No" does to new mail, or what enabling does to mail held."""
    if draft.get("enabled"):
        return " (mail held meanwhile is routed now)"
    if draft.get("when_disabled") == WhenDisabled.REFUSE.value:
        return " (new mail is refused: senders get it back)"
    return " (new mail is held, out of every queue, until enabled again)"


def describe_flow_changes(flow: Flow) -> list[str]:
    if flow.published_at is None:
        return ["New flow"]
    if (flow.rules or []) != (flow.published_rules or []):
        return ["Rules changed"]
    return ["No differences from the published version"]


def publish_warnings(address_ids=(), flow_ids=()) -> list[str]:
    """What would not work once these addresses go live, one sentence per problem (publishing stays allowed).

    An address with no flow, or whose flow was never published (and is not published with
    it) or has no rules: its mail goes to the default queue. An address whose last Test
    Connection failed: its mailbox or server may refuse it.
    """
    flow_ids = set(flow_ids)
    fallback = default_queue_name()
    out = []
    for a in db.session.scalars(select(EmailAddress).where(EmailAddress.id.in_(list(address_ids)))
                                .order_by(EmailAddress.address)):
        receives = a.usage != "outbound"
        flow = db.session.get(Flow, a.flow_id) if a.flow_id else None
        rules = (flow.rules if flow.id in flow_ids else flow.published_rules) if flow is not None else None
        if receives and flow is None:
            out.append(f"{a.address} has no flow: its mail goes to the default queue “{fallback}”.")
        elif receives and rules is None:
            out.append(f"{a.address}: its flow “{flow.name}” was never published, so its mail goes to the default "
                       f"queue “{fallback}”. Publish the flow with it.")
        elif receives and not rules:
            out.append(f"{a.address}: its flow “{flow.name}” has no rules, so its mail goes to the default "
                       f"queue “{fallback}”.")
        if a.last_test_ok is False:
            said = f" ({a.last_test_message})" if a.last_test_message else ""
            out.append(f"{a.address}: the last Test Connection failed{said}. Its mailbox or server may refuse it.")
    return out


def _version(row) -> str:
    return row.draft_updated_at.isoformat()


@dataclass(frozen=True)
class PendingChange:
    """One address or flow whose draft differs from what is live."""

    kind: str  # "address" or "flow"
    id: int
    name: str
    state: str
    summary: str
    version: str  # the draft's timestamp when listed; publishing refuses a draft changed since

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.id}"


def pending_changes() -> list[PendingChange]:
    """Every non-archived address and every flow with unpublished changes (addresses first)."""
    out = []
    addresses = db.session.scalars(select(EmailAddress).where(
        EmailAddress.archived_at.is_(None),
        or_(EmailAddress.published_at.is_(None), EmailAddress.draft_updated_at > EmailAddress.published_at),
    ).order_by(EmailAddress.address))
    for a in addresses:
        out.append(PendingChange("address", a.id, a.address, a.publish_state, "; ".join(describe_changes(a)),
                                 _version(a)))
    flows = db.session.scalars(select(Flow).where(
        or_(Flow.published_at.is_(None), Flow.draft_updated_at > Flow.published_at)).order_by(Flow.name))
    for f in flows:
        out.append(PendingChange("flow", f.id, f.name, f.publish_state, "; ".join(describe_flow_changes(f)),
                                 _version(f)))
    return out


def publish(user_id: int | None, comment: str, address_ids=(), flow_ids=(), expected: dict[str, str] | None = None,
            summaries: dict[int, str] | None = None, approved_by_id: int | None = None) -> PublishRecord:
    """Publish the drafts of these addresses and flows in one transaction and record it as the next version.

    Each address's draft is copied into `published` (what `published_address()`
    serves), each flow's `rules` into `published_rules`. `expected` maps
    `PendingChange.key` to the version the admin reviewed; a draft changed since
    raises `StaleDraft` and nothing is published. Raises `ValueError` without a
    comment, `NothingToPublish` with nothing selected, `PublishError` for an
    unknown or archived item. The caller commits (or rolls back on error, which
    leaves everything as it was). The record is numbered and holds a snapshot of the
    whole published configuration (`app.runtime.snapshot`); `approved_by_id` names the
    second admin when Publish approvals are on (`user_id` is then the requester).
    """
    comment = (comment or "").strip()
    if not comment:
        raise ValueError("a comment is required to publish")
    address_ids, flow_ids = sorted(set(address_ids)), sorted(set(flow_ids))
    if not address_ids and not flow_ids:
        raise NothingToPublish("select at least one address to publish")
    addresses = list(db.session.scalars(
        select(EmailAddress).where(EmailAddress.id.in_(address_ids)).order_by(EmailAddress.id).with_for_update()))
    flows = list(db.session.scalars(select(Flow).where(Flow.id.in_(flow_ids)).order_by(Flow.id).with_for_update()))
    if len(addresses) != len(address_ids) or len(flows) != len(flow_ids):
        raise PublishError("Something you selected was deleted in the meantime. Open Publish again.")
    archived = [a.address for a in addresses if a.archived_at is not None]
    if archived:
        raise PublishError(f"Archived addresses cannot be published: {', '.join(archived)}.")
    if expected is not None:
        stale = [a.address for a in addresses if expected.get(f"address:{a.id}") != _version(a)]
        stale += [f.name for f in flows if expected.get(f"flow:{f.id}") != _version(f)]
        if stale:
            raise StaleDraft(f"Changed since you reviewed it: {', '.join(stale)}. Review the changes again.")

    changes = []
    for a in addresses:
        summary = (summaries or {}).get(a.id) or "; ".join(describe_changes(a))
        changes.append({"kind": "address", "id": a.id, "name": a.address, "summary": summary})
    for f in flows:
        changes.append({"kind": "flow", "id": f.id, "name": f.name, "summary": "; ".join(describe_flow_changes(f))})

    now = datetime.now(timezone.utc)
    for a in addresses:
        a.published = snapshot(a)
        a.live_address = a.address.strip().lower()
        a.published_at = now
        if a.draft_updated_at > now:
            a.draft_updated_at = now
    _refuse_live_name_clash(addresses)
    release_held([a.id for a in addresses])  # mail held while disabled is routed now, once (app.runtime.hold)
    if flows:
        # The flows area publishes rules (ordered) and retrains the intent model when needed.
        changes += [c for c in publish_flows([f.id for f in flows], user_id, report_unchanged_model=False)
                    if c["kind"] == "intents"]
    # New settings of a mailbox polled before are tried now, not after its old error backoff
    # (a new mailbox has none: cron polls it on its next tick).
    poll_soon(db.session.scalars(select(MailboxState.address_id.distinct()).where(
        MailboxState.address_id.in_([a.id for a in addresses]))).all())
    record = PublishRecord(user_id=user_id, comment=comment, changes=changes, created_at=now,
                           approved_by_id=approved_by_id)
    db.session.add(record)
    return record_version(record)


def _refuse_live_name_clash(addresses: list[EmailAddress]) -> None:
    """Raise `PublishError` when a published name would then be live on two addresses.

    That happens when an address renamed in its draft (still live under its old name) was
    not published with this one, and this one takes that old name.
    """
    db.session.flush()
    names = [a.live_address for a in addresses]
    clash = db.session.scalars(select(EmailAddress.live_address).where(
        EmailAddress.live_address.in_(names), EmailAddress.archived_at.is_(None))
        .group_by(EmailAddress.live_address).having(func.count() > 1).order_by(EmailAddress.live_address)).all()
    if clash:
        raise PublishError(f"{', '.join(clash)} is still live on another address that was renamed but not "
                           "published. Publish both together.")


def publish_addresses(address_ids: list[int], user_id: int | None, comment: str,
                      summaries: dict[int, str] | None = None) -> PublishRecord:
    """Publish the drafts of these addresses in one transaction and record it.

    Raises `NothingToPublish` when the list is empty or `ValueError` without a
    comment. The caller commits. (`publish()` also takes flows and checks versions.)
    """
    return publish(user_id, comment, address_ids=address_ids,
                   summaries={i: (summaries or {}).get(i, "published") for i in address_ids})


def publish_history(limit: int = 100, offset: int = 0) -> list[PublishRecord]:
    """Publish records, newest first."""
    return list(db.session.scalars(select(PublishRecord).order_by(PublishRecord.created_at.desc(),
                                                                   PublishRecord.id.desc())
                                   .limit(limit).offset(offset)))
