"""Publish versions: read them, show one, and compare one with what is live, field by field.

Each `PublishRecord` with a `snapshot` is a version (`app.runtime.snapshot` writes it).
`sections()` turns a snapshot into what an admin reads: one section per address and per
flow, one row per field, with the labels of the setup pages (never column names), queues,
agents, flows and Standard Responses by name (never by id), and passwords only as "set" or
"not set". `compare()` lines up two snapshots section by section and row by row.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select

from app.channels.validation import INCOMING_PROTOCOLS, SECURITY_LABELS, USAGE_LABELS
from app.extensions import db
from app.flows.engine import PRIORITIES, SENDER_AUTH
from app.models.channels import PublishRecord
from app.runtime.snapshot import published_snapshot

#: Address fields in the order of the setup pages, with their labels.
ADDRESS_FIELDS = (
    ("address", "Email Address"), ("domain", "Domain"), ("display_name", "Display Name"), ("usage", "Usage"),
    ("enabled", "Enable Channel"), ("send_vcard", "Send contact card (.VCF)"), ("forwarded_from", "Forwarded from"),
    ("flow_id", "Flow"), ("template_enabled", "Email Template Design"), ("header_html", "Header"),
    ("footer_html", "Footer"), ("auth_method", "Sign-in"), ("oauth_provider", "Sign-in provider"),
    ("username", "User Name"), ("has_password", "Password"), ("incoming_protocol", "Incoming protocol"),
    ("incoming_host", "Incoming server"), ("incoming_port", "Incoming port"),
    ("incoming_security", "Incoming security"), ("outgoing_host", "Outgoing server"),
    ("outgoing_port", "Outgoing port"), ("outgoing_security", "Outgoing security"),
    ("smtp_username", "SMTP User Name"), ("has_smtp_password", "SMTP Password"), ("tls_ca_pem", "Private CA"),
    ("allow_plaintext_auth", "Allow unencrypted sign-in"), ("save_to_sent", "Save replies to the Sent folder"),
    ("use_reply_to_identity", "Use Reply-To for User Identity"), ("channel_sessions", "Channel-Based Sessions"),
)
#: Fields only a custom-domain address has (a platform address's mail arrives by forwarding).
CUSTOM_ONLY = frozenset({"auth_method", "oauth_provider", "username", "has_password", "incoming_protocol",
                         "incoming_host", "incoming_port", "incoming_security", "outgoing_host", "outgoing_port",
                         "outgoing_security", "smtp_username", "has_smtp_password", "tls_ca_pem",
                         "allow_plaintext_auth", "save_to_sent"})
#: Fields shown as source text (monospace, wrapped).
CODE_FIELDS = frozenset({"header_html", "footer_html", "tls_ca_pem"})
EMPTY = "—"


@dataclass(frozen=True)
class Row:
    """One field: its label and its value in the version (`old`) and in what it is compared with (`new`)."""

    key: str
    label: str
    old: str
    new: str = EMPTY
    code: bool = False

    @property
    def changed(self) -> bool:
        return self.old != self.new


@dataclass
class Section:
    """One address or flow of a version."""

    kind: str  # "Address" or "Flow"
    name: str
    rows: list[Row] = field(default_factory=list)
    state: str = "same"  # in a comparison: "same", "changed", "only_old" (gone since), "only_new" (added since)

    @property
    def changed_rows(self) -> list[Row]:
        return [r for r in self.rows if r.changed]


def get_version(number: int) -> PublishRecord | None:
    return db.session.scalar(select(PublishRecord).where(PublishRecord.number == number))


def latest_number() -> int | None:
    return db.session.scalar(select(PublishRecord.number).order_by(PublishRecord.number.desc()).limit(1))


def current_snapshot() -> dict:
    """What is live now, in the shape of a version's snapshot."""
    return published_snapshot()


def _name(names: dict, kind: str, ref, what: str) -> str:
    if not ref:
        return EMPTY
    return names.get(kind, {}).get(str(ref)) or f"a deleted {what}"


def _show(key: str, value, snap: dict) -> str:
    if key == "flow_id":
        flow = snap.get("flows", {}).get(str(value)) if value else None
        return flow["name"] if flow else ("a flow that was never published" if value else "none")
    if key in ("has_password", "has_smtp_password"):
        return "set" if value else "not set"
    if value is None or value == "":
        return EMPTY
    if key == "usage":
        return USAGE_LABELS.get(value, str(value))
    if key.endswith("_security"):
        return SECURITY_LABELS.get(value, str(value))
    if key == "incoming_protocol":
        return INCOMING_PROTOCOLS.get(value, str(value))
    if key == "auth_method":
        return {"password": "Password", "oauth": "OAuth 2.0"}.get(value, str(value))
    if key == "template_enabled":
        return "on" if value else "off"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    return str(value)


def _condition_text(cond: dict, names: dict) -> str:
    kind = cond.get("type")
    if kind in ("sender", "recipient"):
        return f"{kind.capitalize()} is {', '.join(cond.get('values') or [])}"
    if kind in ("subject", "body"):
        verb = "matches" if cond.get("op") == "matches" else "contains"
        return f"{kind.capitalize()} {verb} “{cond.get('value', '')}”"
    if kind == "has_attachments":
        return "Has attachments" if cond.get("value") else "Has no attachments"
    if kind == "new_customer":
        return "New customer" if cond.get("value") else "Returning customer"
    if kind == "intent":
        return f"Intent is {cond.get('value')} (confidence at least {cond.get('min_confidence', 0):g})"
    if kind == "business_hours":
        queue = _name(names, "queues", cond.get("queue_id"), "queue")
        return f"{'Within' if cond.get('value', True) else 'Outside'} the business hours of {queue}"
    if kind == "language":
        return f"Language is {', '.join(cond.get('values') or [])}"
    if kind == "sender_auth":
        return f"Sender authentication {SENDER_AUTH.get(cond.get('value'), cond.get('value'))}"
    return str(kind)


def _action_text(action: dict, names: dict) -> str:
    kind = action.get("type")
    if kind == "set_queue":
        return f"Set queue {_name(names, 'queues', action.get('queue_id'), 'queue')}"
    if kind == "set_priority":
        return f"Set priority {PRIORITIES.get(action.get('priority'), action.get('priority'))}"
    if kind == "add_tags":
        return f"Add tags {', '.join(action.get('tags') or [])}"
    if kind == "assign":
        mode = action.get("mode")
        if mode == "agent":
            return f"Assign to {_name(names, 'users', action.get('user_id'), 'agent')}"
        return "Assign to the last agent" if mode == "last_agent" else "Assign to the least loaded agent"
    if kind == "auto_reply":
        return f"Auto-reply with {_name(names, 'responses', action.get('response_id'), 'Standard Response')}"
    if kind == "set_status":
        return f"Set status {action.get('status')}"
    return "Stop"


def rule_text(rule: dict, names: dict) -> str:
    """One rule in words: "When … then …", with names for every reference."""
    conditions = [_condition_text(c, names) for c in rule.get("conditions") or []]
    joiner = " or " if rule.get("match") == "any" else " and "
    when = "Always, after the first match" if rule.get("always") else (
        joiner.join(conditions) if conditions else "Every conversation")
    then = "; ".join(_action_text(a, names) for a in rule.get("actions") or []) or "nothing"
    return f"When: {when}. Then: {then}."


def _address_rows(data: dict, snap: dict) -> dict[str, tuple[str, str, bool]]:
    platform = data.get("domain_kind") == "platform"
    return {key: (label, _show(key, data.get(key), snap), key in CODE_FIELDS) for key, label in ADDRESS_FIELDS
            if key in data and not (platform and key in CUSTOM_ONLY)}


def _flow_rows(flow: dict, snap: dict) -> dict[str, tuple[str, str, bool]]:
    names = snap.get("names", {})
    rules = flow.get("rules") or []
    out = {"__order": ("Rule order", " → ".join(r.get("name") or "(unnamed)" for r in rules) or "no rules", False)}
    for rule in rules:
        out[f"rule:{rule.get('id')}"] = (f"Rule “{rule.get('name') or '(unnamed)'}”", rule_text(rule, names), False)
    return out


def _items(snap: dict):
    """(section key, kind, name, rows) of every address and flow of a snapshot."""
    for key, data in sorted((snap or {}).get("addresses", {}).items(), key=lambda kv: kv[1].get("address", "")):
        yield f"address:{key}", "Address", data.get("address", ""), _address_rows(data, snap)
    for key, flow in sorted((snap or {}).get("flows", {}).items(), key=lambda kv: kv[1].get("name", "")):
        yield f"flow:{key}", "Flow", flow.get("name", ""), _flow_rows(flow, snap)


def sections(snap: dict) -> list[Section]:
    """A version as an admin reads it (rows with no value are left out)."""
    return [Section(kind, name, [Row(k, label, value, code=code) for k, (label, value, code) in rows.items()
                                 if value != EMPTY])
            for _key, kind, name, rows in _items(snap)]


def compare(old: dict, new: dict) -> list[Section]:
    """Each address and flow of `old` (a version) beside the same one in `new` (what is live), field by field.

    Sections come in the version's order, then those added since; rows empty on both sides
    are left out. A section's `state` says whether it changed, went or came.
    """
    old_items = {key: (kind, name, rows) for key, kind, name, rows in _items(old)}
    new_items = {key: (kind, name, rows) for key, kind, name, rows in _items(new)}
    out = []
    for key in list(old_items) + [k for k in new_items if k not in old_items]:
        kind, old_name, old_rows = old_items.get(key) or (new_items[key][0], "", {})
        _kind, new_name, new_rows = new_items.get(key) or (kind, "", {})
        rows = []
        for row_key in list(old_rows) + [k for k in new_rows if k not in old_rows]:
            label, before, code = old_rows.get(row_key) or (new_rows[row_key][0], EMPTY, new_rows[row_key][2])
            after = new_rows[row_key][1] if row_key in new_rows else EMPTY
            if before == EMPTY and after == EMPTY:
                continue
            rows.append(Row(row_key, label, before, after, code))
        state = "only_old" if key not in new_items else "only_new" if key not in old_items else (
            "changed" if any(r.changed for r in rows) else "same")
        out.append(Section(kind, new_name or old_name, rows, state))
    return out
