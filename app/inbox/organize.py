"""What an agent does to organise a conversation: its priority, its tags, and snoozing it.

Each change leaves a line in the conversation's trail (`app.runtime.trail`). Tags are the ones
flows set (`app.runtime.tags`: one normal form, one writer). Snooze sets the status to pending
("Pending until …") until a time, or until the customer answers (no time); when the time comes,
`app.runtime.snooze.wake_due_snoozes` (cron) reopens it in the Mine view of whoever snoozed it (or
of its assignee), and a customer's reply reopens it at once (`app.runtime.ingest`). Services raise
`NotFound` / `InvalidAction`; the views commit.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from app.inbox.access import InvalidAction, get_conversation, get_user
from app.models._types import utcnow
from app.models.auth import User
from app.models.inbox import Conversation
from app.models.organize import PRIORITIES
from app.runtime import facts, sla
from app.runtime.tags import TagError, known_tags, normal_tag, set_tags
from app.runtime.trail import actor_name, record_event

#: The furthest a snooze may reach.
MAX_SNOOZE = timedelta(days=365)


def set_priority(actor: User | int, conversation_id: int, priority: int) -> Conversation:
    """Set the priority (-1 low, 0 normal, 1 high, 2 urgent). Raises `NotFound`, `InvalidAction`."""
    if priority not in PRIORITIES:
        raise InvalidAction("Choose low, normal, high or urgent.")
    actor = get_user(actor)
    conversation = get_conversation(actor, conversation_id)
    if conversation.priority == priority:
        return conversation
    record_event(conversation.id, "priority", f"{actor_name(actor)} set the priority to {PRIORITIES[priority]}",
                 actor, priority=priority, before=conversation.priority)
    conversation.priority = priority
    sla.refresh(conversation)  # a policy may be for this priority
    return conversation


def add_tag(actor: User | int, conversation_id: int, value: str) -> Conversation:
    """Add a tag (or several, separated by commas). Raises `NotFound`, `InvalidAction` (empty, too long,
    too many)."""
    actor = get_user(actor)
    conversation = get_conversation(actor, conversation_id)
    try:
        wanted = [normal_tag(v) for v in (value or "").split(",")]
        wanted = [t for t in wanted if t]
        if not wanted:
            raise InvalidAction("Type a tag first.")
        added, _ = set_tags(conversation, [*(conversation.tags or []), *wanted])
    except TagError as exc:
        raise InvalidAction(str(exc)) from None
    if added:
        record_event(conversation.id, "tags", f"{actor_name(actor)} added the tag{'s' if len(added) > 1 else ''} "
                     + ", ".join(added), actor, added=added)
        sla.refresh(conversation)  # a policy may be for this tag
    return conversation


def remove_tag(actor: User | int, conversation_id: int, tag: str) -> Conversation:
    """Remove a tag (nothing happens when the conversation does not have it). Raises `NotFound`."""
    actor = get_user(actor)
    conversation = get_conversation(actor, conversation_id)
    try:
        tag = normal_tag(tag)
    except TagError:
        return conversation
    if tag not in (conversation.tags or []):
        return conversation
    set_tags(conversation, [t for t in conversation.tags if t != tag])
    record_event(conversation.id, "tags", f"{actor_name(actor)} removed the tag {tag}", actor, removed=[tag])
    sla.refresh(conversation)
    return conversation


def snooze(actor: User | int, conversation_id: int, until: datetime | None, now: datetime | None = None,
           zone: str = "UTC") -> Conversation:
    """Pending until `until` (an aware time), or until the customer answers (`until` None); the trail's
    line writes the time in `zone` (the agent's), naming it. Raises `NotFound`, `InvalidAction` for a
    time in the past or more than `MAX_SNOOZE` ahead."""
    actor = get_user(actor)
    conversation = get_conversation(actor, conversation_id)
    now = now or utcnow()
    if until is not None:
        if until.tzinfo is None:
            raise InvalidAction("Choose a time with its time zone.")
        until = until.astimezone(timezone.utc)
        if until <= now:
            raise InvalidAction("Choose a time in the future.")
        if until - now > MAX_SNOOZE:
            raise InvalidAction("Choose a time within a year.")
    before = conversation.status
    conversation.status = "pending"
    conversation.status_by_id, conversation.status_at = actor.id, now
    conversation.snoozed_until, conversation.snoozed_by_id = until, actor.id
    words = "until the customer answers" if until is None else \
        f"until {until.astimezone(ZoneInfo(zone)).strftime('%Y-%m-%d %H:%M %Z')}"
    record_event(conversation.id, "snooze", f"{actor_name(actor)} snoozed this {words}", actor,
                 until=until.isoformat() if until else None, before=before)
    sla.status_changed(conversation, now)  # a resolved conversation snoozed back to pending: its clocks run again
    facts.synced(conversation, now)
    return conversation


def suggested_tags(prefix: str = "") -> list[str]:
    """Tags in use that start with `prefix`, most used first (the tag field's suggestions)."""
    return known_tags(prefix)
