"""Service levels: which SLA policy a conversation falls under, its due times, breaches and the cron's notices.

Anchors and targets
-------------------
``sla_waiting_since`` is the time of the oldest customer message no agent has answered yet (set by
ingest, cleared by an agent's reply). With the conversation's policy (`policy_for`) and its queue's
calendar (`app.runtime.sla_clock`, business minutes in the queue's hours, time zone and holidays):

* first response due = waiting since + first-response target, until the first agent reply;
* next response due = waiting since + next-response target, after the first reply, while a customer
  message waits;
* resolution due = created + resolution target, while the conversation is open or pending
  (measured across reopenings).

Resolved and closed conversations have no due times. ``sla_due_at`` is the soonest of the three,
``sla_warn_at`` that minus the warning (the policy's, else ``SLA_WARNING_MINUTES``; plain minutes).
A target missed is recorded as ``*_breached_at`` (the due time) when the reply or resolution comes
late, or when the cron sweep finds it overdue.

The reports' facts (`app.runtime.facts.sla_judged`) get each judgement as it is made: True when a
breach is recorded, False when the reply (first or next) or the resolution comes in time; None stays
for a target no policy measured. `judge_history` makes the same judgements from a conversation's
messages, for `flask reports backfill`.

`refresh()` recomputes all of this; call it after every change that can move a due time (a customer
message, an agent reply, status, queue, priority or tags). It is part of the caller's transaction.

Notices
-------
`notify_due()` (cron, `app.cron.PERIODIC`) gives the assigned agent an in-app notification (`Notification`)
once when a conversation becomes at risk and once when it is overdue, and writes it in the trail.
"Once" is a conditional UPDATE of ``sla_warned_for`` / ``sla_overdue_for`` (set to the due time the
notice is for), so two cron processes never notify twice and a restart forgets nothing.
The words are the queue's "Due Reminder" and "Overdue" rules of its Timers page (`QueueTimer` kinds
``sla_due_reminder`` / ``sla_overdue``: message and on/off, on without a saved rule), filled by
`app.models.escalation.fill` with `notice_values` ({{ target }}, {{ subject }}, {{ time_left }}, ...).
A rule switched off sends nothing, but the notice is still claimed (and an overdue one's breach still
recorded), so switching it on later does not send old notices.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import and_, or_, select, update

from app.extensions import db
from app.models._types import utcnow
from app.models.auth import Queue
from app.models.escalation import DEFAULT_MESSAGES, QueueTimer, fill, people_values
from app.models.inbox import Conversation, Message, customer_written
from app.models.notifications import Notification
from app.models.sla import SlaPolicy
from app.runtime import facts
from app.runtime.sla_clock import add_business_minutes
from app.runtime.trail import record_event
from app.units import duration_words

ACTIVE = ("open", "pending")
TARGETS = (("first_response", "First response"), ("next_response", "Next response"), ("resolution", "Resolution"))
BATCH = 500


def breached_now(now: datetime):
    """SQL: an open or pending conversation past its due time (the inbox's "Breached", the dashboard's)."""
    return and_(Conversation.sla_due_at <= now, Conversation.status.in_(ACTIVE))


def at_risk_now(now: datetime):
    """SQL: an open or pending conversation within its warning time, not yet due ("At risk")."""
    return and_(Conversation.sla_warn_at <= now, Conversation.sla_due_at > now, Conversation.status.in_(ACTIVE))


def policy_for(conversation: Conversation) -> SlaPolicy | None:
    """The most specific policy of the conversation's queue that matches its priority and tags."""
    if conversation.queue_id is None:
        return None
    tags = set(conversation.tags or [])
    best, best_score = None, -1
    for policy in db.session.scalars(select(SlaPolicy).where(SlaPolicy.queue_id == conversation.queue_id)
                                     .order_by(SlaPolicy.id)):
        if policy.priority is not None and policy.priority != conversation.priority:
            continue
        if policy.tag and policy.tag not in tags:
            continue
        score = (policy.priority is not None) + bool(policy.tag)
        if score > best_score:
            best, best_score = policy, score
    return best


def warning_minutes(policy: SlaPolicy | None) -> int:
    if policy is not None and policy.warning_minutes is not None:
        return policy.warning_minutes
    return int(current_app.config.get("SLA_WARNING_MINUTES", 15))


def _note_breaches(conversation: Conversation, now: datetime) -> None:
    for key, _label in TARGETS:
        due = getattr(conversation, f"{key}_due_at")
        if due is not None and due <= now and getattr(conversation, f"{key}_breached_at") is None:
            setattr(conversation, f"{key}_breached_at", due)
            facts.sla_judged(conversation, key, True)


def _judge(conversation: Conversation, key: str) -> None:
    """The target `key` is over (its reply or the resolution came): met, unless a breach was recorded."""
    if getattr(conversation, f"{key}_due_at") is not None:
        facts.sla_judged(conversation, key, getattr(conversation, f"{key}_breached_at") is not None)


def refresh(conversation: Conversation, now: datetime | None = None) -> None:
    """Recompute the conversation's policy and due times (and note targets missed by `now`)."""
    now = now or utcnow()
    _note_breaches(conversation, now)
    policy = policy_for(conversation)
    conversation.sla_policy_id = policy.id if policy else None
    first = following = resolution = None
    if policy is not None and conversation.status in ACTIVE:
        queue = db.session.get(Queue, conversation.queue_id)
        hours, zone = queue.business_hours, queue.time_zone or "UTC"
        waiting = conversation.sla_waiting_since
        if waiting is not None and conversation.first_response_at is None and policy.first_response_minutes:
            first = add_business_minutes(waiting, policy.first_response_minutes, hours, zone)
        if waiting is not None and conversation.first_response_at is not None and policy.next_response_minutes:
            following = add_business_minutes(waiting, policy.next_response_minutes, hours, zone)
        if policy.resolution_minutes:
            resolution = add_business_minutes(conversation.created_at, policy.resolution_minutes, hours, zone)
    if following != conversation.next_response_due_at:
        conversation.next_response_breached_at = None  # a new cycle: judged afresh
    conversation.first_response_due_at = first
    conversation.next_response_due_at = following
    conversation.resolution_due_at = resolution
    dues = [d for d in (first, following, resolution) if d is not None]
    conversation.sla_due_at = min(dues) if dues else None
    conversation.sla_warn_at = (conversation.sla_due_at - timedelta(minutes=warning_minutes(policy))
                                if conversation.sla_due_at else None)


def customer_wrote(conversation: Conversation, at: datetime) -> None:
    """A customer message arrived: it waits for an answer (the oldest unanswered one counts)."""
    if conversation.sla_waiting_since is None:
        conversation.sla_waiting_since = at
    refresh(conversation, at)


def agent_replied(conversation: Conversation, at: datetime) -> None:
    """An agent's reply went out: the first response (if none yet) and nothing waits any more."""
    if conversation.sla_waiting_since is not None or conversation.first_response_at is None:
        _note_breaches(conversation, at)
        _judge(conversation, "first_response" if conversation.first_response_at is None else "next_response")
        if conversation.first_response_at is None:
            conversation.first_response_at = at
        conversation.sla_waiting_since = None
    refresh(conversation, at)


def status_changed(conversation: Conversation, at: datetime) -> None:
    """Resolved or closed stops the clocks (and records when); reopening starts them again."""
    if conversation.status in ("resolved", "closed"):
        if conversation.resolved_at is None or conversation.status == "resolved":
            _note_breaches(conversation, at)
            _judge(conversation, "resolution")
            conversation.resolved_at = at
    refresh(conversation, at)


def judge_history(created: datetime, events: list[tuple[datetime, str]], resolved_at: datetime | None,
                  active: bool, policy: SlaPolicy | None, hours: dict | None, zone: str,
                  now: datetime) -> dict[str, bool | None]:
    """Each target's judgement (`facts.SLA_TARGETS` -> None / False met / True breached) from a
    conversation's history, as the live code makes it: `events` are ("customer" | "agent", time) in time
    order (customer-written messages and agent replies); the oldest unanswered customer message starts
    a wait, the agent's next reply ends it (the first reply: first response; later ones: next
    response); resolution is created + its target against `resolved_at`. A wait or resolution still
    running is breached once `now` is past its due time, and not judged before. Pure."""
    judged: dict[str, bool | None] = {key: None for key in facts.SLA_TARGETS}
    if policy is None:
        return judged
    targets = {"first_response": policy.first_response_minutes, "next_response": policy.next_response_minutes}

    def judge(key: str, since: datetime, at: datetime | None) -> None:
        minutes = targets.get(key) if key != "resolution" else policy.resolution_minutes
        if not minutes:
            return
        due = add_business_minutes(since, minutes, hours, zone)
        if at is not None:
            judged[key] = bool(judged[key]) or due <= at
        elif active and due <= now:
            judged[key] = True

    waiting, replied = None, False
    for kind, at in events:
        if kind == "customer":
            waiting = waiting or at
        elif waiting is not None or not replied:
            if waiting is not None:
                judge("next_response" if replied else "first_response", waiting, at)
            waiting, replied = None, True
    if waiting is not None:
        judge("next_response" if replied else "first_response", waiting, None)
    judge("resolution", created, resolved_at)
    return judged


def judge_conversation(conversation: Conversation, now: datetime | None = None) -> dict[str, bool | None]:
    """`judge_history` of a stored conversation under its current policy and queue calendar, read from
    its messages (customer-written ones and agent replies); a breach the live code recorded
    (``*_breached_at``) stands too."""
    now = now or utcnow()
    policy = policy_for(conversation)
    queue = db.session.get(Queue, conversation.queue_id) if policy is not None else None
    rows = db.session.execute(
        select(Message.created_at, Message.direction).where(
            Message.conversation_id == conversation.id,
            or_(customer_written(), (Message.direction == "out") & Message.author_id.is_not(None)
                & Message.automatic.is_(None)))
        .order_by(Message.created_at, Message.id)).all()
    events = [("customer" if direction == "in" else "agent", at) for at, direction in rows]
    resolved = conversation.resolved_at or conversation.status_at or conversation.last_message_at
    judged = judge_history(conversation.created_at, events,
                           resolved if conversation.status in ("resolved", "closed") else None,
                           conversation.status in ACTIVE, policy, queue.business_hours if queue else None,
                           (queue.time_zone if queue else None) or "UTC", now)
    for key in facts.SLA_TARGETS:
        if getattr(conversation, f"{key}_breached_at") is not None:
            judged[key] = True
    return judged


def which(conversation) -> str:
    """The name of the target `sla_due_at` stands for ("First response")."""
    for key, label in TARGETS:
        if conversation.sla_due_at is not None and getattr(conversation, f"{key}_due_at") == conversation.sla_due_at:
            return label
    return "Response"


# --- the cron sweep -----------------------------------------------------------------------------

def _notify(cid: int, assignee_id: int | None, kind: str, text: str, now: datetime, **data) -> None:
    if assignee_id is not None:
        db.session.add(Notification(user_id=assignee_id, conversation_id=cid, kind=kind, text=text, created_at=now))
    record_event(cid, "sla", text + ("" if assignee_id else " (nobody is assigned)"), None, when=now,
                 notice=kind, assignee_id=assignee_id, **data)


def _rule_text(queue_id: int | None, kind: str, rules: dict) -> str | None:
    """The queue's message for notice `kind` ("sla_due_reminder" / "sla_overdue"); None when switched off."""
    if (queue_id, kind) not in rules:
        rule = (db.session.scalar(select(QueueTimer).where(QueueTimer.queue_id == queue_id, QueueTimer.kind == kind))
                if queue_id is not None else None)
        rules[(queue_id, kind)] = (None if rule is not None and not rule.enabled
                                   else (rule.message if rule is not None else "") or DEFAULT_MESSAGES[kind])
    return rules[(queue_id, kind)]


def notice_values(conversation: Conversation, due: datetime, now: datetime) -> dict[str, str]:
    """The variables of the Due Reminder and Overdue messages for one conversation at `now`."""
    return {"target": which(conversation), "subject": conversation.subject or "(no subject)",
            "time_left": f"{max(1, round((due - now).total_seconds() / 60))} min" if due > now else "0 min",
            "elapsed_time": duration_words(now - due),  # "0 minutes" before the due time
            **people_values(conversation)}


def notify_due(now: datetime | None = None) -> int:
    """Send the at-risk and overdue notices that are due; returns how many were sent."""
    now = now or utcnow()
    sent = 0
    rules: dict = {}
    columns = (Conversation.id, Conversation.sla_due_at, Conversation.assignee_id, Conversation.queue_id)
    at_risk = db.session.execute(
        select(*columns).where(at_risk_now(now),
                               or_(Conversation.sla_warned_for.is_(None), Conversation.sla_warned_for != Conversation.sla_due_at))
        .order_by(Conversation.sla_due_at).limit(BATCH)).all()
    for cid, due, assignee_id, queue_id in at_risk:
        won = db.session.execute(
            update(Conversation).where(Conversation.id == cid, Conversation.sla_due_at == due,
                                       or_(Conversation.sla_warned_for.is_(None), Conversation.sla_warned_for != due))
            .values(sla_warned_for=due).execution_options(synchronize_session=False)).rowcount
        if won:
            message = _rule_text(queue_id, "sla_due_reminder", rules)
            if message is not None:
                conversation = db.session.get(Conversation, cid)
                _notify(cid, assignee_id, "at_risk", fill(message, notice_values(conversation, due, now))[:2000],
                        now, due_at=due.isoformat())
                sent += 1
            db.session.commit()
    overdue = db.session.execute(
        select(*columns).where(breached_now(now),
                               or_(Conversation.sla_overdue_for.is_(None), Conversation.sla_overdue_for != Conversation.sla_due_at))
        .order_by(Conversation.sla_due_at).limit(BATCH)).all()
    for cid, due, assignee_id, queue_id in overdue:
        won = db.session.execute(
            update(Conversation).where(Conversation.id == cid, Conversation.sla_due_at == due,
                                       or_(Conversation.sla_overdue_for.is_(None), Conversation.sla_overdue_for != due))
            .values(sla_overdue_for=due).execution_options(synchronize_session=False)).rowcount
        if won:
            conversation = db.session.get(Conversation, cid)
            db.session.refresh(conversation)
            _note_breaches(conversation, now)
            message = _rule_text(queue_id, "sla_overdue", rules)
            if message is not None:
                _notify(cid, assignee_id, "overdue", fill(message, notice_values(conversation, due, now))[:2000],
                        now, due_at=due.isoformat())
                sent += 1
            db.session.commit()
    db.session.commit()
    return sent


# --- timers as shown ----------------------------------------------------------------------------

def _span(minutes: int) -> str:
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 24 * 60:
        h, m = divmod(minutes, 60)
        return f"{h} h {m} min" if m else f"{h} h"
    d, rest = divmod(minutes, 24 * 60)
    return f"{d} d {rest // 60} h" if rest // 60 else f"{d} d"


def timer(due: datetime | None, warn_at: datetime | None, label: str, now: datetime | None = None) -> tuple[str, str]:
    """What a row or header says of a due time, and its state: ("First response due in 42 min", "ok"),
    ("… due in 9 min", "at-risk"), ("… overdue by 3 min", "breached"); ("", "") without one."""
    if due is None:
        return "", ""
    now = now or utcnow()
    if due <= now:
        return f"{label} overdue by {_span(int((now - due).total_seconds() // 60))}", "breached"
    left = _span(max(1, -int(-(due - now).total_seconds() // 60)))  # rounded up: "in 1 min" until it is due
    return f"{label} due in {left}", "at-risk" if warn_at is not None and warn_at <= now else "ok"


def label_of(due: datetime | None, first_due: datetime | None, next_due: datetime | None) -> str:
    if due is None:
        return ""
    if first_due is not None and first_due == due:
        return "First response"
    if next_due is not None and next_due == due:
        return "Next response"
    return "Resolution"


def timer_of(conversation: Conversation, now: datetime | None = None) -> tuple[datetime | None, str, str]:
    """(due time, words, state) of a conversation's timer, for pages that hold the ORM object."""
    due = conversation.sla_due_at
    text, state = timer(due, conversation.sla_warn_at,
                        label_of(due, conversation.first_response_due_at, conversation.next_response_due_at), now)
    return due, text, state
