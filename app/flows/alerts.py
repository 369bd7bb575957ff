"""Alert rules per queue ("SLAs & Alerts"): Response Service Level, Average Speed of Answer, Backlog and
Oldest Waiting, told once per breach and once on recovery.

`evaluate_alerts()` runs on every cron tick. It measures each enabled rule's figure (`measure`) and
flips `QueueAlert.in_breach` with a conditional UPDATE (`WHERE in_breach = <the old value>`): of
several cron processes exactly one changes it, and only that one tells: an in-app notice to every
active supervisor and admin (the banner), and after the commit one mail to the rule's addresses
through the platform relay (`app.runtime.notices.send_notice`). A figure that cannot be measured
(no conversation in the window) changes nothing.

The figures, per queue, over conversations not merged into another:

* Response Service Level: of the conversations created in the last `window_minutes`, the share (%)
  whose first agent reply came within `target_minutes`; one still unanswered counts as missed once
  older than the target, and is not counted before. Breach: below `threshold`.
* Average Speed of Answer: the mean minutes to the first agent reply of the conversations created in
  the window and answered. Breach: above `threshold`.
* Backlog: open conversations whose customer wrote last. Breach: above `threshold`.
* Oldest Waiting: minutes since the oldest unanswered customer message among those. Breach: above.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select, update

from app.extensions import db
from app.flows.timers import activity
from app.models._types import utcnow
from app.models.auth import Queue, Role, User
from app.models.escalation import ALERT_METRICS, QueueAlert
from app.models.notifications import Notification
from app.models.inbox import Conversation, Message, customer_written
from app.runtime.notices import send_notice
from app.transactions import on_commit

log = logging.getLogger(__name__)

UNITS = {"service_level": "%", "asa": " minutes", "backlog": " conversations", "oldest_waiting": " minutes"}


def _first_replies(conversation_ids: list[int]) -> dict[int, datetime]:
    if not conversation_ids:
        return {}
    return dict(db.session.execute(
        select(Message.conversation_id, func.min(Message.created_at))
        .where(Message.conversation_id.in_(conversation_ids), Message.direction == "out",
               Message.automatic.is_(None)).group_by(Message.conversation_id)).all())


def _minutes(delta: timedelta) -> float:
    return delta.total_seconds() / 60


def measure(rule: QueueAlert, now: datetime) -> float | None:
    """The rule's figure now, or None when there is nothing to measure."""
    base = select(Conversation.id, Conversation.created_at).where(
        Conversation.queue_id == rule.queue_id, Conversation.merged_into_id.is_(None))
    if rule.metric in ("service_level", "asa"):
        rows = db.session.execute(base.where(Conversation.created_at >= now - timedelta(minutes=rule.window_minutes))).all()
        first = _first_replies([cid for cid, _ in rows])
        if rule.metric == "asa":
            waits = [_minutes(_aware(first[cid]) - _aware(created)) for cid, created in rows if cid in first]
            return round(sum(waits) / len(waits), 1) if waits else None
        target = timedelta(minutes=rule.target_minutes)
        hits = misses = 0
        for cid, created in rows:
            created = _aware(created)
            if cid in first and _aware(first[cid]) - created <= target:
                hits += 1
            elif cid in first or now - created > target:
                misses += 1
        return round(100 * hits / (hits + misses), 1) if hits + misses else None
    waiting = []
    for cid, _ in db.session.execute(base.where(Conversation.status == "open")).all():
        act = activity(cid)
        if act.customer_waiting:
            waiting.append(_oldest_unanswered(cid, act.agent_at) or _aware(act.customer_at))
    if rule.metric == "backlog":
        return float(len(waiting))
    return round(_minutes(now - min(waiting)), 1) if waiting else 0.0


def _oldest_unanswered(conversation_id: int, agent_at: datetime | None) -> datetime | None:
    query = select(func.min(Message.created_at)).where(Message.conversation_id == conversation_id, customer_written())
    if agent_at is not None:
        query = query.where(Message.created_at > agent_at)
    found = db.session.scalar(query)
    return _aware(found) if found else None


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def breached(rule: QueueAlert, value: float) -> bool:
    return value < rule.threshold if rule.metric == "service_level" else value > rule.threshold


def describe(rule: QueueAlert, queue_name: str, value: float, breach: bool) -> str:
    name = ALERT_METRICS[rule.metric]
    unit = UNITS[rule.metric]
    limit = f"{'at least' if rule.metric == 'service_level' else 'at most'} {rule.threshold:g}{unit}"
    if breach:
        return f"{queue_name}: {name} is {value:g}{unit} (the rule asks {limit})."
    return f"{queue_name}: {name} is back to {value:g}{unit} (the rule asks {limit})."


def evaluate_alerts(now: datetime | None = None) -> int:
    """Measure every enabled rule; tell each new breach and each recovery once. Returns how many were told."""
    now = now or utcnow()
    told = 0
    rules = list(db.session.scalars(select(QueueAlert).where(QueueAlert.enabled.is_(True))))
    for rule in rules:
        value = measure(rule, now)
        if value is None:
            continue
        breach = breached(rule, value)
        changed = db.session.execute(
            update(QueueAlert).where(QueueAlert.id == rule.id, QueueAlert.in_breach.is_(not breach))
            .values(in_breach=breach, changed_at=now, last_value=value)
            .execution_options(synchronize_session=False)).rowcount
        if not changed:
            db.session.rollback()
            continue
        queue_name = db.session.scalar(select(Queue.name).where(Queue.id == rule.queue_id)) or "A queue"
        text = describe(rule, queue_name, value, breach)
        for user_id in db.session.scalars(select(User.id).where(
                User.active.is_(True), User.role.in_((Role.SUPERVISOR.value, Role.ADMIN.value)))):
            db.session.add(Notification(user_id=user_id, kind="alert",
                                        text=("Alert: " if breach else "Recovered: ") + text))
        recipients = [line.strip() for line in (rule.emails or "").replace(",", "\n").splitlines() if line.strip()]
        if recipients:
            subject = f"{'Alert' if breach else 'Recovered'}: {ALERT_METRICS[rule.metric]} of {queue_name}"
            on_commit(send_notice, recipients, subject, text + "\n")
        db.session.commit()
        told += 1
    db.session.rollback()
    return told


def save_alert(queue_id: int, metric: str, threshold: float, target_minutes: int, window_minutes: int,
               emails: str, enabled: bool = True, alert_id: int | None = None) -> QueueAlert:
    """Create or update an alert rule (the caller commits). Raises ValueError naming the bad value."""
    if metric not in ALERT_METRICS:
        raise ValueError(f"unknown figure {metric!r}")
    if threshold < 0 or target_minutes < 1 or window_minutes < 1:
        raise ValueError("Threshold, target and window must be positive.")
    addresses = [line.strip() for line in emails.replace(",", "\n").splitlines() if line.strip()]
    for address in addresses:
        local, at, domain = address.rpartition("@")
        if not at or not local or "." not in domain or " " in address:
            raise ValueError(f"“{address}” is not an email address.")
    emails = "\n".join(addresses)
    rule = db.session.get(QueueAlert, alert_id) if alert_id else None
    if rule is None or rule.queue_id != queue_id:
        rule = QueueAlert(queue_id=queue_id, metric=metric, in_breach=False)
        db.session.add(rule)
    rule.metric, rule.threshold, rule.target_minutes, rule.window_minutes = metric, threshold, target_minutes, window_minutes
    rule.emails, rule.enabled = emails.strip(), enabled
    return rule
