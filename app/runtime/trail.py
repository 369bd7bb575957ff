"""The audit trail of a conversation: one line per change, by an agent or by automation.

Assignment, transfer, status, priority, tags, snooze, merge and split, and what a flow did on
its own, each call `record_event()` where the change happens (the workspace's actions, the flow
runner, the snooze timer, ingest reopening a conversation). The line is written in words at the
time ("Alex Agent transferred to Returns"), the conversation page shows it between the messages
at its time in the viewer's zone, and the export (`app.inbox.trail_export`) lists the same lines.
Part of the caller's transaction: the caller commits.
"""
from __future__ import annotations

from datetime import datetime

from app.extensions import db
from app.runtime.changes import publish_change
from app.models._types import utcnow
from app.models.auth import User
from app.models.organize import ConversationEvent

#: The kinds of event, in the trail's own words for the export.
KINDS = {
    "assign": "Assignment", "transfer": "Transfer", "status": "Status", "priority": "Priority", "tags": "Tags",
    "snooze": "Snooze", "merge": "Merge", "split": "Split", "automation": "Automation", "note": "Internal note",
    "sla": "Service level",
    "timer": "Timer",  # a timed rule of the queue (app.flows.timers)
}


def actor_name(user: User | None) -> str:
    """How a line names who acted: the agent's name (or address), "Automation" for nobody."""
    if user is None:
        return "Automation"
    return user.name or user.email


def record_event(conversation_id: int, kind: str, text: str, actor: User | None = None,
                 when: datetime | None = None, **data) -> ConversationEvent:
    """Add one line to the conversation's trail. `text` is the whole line without its time, naming the
    actor ("Alex Agent set the priority to High"); `data`: the values before and after (JSON)."""
    if kind not in KINDS:
        raise ValueError(f"unknown event kind {kind!r}")
    event = ConversationEvent(conversation_id=conversation_id, kind=kind, text=text[:2000],
                              actor_id=actor.id if actor is not None else None, data=data,
                              created_at=when or utcnow())
    db.session.add(event)
    if kind in _ANNOUNCED:  # the other kinds are announced by their own callers, with the audience before
        publish_change(conversation_id, kind)
    return event


#: Event kinds whose line is the change's only announcement to live pages (`app.runtime.changes`).
_ANNOUNCED = {"priority", "tags", "snooze", "merge", "split", "note"}
