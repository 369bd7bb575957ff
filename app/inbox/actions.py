"""What an agent does to a conversation: assign, transfer to a queue, set its status, add a note.

Each action checks that the user may see the conversation (`NotFound` otherwise) and raises
`InvalidAction` with the reason in the user's words; the views commit.

Transfer hands a conversation to the agents of another queue. With `TRANSFER_TO_ANY_QUEUE`
on (the default) an agent may move it to any queue, as escalating to a team one does not
belong to is what transfer is for; off, an agent may move it only to queues they are a
member of (supervisors and admins: any).

Every change leaves a line in the conversation's trail (`app.runtime.trail`): "Alex Agent
transferred to Returns". (Transfers made before the trail existed left an internal note; those
notes stay in the thread as they were.)

Two agents on one conversation do not overwrite each other silently: taking a conversation
assigned to a colleague, or changing a status a colleague set in the last minute
(`RECENT_STATUS_SECONDS`), raises `AskFirst` naming who did what and when ("Bea Agent took
this conversation 20 s ago."), unless the call says `confirm=True` (the agent's "… anyway").

Every change is announced to the colleagues' open pages once it commits (`publish_change`, live
updates), the assignee and queue it had before included in the audience.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from app.extensions import db
from app.inbox.access import InvalidAction, NotAllowed, get_conversation, get_user, may_transfer_to_any_queue
from app.inbox.lists import STATUSES
from app.mail.html import html_to_text, sanitize_html
from app.models.auth import Queue, Role, User
from app.models._types import utcnow
from app.models.inbox import Conversation, Message
from app.runtime import facts, sla
from app.runtime.changes import publish_change
from app.runtime.trail import record_event

RECENT_STATUS_SECONDS = 60


class AskFirst(Exception):
    """A colleague's change would be overwritten: `question` says whose and when; the caller asks, then
    calls again with `confirm=True`. `action` is "assign" or "status"."""

    def __init__(self, action: str, question: str) -> None:
        super().__init__(question)
        self.action = action
        self.question = question


def ago(when: datetime | None, now: datetime | None = None) -> str:
    """"20 s ago", "3 min ago", "2 h ago", "on 2026-12-01": how long ago a colleague acted."""
    if when is None:
        return ""
    seconds = max(0, int(((now or utcnow()) - when).total_seconds()))
    if seconds < 60:
        return f"{seconds} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    return f"on {when:%Y-%m-%d}"


def _name(user: User | None) -> str:
    return (user.name or user.email) if user is not None else "Someone"


def _taking_question(conversation: Conversation) -> str:
    holder = _name(conversation.assignee)
    by = conversation.assigned_by
    if by is None or conversation.assigned_at is None:
        return f"This conversation is assigned to {holder}."
    if by.id == conversation.assignee_id:
        return f"{holder} took this conversation {ago(conversation.assigned_at)}."
    return f"{_name(by)} assigned this conversation to {holder} {ago(conversation.assigned_at)}."


def assign(actor: User | int, conversation_id: int, assignee_id: int | None, confirm: bool = False) -> Conversation:
    """Assign to a user (None: unassign). Raises `NotFound`, `InvalidAction` for an inactive user
    or an agent who is not a member of the conversation's queue, and `AskFirst` when it is assigned
    to someone else than the actor and `confirm` is not set."""
    actor = get_user(actor)
    conversation = get_conversation(actor, conversation_id)
    if assignee_id == conversation.assignee_id:
        return conversation
    if not confirm and conversation.assignee_id not in (None, actor.id):
        raise AskFirst("assign", _taking_question(conversation))
    if assignee_id is None:
        _assigned(actor, conversation, None)
        return conversation
    assignee = db.session.get(User, assignee_id)
    if assignee is None or not assignee.active:
        raise InvalidAction("Choose an active agent.")
    if conversation.queue_id is not None and not assignee.has_role(Role.SUPERVISOR) \
            and conversation.queue_id not in {q.id for q in assignee.queues}:
        raise InvalidAction(f"{assignee.name} is not a member of the queue {conversation.queue.name}.")
    _assigned(actor, conversation, assignee.id)
    return conversation


def _assigned(actor: User, conversation: Conversation, assignee_id: int | None) -> None:
    before = conversation.assignee_id
    conversation.assignee_id = assignee_id
    conversation.assigned_by_id, conversation.assigned_at = actor.id, utcnow()
    who = _name(actor)
    if assignee_id is None:
        line = f"{who} unassigned this conversation"
    elif assignee_id == actor.id:
        line = f"{who} took this conversation"
    else:
        line = f"{who} assigned this to {_name(db.session.get(User, assignee_id))}"
    record_event(conversation.id, "assign", line, actor, assignee_id=assignee_id, before=before)
    facts.synced(conversation)
    publish_change(conversation.id, "assign", user_ids=[before])


def transfer(actor: User | int, conversation_id: int, queue_id: int) -> Conversation:
    """Move to another queue; the assignee stays only if they are a member of it. Leaves a line in
    the trail. Raises `NotFound`, `InvalidAction` for no such queue, `NotAllowed` for a queue the
    agent is not a member of while `TRANSFER_TO_ANY_QUEUE` is off."""
    actor = get_user(actor)
    conversation = get_conversation(actor, conversation_id)
    queue = db.session.get(Queue, queue_id)
    if queue is None:
        raise InvalidAction("Choose a queue.")
    if queue.id == conversation.queue_id:
        return conversation
    if not may_transfer_to_any_queue(actor) and queue not in actor.queues:
        raise NotAllowed(f"You can transfer only to queues you are a member of; {queue.name} is not one of them.")
    before = conversation.queue.name if conversation.queue is not None else None
    before_id = conversation.queue_id
    heard_by = ([conversation.queue_id], [conversation.assignee_id])
    conversation.queue, conversation.queue_id = queue, queue.id
    line = f"{_name(actor)} transferred to {queue.name}" + (f" from {before}" if before else "")
    if conversation.assignee is not None and not conversation.assignee.has_role(Role.SUPERVISOR) \
            and queue not in conversation.assignee.queues:
        line += f" (unassigned from {_name(conversation.assignee)}, not a member)"
        conversation.assignee_id = None
    record_event(conversation.id, "transfer", line, actor, queue_id=queue.id, before=before_id,
                 before_name=before)
    sla.refresh(conversation)  # the new queue's policy and calendar
    facts.synced(conversation)
    publish_change(conversation.id, "transfer", queue_ids=heard_by[0], user_ids=heard_by[1])
    return conversation


def _note(author: User, conversation: Conversation, html: str, text: str) -> Message:
    """An internal note in the conversation's trail, by `author`."""
    note = Message(conversation_id=conversation.id, direction="note", author_id=author.id, html=html,
                   text=text, from_addr=author.name or author.email, subject=conversation.subject)
    db.session.add(note)
    db.session.flush()
    return note


def set_status(actor: User | int, conversation_id: int, status: str, confirm: bool = False) -> Conversation:
    """Set the status. Raises `NotFound`, `InvalidAction` for an unknown status, and `AskFirst` when a
    colleague set another status in the last `RECENT_STATUS_SECONDS` and `confirm` is not set."""
    if status not in STATUSES:
        raise InvalidAction("Choose open, pending, resolved or closed.")
    actor = get_user(actor)
    conversation = get_conversation(actor, conversation_id)
    if status == conversation.status:
        return conversation
    now = utcnow()
    if (not confirm and conversation.status_by_id not in (None, actor.id) and conversation.status_at is not None
            and now - conversation.status_at < timedelta(seconds=RECENT_STATUS_SECONDS)):
        raise AskFirst("status", f"{_name(conversation.status_by)} set the status to {conversation.status} "
                                 f"{ago(conversation.status_at, now)}.")
    record_event(conversation.id, "status", f"{_name(actor)} set the status to {status}", actor,
                 status=status, before=conversation.status)
    conversation.status = status
    conversation.status_by_id, conversation.status_at = actor.id, now
    if conversation.snoozed_until is not None or conversation.snoozed_by_id is not None:
        conversation.snoozed_until = conversation.snoozed_by_id = None  # a status set by hand ends a snooze
    sla.status_changed(conversation, now)
    facts.synced(conversation, now)
    publish_change(conversation.id, "status")
    return conversation


def add_note(author: User | int, conversation_id: int, body_html: str) -> Message:
    """An internal note: stored in the thread, never emailed. Raises `InvalidAction` when empty."""
    author = get_user(author)
    conversation = get_conversation(author, conversation_id)
    html = sanitize_html(body_html or "")
    text = html_to_text(html).strip()
    if not text:
        raise InvalidAction("Write the note first.")
    note = _note(author, conversation, html, text)
    publish_change(conversation.id, "note")
    return note
