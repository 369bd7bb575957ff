"""What an agent does to a conversation: assign, transfer to a queue, set its status, add a note.

Each action checks that the user may see the conversation (`NotFound` otherwise) and raises
`InvalidAction` with the reason in the user's words; the views commit.

Transfer hands a conversation to the agents of another queue. With `TRANSFER_TO_ANY_QUEUE`
on (the default) an agent may move it to any queue, as escalating to a team one does not
belong to is what transfer is for; off, an agent may move it only to queues they are a
member of (supervisors and admins: any). Every transfer leaves an internal note in the
conversation's trail: who moved it, from which queue, to which, and when (the note's time).
"""
from __future__ import annotations

from app.extensions import db
from app.inbox.access import InvalidAction, NotAllowed, get_conversation, get_user, may_transfer_to_any_queue
from app.inbox.lists import STATUSES
from app.mail.html import html_to_text, sanitize_html, text_to_html
from app.models.auth import Queue, Role, User
from app.models.inbox import Conversation, Message


def assign(actor: User | int, conversation_id: int, assignee_id: int | None) -> Conversation:
    """Assign to a user (None: unassign). Raises `NotFound`, `InvalidAction` for an inactive user
    or an agent who is not a member of the conversation's queue."""
    actor = get_user(actor)
    conversation = get_conversation(actor, conversation_id)
    if assignee_id is None:
        conversation.assignee_id = None
        return conversation
    assignee = db.session.get(User, assignee_id)
    if assignee is None or not assignee.active:
        raise InvalidAction("Choose an active agent.")
    if conversation.queue_id is not None and not assignee.has_role(Role.SUPERVISOR) \
            and conversation.queue_id not in {q.id for q in assignee.queues}:
        raise InvalidAction(f"{assignee.name} is not a member of the queue {conversation.queue.name}.")
    conversation.assignee_id = assignee.id
    return conversation


def transfer(actor: User | int, conversation_id: int, queue_id: int) -> Conversation:
    """Move to another queue; the assignee stays only if they are a member of it. Leaves a note in
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
    conversation.queue = queue
    if conversation.assignee is not None and not conversation.assignee.has_role(Role.SUPERVISOR) \
            and queue not in conversation.assignee.queues:
        conversation.assignee_id = None
    who = actor.name or actor.email
    text = (f"{who} transferred this conversation from the queue {before} to the queue {queue.name}." if before
            else f"{who} transferred this conversation to the queue {queue.name}.")
    _note(actor, conversation, text_to_html(text), text)
    return conversation


def _note(author: User, conversation: Conversation, html: str, text: str) -> Message:
    """An internal note in the conversation's trail, by `author`."""
    note = Message(conversation_id=conversation.id, direction="note", author_id=author.id, html=html,
                   text=text, from_addr=author.name or author.email, subject=conversation.subject)
    db.session.add(note)
    db.session.flush()
    return note


def set_status(actor: User | int, conversation_id: int, status: str) -> Conversation:
    if status not in STATUSES:
        raise InvalidAction("Choose open, pending, resolved or closed.")
    conversation = get_conversation(actor, conversation_id)
    conversation.status = status
    return conversation


def add_note(author: User | int, conversation_id: int, body_html: str) -> Message:
    """An internal note: stored in the thread, never emailed. Raises `InvalidAction` when empty."""
    author = get_user(author)
    conversation = get_conversation(author, conversation_id)
    html = sanitize_html(body_html or "")
    text = html_to_text(html).strip()
    if not text:
        raise InvalidAction("Write the note first.")
    return _note(author, conversation, html, text)
