"""Timed escalations and alerts per queue (Kore's email statuses and "SLAs & Alerts").

`QueueTimer`: one timed rule of a queue (Agent Inactivity, Customer Idle, Due Reminder for Auto
Expiry, Auto Expire, On Close, and the service level's Due Reminder and Overdue), enabled or not,
with its duration and its editable message. `DEFAULT_MESSAGES` and `VARIABLES` are the messages'
defaults and variables; `fill()` renders one (plain text, {{ name }} only, no templating language),
for `app.flows.timers` and `app.runtime.sla` alike.
`TimerStep`: a step taken for one conversation, unique per (conversation, rule kind, episode), so
a step runs once per episode whatever the number of cron processes (`app.flows.timers`).
`QueueAlert`: an alert rule of a queue on a figure (Response Service Level, average speed of
answer, backlog, oldest waiting), with `in_breach` flipped by conditional UPDATEs so each breach
and each recovery is told once (`app.flows.alerts`).
Their in-app notices are `Notification`s (kinds "timer" and "alert").
"""
from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models._types import UTCDateTime, utcnow

#: The timed rules, in the order of the Timers page, with their names in the product.
TIMER_KINDS = {
    "agent_inactivity": "Agent Inactivity",
    "customer_idle": "Customer Idle",
    "expiry_reminder": "Due Reminder for Auto Expiry",
    "auto_expire": "Auto Expire",
    "on_close": "On Close",
    "sla_due_reminder": "Due Reminder",
    "sla_overdue": "Overdue",
}

#: The service level's notices to the agent (`app.runtime.sla.notify_due`): on unless switched off.
SLA_KINDS = ("sla_due_reminder", "sla_overdue")

#: The variables of the rules' messages, as {{ name }}: what the Timers page lists.
VARIABLES = {"elapsed_time": "Elapsed Time", "time_left_to_expiry": "Time Left to Expiry",
             "customer_name": "Customer Name", "agent_name": "Agent Name", "queue": "Queue",
             "subject": "Subject", "target": "Target (First response, Next response, Resolution)",
             "time_left": "Time Left"}

#: What each rule says when its message is left empty.
DEFAULT_MESSAGES = {
    "agent_inactivity": "{{ customer_name }}'s conversation went back to {{ queue }}: no reply for {{ elapsed_time }}.",
    "customer_idle": "Hello {{ customer_name }}, we have not heard from you for {{ elapsed_time }}. "
                     "Is there anything else we can help with?",
    "expiry_reminder": "{{ customer_name }}'s conversation expires in {{ time_left_to_expiry }} unless the customer answers.",
    "auto_expire": "Hello {{ customer_name }}, as we have not heard from you, we are closing this conversation. "
                   "Write to us any time to open it again.",
    "on_close": "Hello {{ customer_name }}, your conversation with {{ queue }} is resolved. Thank you!",
    "sla_due_reminder": "{{ target }} due in {{ time_left }}: {{ subject }}",
    "sla_overdue": "{{ target }} overdue: {{ subject }}",
}

VARIABLE = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")


def fill(text: str, values: dict[str, str]) -> str:
    """Replace {{ variable }} with its value, in plain text (unknown names become empty)."""
    return VARIABLE.sub(lambda m: values.get(m.group(1), ""), text or "")


def people_values(conversation, agent=None) -> dict[str, str]:
    """The variables every rule's message has about a conversation's people: {{ customer_name }} (the contact's
    name, else the local part of their address), {{ agent_name }} (`agent`, else the assignee) and {{ queue }}."""
    contact, agent = conversation.contact, agent or conversation.assignee
    return {"customer_name": (contact.name or contact.email.split("@")[0]) if contact else "",
            "agent_name": (agent.name or agent.email) if agent else "",
            "queue": conversation.queue.name if conversation.queue else ""}

#: The alert figures and their names.
ALERT_METRICS = {
    "service_level": "Response Service Level",
    "asa": "Average Speed of Answer",
    "backlog": "Backlog",
    "oldest_waiting": "Oldest Waiting",
}


class QueueTimer(db.Model):
    """One timed rule of a queue. `minutes`: after how long (for the reminder: how long before Auto
    Expire); `response_id`: the Standard Response sent to the customer (Customer Idle, Auto Expire,
    On Close), else `message` is sent; `message` also holds the agent's notice text."""
    __tablename__ = "queue_timers"
    __table_args__ = (UniqueConstraint("queue_id", "kind", name="uq_queue_timers_queue_kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    queue_id: Mapped[int] = mapped_column(ForeignKey("queues.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(30))
    enabled: Mapped[bool] = mapped_column(default=False)
    minutes: Mapped[int] = mapped_column(default=60)
    message: Mapped[str] = mapped_column(Text, default="")
    response_id: Mapped[int | None] = mapped_column(ForeignKey("standard_responses.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    response = relationship("StandardResponse")


class TimerStep(db.Model):
    """A timed step done for a conversation in one episode (the id of the customer's latest message, 0
    before any): the unique key is the claim, so a second cron process inserting it fails."""
    __tablename__ = "timer_steps"
    __table_args__ = (UniqueConstraint("conversation_id", "kind", "episode", name="uq_timer_steps_step"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(30))
    episode: Mapped[int] = mapped_column(default=0)
    done_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class QueueAlert(db.Model):
    """An alert rule: `metric` compared with `threshold` (percent for the service level, minutes for
    speed of answer and oldest waiting, conversations for the backlog) over `window_minutes`;
    `target_minutes`: "answered within" for the service level. `emails`: addresses, one a line."""
    __tablename__ = "queue_alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    queue_id: Mapped[int] = mapped_column(ForeignKey("queues.id", ondelete="CASCADE"))
    metric: Mapped[str] = mapped_column(String(30))
    enabled: Mapped[bool] = mapped_column(default=True)
    threshold: Mapped[float] = mapped_column(default=0)
    target_minutes: Mapped[int] = mapped_column(default=60)
    window_minutes: Mapped[int] = mapped_column(default=60)
    emails: Mapped[str] = mapped_column(Text, default="")
    in_breach: Mapped[bool] = mapped_column(default=False)
    changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_value: Mapped[float | None] = mapped_column()
