"""Timed rules per queue (Kore's email statuses): Agent Inactivity, Customer Idle, Due Reminder for
Auto Expiry, Auto Expire and On Close. The service level's Due Reminder and Overdue notices are rules
of the same page (`SLA_KINDS`: message and on/off, on by default) that `app.runtime.sla.notify_due`
sends; `run_due_timers()` leaves them alone.

`run_due_timers()` runs on every cron tick (`app.cron.PERIODIC`). For each enabled rule it reads
the open conversations of the rule's queue and works out which step is due:

* **Agent Inactivity**: assigned, open, the customer wrote last, and no agent reply for `minutes`
  since that message (or since the assignment, if later): the conversation goes back to its queue
  and is routed again (`app.flows.routing`, never to the same agent); the agent gets a notice.
* **Customer Idle**: the agent wrote last and the customer has not answered for `minutes`: the
  customer gets the rule's Standard Response (or its message) through the outbound path.
* **Due Reminder for Auto Expiry**: `minutes` before Auto Expire, the assignee gets a notice.
* **Auto Expire**: `minutes` after the Customer Idle message, still without an answer: the closing
  message goes out and the conversation is resolved.
* **On Close**: a conversation resolved after the rule was saved gets the closing message once.

Exactly once. An *episode* is the id of the customer's latest message (0 before any), so a
customer's message starts a new one. Each step is a `TimerStep` row unique per (conversation,
kind, episode), inserted first in a transaction of its own: of two cron processes the second one's
insert fails and it does nothing. The step's effects (routing, the queued mail, the status, the
trail line from `record_event`) commit with the row, or not at all (and the next tick tries again).
"""
from __future__ import annotations

import html
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.flows.automatic import AutomaticMailRefused, queue_automatic_reply
from app.flows.routing import candidates, try_assign
from app.mail.subjects import reply_subject
from app.models._types import utcnow
from app.models.auth import User
from app.models.escalation import (DEFAULT_MESSAGES, SLA_KINDS, TIMER_KINDS, VARIABLE, QueueTimer, TimerStep, fill,
                                   people_values)
from app.models.inbox import Conversation, Message, customer_written
from app.models.notifications import Notification
from app.units import duration_words as words
from app.runtime.trail import record_event

log = logging.getLogger(__name__)

BATCH = 500

@dataclass(frozen=True)
class Activity:
    """What a conversation's messages say about who owes an answer."""
    episode: int                     # the customer's latest message id, 0 before any
    customer_at: datetime | None     # when the customer last wrote
    agent_at: datetime | None        # when an agent (not automation) last replied

    @property
    def customer_waiting(self) -> bool:
        return self.customer_at is not None and (self.agent_at is None or self.agent_at < self.customer_at)

    @property
    def agent_waiting(self) -> bool:
        return self.agent_at is not None and (self.customer_at is None or self.agent_at > self.customer_at)


def activity(conversation_id: int) -> Activity:
    last_in = db.session.execute(
        select(Message.id, Message.created_at).where(Message.conversation_id == conversation_id, customer_written())
        .order_by(Message.created_at.desc(), Message.id.desc()).limit(1)).first()
    agent_at = db.session.scalar(
        select(Message.created_at).where(Message.conversation_id == conversation_id, Message.direction == "out",
                                         Message.automatic.is_(None))
        .order_by(Message.created_at.desc()).limit(1))
    return Activity(last_in.id if last_in else 0, last_in.created_at if last_in else None, agent_at)


def _rules(kind: str) -> list[QueueTimer]:
    return list(db.session.scalars(select(QueueTimer).where(QueueTimer.kind == kind, QueueTimer.enabled.is_(True))))


def rule_of(queue_id: int, kind: str) -> QueueTimer | None:
    return db.session.scalar(select(QueueTimer).where(QueueTimer.queue_id == queue_id, QueueTimer.kind == kind,
                                                      QueueTimer.enabled.is_(True)))


def _step_done(conversation_id: int, kind: str, episode: int) -> TimerStep | None:
    return db.session.scalar(select(TimerStep).where(TimerStep.conversation_id == conversation_id,
                                                     TimerStep.kind == kind, TimerStep.episode == episode))


def _claim(conversation_id: int, kind: str, episode: int, now: datetime) -> bool:
    """Insert the step's row as the first write of a fresh transaction; False when another process has it."""
    db.session.rollback()
    db.session.add(TimerStep(conversation_id=conversation_id, kind=kind, episode=episode, done_at=now))
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        return False
    return True


def _values(conversation: Conversation, elapsed: timedelta, left: timedelta | None = None,
            agent: User | None = None) -> dict[str, str]:
    return {"elapsed_time": words(elapsed), "time_left_to_expiry": words(left) if left is not None else "",
            **people_values(conversation, agent)}


def _notice(user_id: int | None, conversation_id: int, text: str) -> None:
    if user_id is not None:
        db.session.add(Notification(user_id=user_id, conversation_id=conversation_id, kind="timer", text=text[:2000]))


def _mail_customer(conversation: Conversation, rule: QueueTimer, values: dict[str, str]) -> str:
    """Queue the rule's mail to the customer; returns what happened, for the trail."""
    response = rule.response
    if response is not None:
        subject, body = response.subject or reply_subject(conversation.subject), response.body
    else:
        subject = reply_subject(conversation.subject)
        text = fill(rule.message or DEFAULT_MESSAGES[rule.kind], values)
        body = "".join(f"<p>{_escape(line)}</p>" for line in text.splitlines() if line.strip())
    body = VARIABLE.sub(lambda m: _escape(values[m.group(1)]) if m.group(1) in values else m.group(0), body)
    try:
        message = queue_automatic_reply(conversation.id, subject, body, rule.kind, conversation.queue_id)
    except AutomaticMailRefused as exc:
        return f"no mail sent ({exc})"
    return f"mail queued (message {message.id})"


def _escape(text: str) -> str:
    return html.escape(text, quote=False)


# --- the steps ----------------------------------------------------------------------------------

def _open_conversations(queue_id: int, statuses=("open",)) -> list[Conversation]:
    return list(db.session.scalars(select(Conversation).where(
        Conversation.queue_id == queue_id, Conversation.status.in_(statuses),
        Conversation.merged_into_id.is_(None)).order_by(Conversation.id).limit(BATCH)))


def agent_inactivity(now: datetime) -> int:
    done = 0
    for rule in _rules("agent_inactivity"):
        limit = timedelta(minutes=rule.minutes)
        due = []
        for conv in _open_conversations(rule.queue_id):
            if conv.assignee_id is None:
                continue
            act = activity(conv.id)
            if not act.customer_waiting:
                continue
            since = max(act.customer_at, conv.assigned_at) if conv.assigned_at else act.customer_at
            if now - since >= limit:
                due.append((conv.id, conv.assignee_id, act.episode, since))
        for cid, previous, episode, since in due:
            if not _claim(cid, "agent_inactivity", episode, now):
                continue
            taken = db.session.execute(
                update(Conversation).where(Conversation.id == cid, Conversation.assignee_id == previous,
                                           Conversation.status == "open")
                .values(assignee_id=None, assigned_at=now, assigned_by_id=None)
                .execution_options(synchronize_session=False)).rowcount
            if not taken:  # answered, reassigned or resolved meanwhile: the next tick looks again
                db.session.rollback()
                continue
            conv = db.session.get(Conversation, cid)
            db.session.refresh(conv)
            agent = db.session.get(User, previous)
            new = None
            for user in candidates(conv.queue_id):
                if user.id != previous and try_assign(conv, user.id, now):
                    new = user
                    break
            values = _values(conv, now - since, agent=agent)
            who = (agent.name or agent.email) if agent else "the agent"
            to = f"assigned to {new.name or new.email}" if new else "waiting in the queue"
            record_event(cid, "timer", f"Agent Inactivity: no reply from {who} for {values['elapsed_time']}; "
                         f"back to {values['queue'] or 'its queue'}, {to}", None, when=now,
                         rule="agent_inactivity", previous_assignee_id=previous,
                         assignee_id=new.id if new else None)
            _notice(previous, cid, fill(rule.message or DEFAULT_MESSAGES["agent_inactivity"], values))
            db.session.commit()
            done += 1
    db.session.rollback()
    return done


def customer_idle(now: datetime) -> int:
    done = 0
    for rule in _rules("customer_idle"):
        limit = timedelta(minutes=rule.minutes)
        due = []
        for conv in _open_conversations(rule.queue_id, ("open", "pending")):
            act = activity(conv.id)
            if act.agent_waiting and now - act.agent_at >= limit:
                due.append((conv.id, act))
        for cid, act in due:
            if not _claim(cid, "customer_idle", act.episode, now):
                continue
            conv = db.session.get(Conversation, cid)
            rule = db.session.get(QueueTimer, rule.id)
            expire = rule_of(conv.queue_id, "auto_expire")
            left = timedelta(minutes=expire.minutes) if expire else None
            values = _values(conv, now - act.agent_at, left)
            outcome = _mail_customer(conv, rule, values)
            record_event(cid, "timer", f"Customer Idle: no answer from the customer for {values['elapsed_time']}; "
                         f"{outcome}", None, when=now, rule="customer_idle")
            db.session.commit()
            done += 1
    db.session.rollback()
    return done


def _idle_episodes(queue_id: int) -> list[tuple[Conversation, Activity, TimerStep]]:
    """Open or pending conversations whose Customer Idle message went out in the current episode."""
    found = []
    for conv in _open_conversations(queue_id, ("open", "pending")):
        act = activity(conv.id)
        if not act.agent_waiting:
            continue
        idle = _step_done(conv.id, "customer_idle", act.episode)
        if idle is not None:
            found.append((conv, act, idle))
    return found


def expiry_reminder(now: datetime) -> int:
    done = 0
    for rule in _rules("expiry_reminder"):
        expire = rule_of(rule.queue_id, "auto_expire")
        if expire is None:
            continue
        due = []
        for conv, act, idle in _idle_episodes(rule.queue_id):
            expires_at = idle.done_at + timedelta(minutes=expire.minutes)
            if now >= expires_at - timedelta(minutes=rule.minutes) and now < expires_at:
                due.append((conv.id, act, expires_at))
        for cid, act, expires_at in due:
            if not _claim(cid, "expiry_reminder", act.episode, now):
                continue
            conv = db.session.get(Conversation, cid)
            values = _values(conv, now - act.agent_at, expires_at - now)
            text = fill(db.session.get(QueueTimer, rule.id).message or DEFAULT_MESSAGES["expiry_reminder"], values)
            _notice(conv.assignee_id, cid, text)
            record_event(cid, "timer", f"Due Reminder for Auto Expiry: expires in {values['time_left_to_expiry']}",
                         None, when=now, rule="expiry_reminder")
            db.session.commit()
            done += 1
    db.session.rollback()
    return done


def auto_expire(now: datetime) -> int:
    done = 0
    for rule in _rules("auto_expire"):
        due = [(conv.id, act, idle.done_at) for conv, act, idle in _idle_episodes(rule.queue_id)
               if now >= idle.done_at + timedelta(minutes=rule.minutes)]
        for cid, act, idle_at in due:
            if not _claim(cid, "auto_expire", act.episode, now):
                continue
            resolved = db.session.execute(
                update(Conversation).where(Conversation.id == cid, Conversation.status.in_(("open", "pending")))
                .values(status="resolved", status_at=now, status_by_id=None, snoozed_until=None)
                .execution_options(synchronize_session=False)).rowcount
            if not resolved:
                db.session.rollback()
                continue
            conv = db.session.get(Conversation, cid)
            db.session.refresh(conv)
            values = _values(conv, now - act.agent_at)
            outcome = _mail_customer(conv, db.session.get(QueueTimer, rule.id), values)
            # Its closing message stands for On Close's: the customer gets one, not two.
            db.session.add(TimerStep(conversation_id=cid, kind="on_close", episode=act.episode, done_at=now))
            record_event(cid, "timer", f"Auto Expire: no answer from the customer for {words(now - idle_at)} "
                         f"after the reminder; resolved, {outcome}", None, when=now, rule="auto_expire")
            db.session.commit()
            done += 1
    db.session.rollback()
    return done


def on_close(now: datetime) -> int:
    """The On Close message for conversations resolved since the rule was saved (at most a day ago)."""
    done = 0
    for rule in _rules("on_close"):
        since = max(rule.updated_at, now - timedelta(days=1))
        resolved = list(db.session.scalars(select(Conversation.id).where(
            Conversation.queue_id == rule.queue_id, Conversation.status == "resolved",
            Conversation.status_at >= since).limit(BATCH)))
        due = []
        for cid in resolved:
            episode = activity(cid).episode
            if _step_done(cid, "on_close", episode) is None:
                due.append((cid, episode))
        for cid, episode in due:
            if not _claim(cid, "on_close", episode, now):
                continue
            conv = db.session.get(Conversation, cid)
            if conv.status != "resolved":
                db.session.rollback()
                continue
            values = _values(conv, now - conv.created_at)
            outcome = _mail_customer(conv, db.session.get(QueueTimer, rule.id), values)
            record_event(cid, "timer", f"On Close: {outcome}", None, when=now, rule="on_close")
            db.session.commit()
            done += 1
    db.session.rollback()
    return done


def run_due_timers(now: datetime | None = None) -> dict[str, int]:
    """Take every due step once; returns how many of each kind. Owns its transactions."""
    now = now or utcnow()
    return {kind: step(now) for kind, step in (
        ("agent_inactivity", agent_inactivity), ("customer_idle", customer_idle),
        ("expiry_reminder", expiry_reminder), ("auto_expire", auto_expire), ("on_close", on_close))}


# --- editing the rules (the Timers page) --------------------------------------------------------

def timers_of(queue_id: int) -> list[QueueTimer]:
    """The queue's rules in the page's order, unsaved defaults for the missing ones."""
    saved = {t.kind: t for t in db.session.scalars(select(QueueTimer).where(QueueTimer.queue_id == queue_id))}
    defaults = {"agent_inactivity": 30, "customer_idle": 24 * 60, "expiry_reminder": 60, "auto_expire": 48 * 60,
                "on_close": 0, "sla_due_reminder": 0, "sla_overdue": 0}
    return [saved.get(kind) or QueueTimer(queue_id=queue_id, kind=kind, enabled=kind in SLA_KINDS,
                                          minutes=defaults[kind], message="") for kind in TIMER_KINDS]


def save_timer(queue_id: int, kind: str, enabled: bool, minutes: int, message: str,
               response_id: int | None) -> QueueTimer:
    """Create or update one rule (the caller commits). Raises ValueError for an unknown kind or a bad duration."""
    if kind not in TIMER_KINDS:
        raise ValueError(f"unknown timer {kind!r}")
    if minutes < 0 or minutes > 60 * 24 * 365:
        raise ValueError("The duration must be between 0 and 525600 minutes.")
    rule = db.session.scalar(select(QueueTimer).where(QueueTimer.queue_id == queue_id, QueueTimer.kind == kind))
    if rule is None:
        rule = QueueTimer(queue_id=queue_id, kind=kind)
        db.session.add(rule)
    rule.enabled, rule.minutes, rule.message, rule.response_id = enabled, minutes, message.strip(), response_id
    rule.updated_at = utcnow()
    return rule
