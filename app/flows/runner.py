"""Experience flows: editing (draft), publishing, and running a flow on a conversation.

Editing and publishing
----------------------
`Flow.rules` is the draft the editor changes (`add_rule`, `update_rule`,
`move_rule`, `delete_rule`); `publish_flows` copies it to `Flow.published_rules`
and (re)trains the intent classifier when the intents' examples changed. Workers
read only `published_rules` and the newest trained model, so no edit changes live
mail until it is published.

Running
-------
`run_flow(conversation_id)` is what the `flows` queue runs after a new inbound
message was stored (jobs.flows.run_flow). For the first message of a conversation:

1. the address's live configuration (`published_address`) names the flow; an
   unpublished or disabled address runs nothing;
2. a sender on the address's Email Blocklist runs nothing and is not assigned
   (the mail stays stored and visible);
3. the intent classifier labels subject + visible body (intent and confidence
   stored on the conversation);
4. the engine evaluates the published rules (first match, then "always") and the
   actions are applied: queue, priority, tags, assignment, automatic reply, status;
5. the queue's acknowledgement goes out unless an automatic reply just did.

A reply in an existing conversation goes back to its agent when they have room
(otherwise it waits in the queue) and may be acknowledged; rules do not run again.
Every run is written to `FlowRun` (the run log), once per message.

Automatic mail and loop safety
------------------------------
Every automatic mail goes through `queue_automatic_reply`, which refuses
(`AutomaticMailRefused`, with the reason) to write to automatic senders (any
`Auto-Submitted` but "no", `Precedence: bulk/junk/list`, `X-Autoreply`,
`X-Autorespond`, mailing lists with `List-Id`/`List-Unsubscribe`, delivery-status
reports, an empty Return-Path), to noreply/MAILER-DAEMON/postmaster-style
addresses, to our own addresses (any address configured here, any contact-center
mailbox that forwards to us, the platform domain) and to blocked senders, and caps
automatic mail at `AUTO_REPLIES_PER_HOUR` per customer. Two installations whose
auto-replies point at each other therefore exchange at most that many mails an
hour, and in practice none: each side sees the other's `Auto-Submitted` header.

Which flow serves an address
----------------------------
Which flow serves an address is part of the *address's* draft (`EmailAddress.flow_id`,
in its published snapshot), so attaching or moving a flow shows up as an unpublished
change of that address and reaches live traffic only when it is published.
"""
from __future__ import annotations

import csv
import io
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from email.utils import getaddresses, parseaddr

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from sqlalchemy import func, select

from app.blobs import blob_store
from app.extensions import db
from app.flows import engine, intents, routing
from app.mail.html import sanitize_html
from app.mail.render import TemplateError, check_template, fill_placeholders
from app.models.auth import Queue, User
from app.models.channels import EmailAddress, PublishRecord
from app.models.flows import AutomaticMail, BlocklistEntry, Flow, FlowRun, Intent
from app.models.inbox import Attachment, Conversation, Message
from app.models.responses import StandardResponse
from app.runtime.live import published_address
from app.runtime.outbound import CannotSend, enqueue_send, queue_message
from app.transactions import on_commit

log = logging.getLogger(__name__)

ACK_MIN_MINUTES, ACK_MAX_MINUTES = 15, 72 * 60
MAX_EXAMPLES = 1000
MAX_EXAMPLE_LENGTH = 500
MAX_BLOCKLIST_CSV = 1_000_000  # bytes
_NOREPLY_LOCALS = {
    "mailer-daemon", "postmaster", "noreply", "no-reply", "no_reply", "donotreply", "do-not-reply",
    "do_not_reply", "bounce", "bounces", "listserv", "majordomo", "autoreply", "auto-reply", "daemon",
    "notifications", "notification",
}


class FlowNotFound(LookupError):
    pass


class FlowInUse(ValueError):
    """A flow attached to an address (draft or published) cannot be deleted."""


class AutomaticMailRefused(Exception):
    """A safety rule or cap forbids this automatic mail; `str(exc)` says which."""


def _now() -> datetime:
    return datetime.now(timezone.utc)


# --- flows: draft editing -----------------------------------------------------------------------

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


def _save_rules(flow: Flow, rules: list[dict]) -> None:
    flow.rules = engine.order_rules(rules)  # a new list, so the JSON column sees the change
    flow.draft_updated_at = _now()


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


def delete_flow(flow_id: int) -> None:
    """Raises `FlowInUse` when an address uses the flow (in its draft or its live version)."""
    flow = get_flow(flow_id)
    for address in db.session.scalars(select(EmailAddress)):
        if address.flow_id == flow.id or (address.published or {}).get("flow_id") == flow.id:
            raise FlowInUse(f"{address.address} uses this flow; attach another flow and publish first.")
    db.session.delete(flow)


# --- publishing ---------------------------------------------------------------------------------

def _rules_summary(old: list | None, new: list) -> str:
    if old is None:
        return f"first publication, {len(new)} rule{'s' if len(new) != 1 else ''}"
    old_by_id = {r.get("id"): r for r in old}
    new_ids = {r.get("id") for r in new}
    added = sum(1 for r in new if r.get("id") not in old_by_id)
    removed = sum(1 for r in old if r.get("id") not in new_ids)
    changed = sum(1 for r in new if r.get("id") in old_by_id and old_by_id[r.get("id")] != r)
    moved = [r.get("id") for r in new if r.get("id") in old_by_id] != [r.get("id") for r in old if r.get("id") in new_ids]
    parts = [f"{n} {word}" for n, word in ((added, "added"), (changed, "changed"), (removed, "removed")) if n]
    if moved:
        parts.append("reordered")
    return ", ".join(parts) if parts else "no rule changes"


def publish_flows(flow_ids: list[int], user_id: int | None, comment: str | None = None,
                  report_unchanged_model: bool = True) -> list[dict]:
    """Make these flows' drafts live and retrain the intent model if its examples changed.

    Returns change summaries (``{"kind", "id", "name", "summary"}``) in the shape of
    `PublishRecord.changes`. With a `comment`, also records a `PublishRecord` (the
    channel Publish dialog passes none and records one record for everything). The
    caller commits. Raises `FlowNotFound`.
    """
    now = _now()
    changes = []
    for flow_id in flow_ids:
        flow = get_flow(flow_id)
        rules = engine.order_rules(list(flow.rules or []))
        summary = _rules_summary(flow.published_rules, rules)
        flow.published_rules = [dict(r) for r in rules]
        flow.published_at = now
        if flow.draft_updated_at > now:
            flow.draft_updated_at = now
        changes.append({"kind": "flow", "id": flow.id, "name": flow.name, "summary": summary})
    result = intents.train_and_store(user_id)
    if result.trained or (flow_ids and report_unchanged_model):
        changes.append({"kind": "intents", "id": result.model.id if result.model else None,
                        "name": "Intents", "summary": result.message})
    if comment:
        db.session.add(PublishRecord(user_id=user_id, comment=comment.strip(), changes=changes, created_at=now))
    db.session.flush()
    return changes


# --- intents ------------------------------------------------------------------------------------

def parse_examples(text: str) -> list[str]:
    """One example per line, trimmed, without duplicates. Raises `ValueError`."""
    out, seen = [], set()
    for line in (text or "").splitlines():
        line = " ".join(line.split())
        if not line or line.casefold() in seen:
            continue
        if len(line) > MAX_EXAMPLE_LENGTH:
            raise ValueError(f"An example may have at most {MAX_EXAMPLE_LENGTH} characters.")
        seen.add(line.casefold())
        out.append(line)
    if len(out) > MAX_EXAMPLES:
        raise ValueError(f"An intent may have at most {MAX_EXAMPLES} examples.")
    return out


def save_intent(intent_id: int | None, name: str, description: str, examples_text: str) -> Intent:
    """Create or change an intent. Raises `ValueError` (name empty, taken or "unknown"; bad examples)."""
    name = intents.normalise_name(name)
    if not name:
        raise ValueError("Give the intent a name.")
    if name == intents.UNKNOWN:
        raise ValueError("“unknown” is what Pigeonhole says when no intent fits; choose another name.")
    examples = parse_examples(examples_text)
    if len(examples) < intents.MIN_EXAMPLES:
        raise ValueError(f"Write at least {intents.MIN_EXAMPLES} example phrases, one per line.")
    clash = db.session.scalar(select(Intent).where(Intent.name == name))
    if clash is not None and clash.id != intent_id:
        raise ValueError("An intent with this name exists already.")
    intent = db.session.get(Intent, intent_id) if intent_id else None
    if intent_id and intent is None:
        raise LookupError(intent_id)
    if intent is None:
        intent = Intent(name=name)
        db.session.add(intent)
    intent.name, intent.description, intent.examples = name, (description or "").strip(), examples
    intent.updated_at = _now()
    db.session.flush()
    return intent


def delete_intent(intent_id: int) -> None:
    intent = db.session.get(Intent, intent_id)
    if intent is None:
        raise LookupError(intent_id)
    db.session.delete(intent)


# --- queues -------------------------------------------------------------------------------------

def all_queues() -> list[Queue]:
    return list(db.session.scalars(select(Queue).order_by(Queue.name)))


def save_queue(queue_id: int | None, *, name: str, description: str = "", member_ids: list[int] = (),
               time_zone: str = "UTC", hours_text: str = "", holidays_text: str = "",
               ack_enabled: bool = False, ack_subject: str = "", ack_body_html: str = "",
               ack_interval_minutes: int = 24 * 60, outbound_address_ids: list[int] = ()) -> Queue:
    """Create or change a queue. Raises `ValueError` (with the field in `args[1]`) or `HoursError`."""
    name = (name or "").strip()
    if not name:
        raise ValueError("Give the queue a name.", "name")
    clash = db.session.scalar(select(Queue).where(func.lower(Queue.name) == name.lower()))
    if clash is not None and clash.id != queue_id:
        raise ValueError("A queue with this name exists already.", "name")
    try:
        time_zone = routing.check_time_zone(time_zone)
        hours = routing.parse_hours(hours_text, holidays_text)
    except routing.HoursError as exc:
        raise ValueError(str(exc), "hours") from None
    if not ACK_MIN_MINUTES <= int(ack_interval_minutes) <= ACK_MAX_MINUTES:
        raise ValueError("The interval is between 15 minutes and 72 hours.", "ack_interval_minutes")
    ack_body_html = sanitize_html(ack_body_html or "").strip()
    if ack_enabled and not ack_body_html:
        raise ValueError("Write the acknowledgement message, or switch it off.", "ack_body_html")
    try:
        check_template(ack_body_html)
        check_template(ack_subject or "")
    except TemplateError as exc:
        raise ValueError(str(exc), "ack_body_html") from None
    queue = db.session.get(Queue, queue_id) if queue_id else None
    if queue_id and queue is None:
        raise LookupError(queue_id)
    if queue is None:
        queue = Queue(name=name)
        db.session.add(queue)
    queue.name, queue.description = name, (description or "").strip()
    queue.members = list(db.session.scalars(select(User).where(User.id.in_(list(member_ids)))))
    queue.time_zone, queue.business_hours = time_zone, hours
    queue.ack_enabled, queue.ack_subject, queue.ack_body_html = bool(ack_enabled), (ack_subject or "").strip(), ack_body_html
    queue.ack_interval_minutes = int(ack_interval_minutes)
    queue.outbound_address_ids = sorted({int(i) for i in outbound_address_ids})
    db.session.flush()
    return queue


def set_capacity(user_id: int, capacity: int) -> User:
    """An agent's email capacity (1–15 open conversations). Raises `ValueError`, `LookupError`."""
    if not routing.MIN_CAPACITY <= int(capacity) <= routing.MAX_CAPACITY:
        raise ValueError(f"Email capacity is between {routing.MIN_CAPACITY} and {routing.MAX_CAPACITY}.")
    user = db.session.get(User, user_id)
    if user is None:
        raise LookupError(user_id)
    user.email_capacity = int(capacity)
    return user


# --- Email Blocklist ----------------------------------------------------------------------------

def normalise_block(value: str) -> str:
    """A sender address or domain, lower-cased. Raises `ValueError` for anything else."""
    raw = (value or "").strip()
    value = raw.lower().lstrip("@")
    if value.startswith("*."):
        value = value[2:]
    try:
        if not value or len(value) > 320 or value.count("@") > 1:
            raise EmailNotValidError(value)
        probe = value if "@" in value else f"postmaster@{value}"
        checked = validate_email(probe, check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        raise ValueError(f"“{raw}” is not an email address or a domain.") from None
    return checked if "@" in value else checked.rpartition("@")[2]


def blocklist(address_id: int) -> list[BlocklistEntry]:
    return list(db.session.scalars(select(BlocklistEntry).where(BlocklistEntry.address_id == address_id)
                                   .order_by(BlocklistEntry.value)))


def add_block(address_id: int, value: str, user_id: int | None, source: str = "manual") -> BlocklistEntry:
    """Block a sender or domain on an address. Raises `ValueError` (invalid, or listed already)."""
    value = normalise_block(value)
    if db.session.scalar(select(BlocklistEntry.id).where(BlocklistEntry.address_id == address_id,
                                                         BlocklistEntry.value == value)):
        raise ValueError(f"{value} is on the blocklist already.")
    entry = BlocklistEntry(address_id=address_id, value=value, source=source, created_by_id=user_id)
    db.session.add(entry)
    db.session.flush()
    return entry


def remove_block(address_id: int, entry_id: int) -> None:
    entry = db.session.get(BlocklistEntry, entry_id)
    if entry is None or entry.address_id != address_id:
        raise LookupError(entry_id)
    db.session.delete(entry)


@dataclass
class ImportSummary:
    added: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line, message)


def import_blocklist_csv(address_id: int, data: bytes, user_id: int | None) -> ImportSummary:
    """Add every address or domain of a CSV (first column; a header row is skipped).

    Duplicates (on the list already, or twice in the file) are counted, not added;
    invalid values are reported with their line number. Raises `ValueError` when the
    file is too large or not text.
    """
    if len(data) > MAX_BLOCKLIST_CSV:
        raise ValueError("The file is larger than 1 MB.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError("The file is not UTF-8 text (save it as CSV UTF-8).") from None
    existing = {e.value for e in blocklist(address_id)}
    summary = ImportSummary()
    try:
        dialect = csv.Sniffer().sniff(text[:2048], delimiters=",;\t") if text.strip() else csv.excel
    except csv.Error:
        dialect = csv.excel
    for lineno, row in enumerate(csv.reader(io.StringIO(text), dialect), 1):
        cell = (row[0] if row else "").strip()
        if not cell or cell.startswith("#"):
            continue
        if lineno == 1 and cell.lower() in {"email", "address", "sender", "domain", "value", "email address"}:
            continue
        try:
            value = normalise_block(cell)
        except ValueError as exc:
            summary.errors.append((lineno, str(exc)))
            continue
        if value in existing:
            summary.duplicates.append(value)
            continue
        existing.add(value)
        db.session.add(BlocklistEntry(address_id=address_id, value=value, source="csv", created_by_id=user_id))
        summary.added.append(value)
    db.session.flush()
    return summary


def is_blocked(address_id: int, sender: str) -> bool:
    sender = (sender or "").strip().lower()
    if not sender:
        return False
    domain = sender.rpartition("@")[2]
    labels = domain.split(".")
    candidates = {sender} | {".".join(labels[i:]) for i in range(len(labels) - 1)}
    return db.session.scalar(select(BlocklistEntry.id).where(
        BlocklistEntry.address_id == address_id, BlocklistEntry.value.in_(candidates)).limit(1)) is not None


# --- loop and abuse safety ----------------------------------------------------------------------

def _headers(message: Message):
    """The stored raw message's headers, or None when there are none."""
    if not message.raw_sha256:
        return None
    try:
        raw = blob_store().get(message.raw_sha256)
    except Exception:  # noqa: BLE001 - a missing blob must not stop the flow
        log.warning("raw message %s of message %s is missing", message.raw_sha256, message.id)
        return None
    return BytesHeaderParser(policy=default_policy).parsebytes(raw)


def automatic_sender_reason(message: Message) -> str | None:
    """Why this inbound mail looks automatic (never answer it automatically), or None."""
    headers = _headers(message)
    if headers is not None:
        auto = str(headers.get("Auto-Submitted", "") or "").split(";")[0].strip().lower()
        if auto and auto != "no":
            return f"the mail is automatic (Auto-Submitted: {auto})"
        precedence = str(headers.get("Precedence", "") or "").strip().lower()
        if precedence in ("bulk", "junk", "list", "auto_reply"):
            return f"the mail is bulk or list mail (Precedence: {precedence})"
        for name in ("X-Autoreply", "X-Autorespond", "X-Autoresponder"):
            if headers.get(name):
                return f"the mail is automatic ({name})"
        suppress = str(headers.get("X-Auto-Response-Suppress", "") or "").lower()
        if any(v in suppress for v in ("all", "autoreply", "oof")):
            return "the sender asked for no automatic replies (X-Auto-Response-Suppress)"
        if headers.get("List-Id") or headers.get("List-Unsubscribe") or headers.get("List-Post"):
            return "the mail comes from a mailing list"
        ctype = headers.get_content_type()
        if ctype == "multipart/report" or "delivery-status" in str(headers.get("Content-Type", "")).lower():
            return "the mail is a delivery report (bounce)"
        if "Return-Path" in headers and str(headers.get("Return-Path")).strip() == "<>":
            return "the mail has an empty Return-Path (a bounce)"
    return None


def is_noreply(address: str) -> bool:
    local = (address or "").rpartition("@")[0].lower()
    if not local:
        return True
    base = local.split("+", 1)[0]
    return base in _NOREPLY_LOCALS or base.startswith(("noreply", "no-reply", "donotreply", "bounce",
                                                       "mailer-daemon"))


def is_our_address(address: str) -> bool:
    """Any address configured here, a contact-center mailbox forwarding to us, or the platform domain."""
    address = (address or "").strip().lower()
    if not address:
        return False
    if address.rpartition("@")[2] == current_app.config["PLATFORM_MAIL_DOMAIN"].lower():
        return True
    return db.session.scalar(select(EmailAddress.id).where(
        (func.lower(EmailAddress.address) == address) | (func.lower(EmailAddress.forwarded_from) == address)
        | (func.lower(EmailAddress.username) == address)).limit(1)) is not None


def automatic_mails_last_hour(recipient: str, now: datetime | None = None) -> int:
    since = (now or _now()) - timedelta(hours=1)
    return db.session.scalar(select(func.count()).select_from(AutomaticMail).where(
        AutomaticMail.recipient == recipient.lower(), AutomaticMail.created_at > since)) or 0


def latest_inbound(conversation_id: int) -> Message | None:
    return db.session.scalar(select(Message).where(Message.conversation_id == conversation_id,
                                                   Message.direction == "in")
                             .order_by(Message.created_at.desc(), Message.id.desc()).limit(1))


def refusal_reason(conversation: Conversation, recipient: str, trigger: Message | None) -> str | None:
    """Why no automatic mail may go to `recipient` now, or None when it may."""
    recipient = (recipient or "").strip().lower()
    if not recipient or "@" not in recipient:
        return "the customer has no email address"
    if is_noreply(recipient):
        return f"{recipient} is a noreply or system address"
    if is_our_address(recipient):
        return f"{recipient} is one of our own addresses"
    if trigger is not None:
        sender = parseaddr(trigger.from_addr or "")[1].lower()
        if sender and sender != recipient and (is_noreply(sender) or is_our_address(sender)):
            return f"the mail came from {sender}"
        reason = automatic_sender_reason(trigger)
        if reason:
            return reason
    if is_blocked(conversation.address_id, recipient):
        return f"{recipient} is on the Email Blocklist"
    cap = int(current_app.config.get("AUTO_REPLIES_PER_HOUR", 3))
    if automatic_mails_last_hour(recipient) >= cap:
        return f"{recipient} already got {cap} automatic mails in the last hour"
    return None


# --- automatic mail (the hand-over to the outbound service) ------------------------------------

def _placeholders(conversation: Conversation, address) -> dict[str, str]:
    contact = conversation.contact
    return {"display_name": getattr(address, "display_name", "") or "",
            "address": getattr(address, "address", "") or "",
            "customer_name": (contact.name or contact.email.split("@")[0]) if contact else "",
            "agent_name": conversation.assignee.name if conversation.assignee else "",
            "conversation_reference": f"#{conversation.id}"}


def queue_automatic_reply(conversation_id: int, subject: str, body_html: str, kind: str,
                          queue_id: int | None = None) -> Message:
    """Queue one automatic mail to the conversation's customer, if every safety rule allows it.

    Renders and queues the outgoing `Message` through `app.runtime.outbound.queue_message`
    (`automatic` = kind, threaded to the customer's latest message), records it in the
    automatic-mail ledger, and hands it to the address's send job
    (`app.runtime.outbound.enqueue_send`, as agents' Sends are) once the caller commits. The send job renders it with
    ``Auto-Submitted: auto-replied``. Placeholders (``{{ customer_name }}``...) in
    subject and body are filled here.

    Raises `AutomaticMailRefused` with the reason: the address is not live or cannot
    send, the customer is an automatic/noreply/own/blocked address, the mail that
    triggered it was automatic, or the per-hour cap is reached.
    """
    conversation = db.session.get(Conversation, conversation_id)
    if conversation is None:
        raise LookupError(conversation_id)
    address = published_address(conversation.address_id)
    if address is None:
        raise AutomaticMailRefused("the address is not published or is disabled")
    if not address.can_send:
        raise AutomaticMailRefused("the address is inbound-only")
    recipient = conversation.contact.email.lower()
    trigger = latest_inbound(conversation.id)
    reason = refusal_reason(conversation, recipient, trigger)
    if reason:
        raise AutomaticMailRefused(reason)
    values = _placeholders(conversation, address)
    html = sanitize_html(fill_placeholders(body_html, values))
    subject = fill_placeholders(subject, values).replace("\n", " ").strip() or conversation.subject
    try:
        # The outbound service renders it (template design, threading headers, Auto-Submitted).
        message = queue_message(conversation.id, to=[recipient], subject=subject, body_html=html,
                                address_id=address.id, parent_id=trigger.id if trigger else None,
                                quote=False, automatic=True)
    except CannotSend as exc:
        raise AutomaticMailRefused(f"the address cannot send: {exc}") from None
    message.automatic = kind
    now = message.created_at
    db.session.add(AutomaticMail(recipient=recipient, kind=kind, conversation_id=conversation.id,
                                 message_id=message.id, address_id=address.id,
                                 queue_id=queue_id or conversation.queue_id, created_at=now))
    db.session.flush()
    on_commit(enqueue_send, message.id, address_id=address.id)
    return message


def send_acknowledgement(conversation: Conversation) -> str:
    """The queue's "Acknowledgement Message for Email Channel", at most once per interval per customer.

    Returns what happened, for the run log.
    """
    queue = conversation.queue
    if queue is None or not queue.ack_enabled or not queue.ack_body_html:
        return ""
    recipient = conversation.contact.email.lower()
    since = _now() - timedelta(minutes=queue.ack_interval_minutes)
    recent = db.session.scalar(select(AutomaticMail.id).where(
        AutomaticMail.recipient == recipient, AutomaticMail.kind == "acknowledgement",
        AutomaticMail.queue_id == queue.id, AutomaticMail.created_at > since).limit(1))
    if recent is not None:
        return f"acknowledgement not sent: one went to {recipient} within {_interval(queue.ack_interval_minutes)}"
    subject = queue.ack_subject or f"Re: {conversation.subject}".strip()
    try:
        message = queue_automatic_reply(conversation.id, subject, queue.ack_body_html, "acknowledgement", queue.id)
    except AutomaticMailRefused as exc:
        return f"acknowledgement not sent: {exc}"
    return f"acknowledgement queued (message {message.id})"


def _interval(minutes: int) -> str:
    if minutes % 60 == 0:
        hours = minutes // 60
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{minutes} minutes"


# --- running a flow -----------------------------------------------------------------------------

def detect_language(text: str) -> str | None:
    import py3langid

    text = (text or "").strip()[:2000]
    if len(text) < 3:
        return None
    lang, _score = py3langid.classify(text)
    return lang


def _sender_of(message: Message | None, conversation: Conversation) -> str:
    addr = parseaddr(message.from_addr or "")[1] if message else ""
    return (addr or conversation.contact.email).strip().lower()


def facts_for(conversation: Conversation, message: Message | None, address_email: str,
              rules: list[dict] | None = None) -> engine.Facts:
    """The facts the conditions look at. Facts that cost a query are gathered only when a rule asks."""
    needed = {c.get("type") for r in (rules or []) for c in r.get("conditions") or []} if rules is not None \
        else set(engine.CONDITION_TYPES)
    recipients = {address_email.lower()}
    if message is not None:
        recipients |= {a.lower() for _, a in getaddresses([message.to_addrs or "", message.cc_addrs or ""]) if a}
    has_attachments = "has_attachments" in needed and message is not None and db.session.scalar(
        select(Attachment.id).where(Attachment.message_id == message.id, Attachment.inline.is_(False)).limit(1)
    ) is not None
    is_new = False
    if "new_customer" in needed:
        is_new = db.session.scalar(select(Conversation.id).where(
            Conversation.contact_id == conversation.contact_id, Conversation.id != conversation.id,
            Conversation.created_at <= conversation.created_at).limit(1)) is None
    calendars = {}
    queue_ids = {c.get("queue_id") for r in (rules or []) for c in r.get("conditions") or []
                 if c.get("type") == "business_hours"} if rules is not None else None
    if queue_ids is None or queue_ids:
        query = select(Queue) if queue_ids is None else select(Queue).where(Queue.id.in_(queue_ids))
        calendars = {q.id: routing.Calendar.of(q) for q in db.session.scalars(query)}
    return engine.Facts(
        sender=_sender_of(message, conversation),
        recipients=frozenset(recipients),
        subject=(message.subject if message else "") or conversation.subject or "",
        body=(message.text if message else "") or "",
        has_attachments=has_attachments,
        intent=conversation.intent,
        intent_confidence=conversation.intent_confidence or 0.0,
        is_new_customer=is_new,
        now=(message.created_at if message else None) or _now(),
        calendars=calendars,
        detect_language=detect_language,
    )


def _apply(conversation: Conversation, plan: engine.Plan, now: datetime) -> tuple[list[dict], bool]:
    """Carry out the plan's actions; (log entries, whether an automatic reply was queued)."""
    done: list[dict] = []
    replied = False
    for action in plan.actions:
        kind = action["type"]
        if kind == "set_queue":
            queue = db.session.get(Queue, action["queue_id"])
            if queue is None:
                done.append({"action": "set queue", "result": "the queue no longer exists"})
                continue
            conversation.queue_id = queue.id
            conversation.queue = queue
            done.append({"action": "set queue", "result": queue.name})
        elif kind == "set_priority":
            conversation.priority = action["priority"]
            done.append({"action": "set priority", "result": engine.PRIORITIES.get(action["priority"], "")})
        elif kind == "add_tags":
            conversation.tags = list(dict.fromkeys([*(conversation.tags or []), *action["tags"]]))
            done.append({"action": "add tags", "result": ", ".join(action["tags"])})
        elif kind == "assign":
            done.append({"action": "assign", "result": _assign(conversation, action, now)})
        elif kind == "auto_reply":
            response = db.session.get(StandardResponse, action["response_id"])
            if response is None:
                done.append({"action": "automatic reply", "result": "the Standard Response no longer exists"})
                continue
            subject = response.subject or f"Re: {conversation.subject}".strip()
            try:
                message = queue_automatic_reply(conversation.id, subject, response.body, "auto_reply")
            except AutomaticMailRefused as exc:
                done.append({"action": "automatic reply", "result": f"not sent: {exc}"})
                continue
            replied = True
            done.append({"action": "automatic reply",
                         "result": f"“{response.title}” queued (message {message.id})"})
        elif kind == "set_status":
            conversation.status = action["status"]
            done.append({"action": "set status", "result": action["status"]})
        elif kind == "stop":
            done.append({"action": "stop", "result": "no further rules"})
    return done, replied


def _assign(conversation: Conversation, action: dict, now: datetime) -> str:
    mode = action.get("mode", "least_loaded")
    if mode == "agent":
        user = db.session.get(User, action.get("user_id"))
        if user is None:
            return "the agent no longer exists"
        if routing.try_assign(conversation, user.id, now):
            return f"assigned to {user.name or user.email}"
        return f"{user.name or user.email} has no room: waits in the queue"
    if mode == "last_agent":
        last = routing.last_agent_of(conversation)
        if last is not None:
            user = db.session.get(User, last)
            if user is not None and routing.try_assign(conversation, user.id, now):
                return f"assigned to the customer's last agent, {user.name or user.email}"
            if not action.get("fallback", True):
                return "the customer's last agent has no room: waits in the queue"
        elif not action.get("fallback", True):
            return "the customer has no last agent: waits in the queue"
    if conversation.queue_id is None:
        return "no queue set: not assigned"
    queue = conversation.queue or db.session.get(Queue, conversation.queue_id)
    if not routing.Calendar.of(queue).is_open(now):
        return f"outside {queue.name}'s business hours: waits in the queue"
    user = routing.assign_least_loaded(conversation, queue.id, now)
    if user is None:
        return f"nobody in {queue.name} has room: waits in the queue"
    return f"assigned to {user.name or user.email} (least loaded)"


def _pending_messages(conversation_id: int) -> list[Message]:
    """Inbound messages of the conversation that have not run through a flow yet, oldest first."""
    done = select(FlowRun.message_id).where(FlowRun.conversation_id == conversation_id,
                                            FlowRun.message_id.is_not(None))
    return list(db.session.scalars(select(Message).where(
        Message.conversation_id == conversation_id, Message.direction == "in", Message.id.not_in(done))
        .order_by(Message.created_at, Message.id)))


def run_flow(conversation_id: int, message_id: int | None = None) -> FlowRun | None:
    """Run the address's published flow on the conversation's inbound messages (see module doc).

    With `message_id`, on that message; otherwise on every inbound message that has
    not run yet, oldest first (so two messages stored before the job ran are both
    handled, the first as the new conversation). Idempotent per message: a message
    that already ran returns its earlier run, so a retried job sends nothing twice.
    Returns the last run, or None when the conversation does not exist or nothing
    was left to run. The caller commits.
    """
    conversation = db.session.get(Conversation, conversation_id)
    if conversation is None:
        return None
    if message_id is not None:
        message = db.session.get(Message, message_id)
        if message is None or message.conversation_id != conversation.id:
            return None
        earlier = db.session.scalar(select(FlowRun).where(FlowRun.message_id == message.id))
        return earlier if earlier is not None else _run_one(conversation, message)
    pending = _pending_messages(conversation.id)
    if not pending:
        return None
    run = None
    for message in pending:
        run = _run_one(conversation, message)
    return run


def _run_one(conversation: Conversation, message: Message) -> FlowRun:
    started = time.perf_counter()
    now = message.created_at or _now()
    run = FlowRun(conversation_id=conversation.id, message_id=message.id,
                  outcome="ran", matched=[], actions=[], notes=[], created_at=_now())
    # The first message that went through a flow is the new conversation; later ones are replies.
    # (A message skipped while the address was not live, or blocked, did not go through one.)
    first = db.session.scalar(select(FlowRun.id).where(
        FlowRun.conversation_id == conversation.id, FlowRun.outcome.in_(("ran", "no_flow"))).limit(1)) is None
    address = published_address(conversation.address_id)
    sender = _sender_of(message, conversation)

    if address is None:
        run.outcome = "skipped"
        run.notes = ["the address is not published or is disabled: nothing ran"]
    elif is_blocked(conversation.address_id, sender):
        run.outcome = "blocked"
        run.notes = [f"{sender} is on the Email Blocklist: no automation, not assigned"]
    elif not first:
        run.outcome = "reply"
        actions = [{"action": "route reply", "result": routing.route_reply(conversation, now)}]
        ack = send_acknowledgement(conversation)
        if ack:
            actions.append({"action": "acknowledge", "result": ack})
        run.actions = actions
    else:
        if conversation.intent is None:
            result = intents.classify(message.subject or conversation.subject, message.text or "")
            if result is not None:
                conversation.intent, conversation.intent_confidence = result[0], round(result[1], 4)
        flow = db.session.get(Flow, address.flow_id) if address.flow_id else None
        actions: list[dict] = []
        replied = False
        if flow is None or flow.published_rules is None:
            run.outcome = "no_flow"
            run.notes = ["no published flow is attached to this address"]
        else:
            run.flow_id, run.flow_name = flow.id, flow.name
            facts = facts_for(conversation, message, address.address, flow.published_rules)
            timeout = float(current_app.config.get("FLOW_REGEX_TIMEOUT_MS", 50)) / 1000
            plan = engine.evaluate(flow.published_rules, facts, timeout)
            run.matched = plan.matched
            run.notes = plan.notes
            actions, replied = _apply(conversation, plan, now)
        if not replied:
            ack = send_acknowledgement(conversation)
            if ack:
                actions.append({"action": "acknowledge", "result": ack})
        run.actions = actions
    run.intent, run.intent_confidence = conversation.intent, conversation.intent_confidence
    if address is not None and address.flow_id and run.flow_id is None:
        flow = db.session.get(Flow, address.flow_id)
        run.flow_id, run.flow_name = (flow.id, flow.name) if flow else (None, "")
    run.duration_ms = round((time.perf_counter() - started) * 1000, 2)
    db.session.add(run)
    db.session.flush()
    return run


def runs_of(conversation_id: int) -> list[FlowRun]:
    """The run log of a conversation, oldest first."""
    return list(db.session.scalars(select(FlowRun).where(FlowRun.conversation_id == conversation_id)
                                   .order_by(FlowRun.created_at, FlowRun.id)))
