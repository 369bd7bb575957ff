"""Merge two conversations of the same customer, and split one message into a conversation of its own.

Merge moves every message, draft and trail line of the merged conversation into the target,
where the thread reads in time order (the two threads interleave), adds its tags to the
target's, and leaves the merged one closed with `merged_into_id` set: its page leads to the
target, and mail that threads to it (its token, its Message-IDs) lands in the target
(`app.runtime.threading`). Split moves one message to a new conversation of the same
customer, address and queue, with that message's subject. Both leave lines in the trails
of the two conversations; the reports' facts of both are recomputed from their messages (a merged
conversation leaves the reports: `app.runtime.facts.merged`). Services raise `NotFound` / `InvalidAction`; the views commit.
"""
from __future__ import annotations

from sqlalchemy import func, select, text, update

from app.extensions import db
from app.inbox.access import VISIBLE_SQL, InvalidAction, get_conversation, get_message, get_user
from app.mail.tokens import new_conversation_token
from app.models._types import utcnow
from app.models.auth import Role, User
from app.models.inbox import Conversation, Draft, Message
from app.models.organize import ConversationEvent
from app.runtime import facts, sla
from app.runtime.tags import set_tags
from app.runtime.trail import actor_name, record_event


def _label(conversation: Conversation) -> str:
    return f"“{conversation.subject or '(no subject)'}” (#{conversation.id})"


#: The customer's other conversations, not merged, newest first; `{visible}`: `VISIBLE_SQL` or TRUE.
_CANDIDATES = ("SELECT id, subject, status FROM conversations WHERE contact_id = :contact_id AND id <> :conversation_id "
               "AND merged_into_id IS NULL AND {visible} ORDER BY last_message_at DESC LIMIT :limit")
CANDIDATES_SQL = {everyone: text(_CANDIDATES.format(visible="1 = 1" if everyone else VISIBLE_SQL.format(c="")))
                  for everyone in (False, True)}


def merge_candidates(user: User | int, conversation) -> list:
    """The customer's other conversations the user may see and merge this one into (`conversation`: a
    `Conversation` or the page's `ConversationView`), newest first, as (id, subject, status) rows."""
    user = get_user(user)
    return db.session.execute(CANDIDATES_SQL[user.has_role(Role.SUPERVISOR)], {
        "contact_id": conversation.contact_id, "conversation_id": conversation.id, "user_id": user.id,
        "limit": 20}).all()


def merge(actor: User | int, source_id: int, target_id: int) -> Conversation:
    """Merge conversation `source_id` into `target_id`; returns the target. Raises `NotFound` (either
    not visible), `InvalidAction` (the same one, another customer's, already merged)."""
    actor = get_user(actor)
    source = get_conversation(actor, source_id)
    target = get_conversation(actor, target_id)
    if source.id == target.id:
        raise InvalidAction("Choose another conversation to merge with.")
    if source.contact_id != target.contact_id:
        raise InvalidAction("Only conversations of the same customer can be merged.")
    if source.merged_into_id is not None or target.merged_into_id is not None:
        raise InvalidAction("That conversation was already merged into another one.")
    who = actor_name(actor)
    for model in (Message, Draft, ConversationEvent):
        db.session.execute(update(model).where(model.conversation_id == source.id)
                           .values(conversation_id=target.id).execution_options(synchronize_session=False))
    set_tags(target, [*(target.tags or []), *(source.tags or [])])
    if source.last_message_at and (target.last_message_at is None or source.last_message_at > target.last_message_at):
        target.last_message_at = source.last_message_at
    if target.status != "open" and source.status == "open":
        target.status = "open"
    record_event(target.id, "merge", f"{who} merged {_label(source)} into this conversation", actor,
                 merged=source.id)
    waits = [w for w in (source.sla_waiting_since, target.sla_waiting_since) if w is not None]
    target.sla_waiting_since = min(waits) if waits else None  # the customer's oldest unanswered message
    if target.first_response_at is None or (source.first_response_at and
                                            source.first_response_at < target.first_response_at):
        target.first_response_at = source.first_response_at or target.first_response_at
    source.merged_into_id = target.id
    source.status = "closed"
    source.snoozed_until = source.snoozed_by_id = None
    set_tags(source, [])
    record_event(source.id, "merge", f"{who} merged this conversation into {_label(target)}", actor,
                 into=target.id)
    sla.refresh(source)  # closed: no due times
    sla.refresh(target)
    facts.merged(source, target)
    db.session.flush()
    db.session.expire(target, ["messages"])
    return target


def split(actor: User | int, message_id: int) -> Conversation:
    """Move one message to a new conversation of the same customer; returns the new conversation.
    Raises `NotFound`, `InvalidAction` (a note, or the conversation's only message)."""
    actor = get_user(actor)
    message = get_message(actor, message_id)
    if message.direction == "note":
        raise InvalidAction("An internal note stays in its conversation.")
    source = get_conversation(actor, message.conversation_id)
    others = db.session.scalar(select(func.count()).select_from(Message).where(
        Message.conversation_id == source.id, Message.id != message.id, Message.direction != "note"))
    if not others:
        raise InvalidAction("This is the conversation's only message: there is nothing to split it from.")
    now = utcnow()
    new = Conversation(address_id=source.address_id, contact_id=source.contact_id, token=new_conversation_token(),
                       subject=(message.subject or source.subject or "")[:2000], status="open",
                       queue_id=source.queue_id, assignee_id=source.assignee_id, priority=source.priority,
                       session_key=source.session_key, created_at=message.created_at,
                       last_message_at=message.created_at)
    db.session.add(new)
    db.session.flush()
    set_tags(new, list(source.tags or []))
    if message.direction == "in":
        sla.customer_wrote(new, message.created_at)
    else:
        sla.refresh(new)
    message.conversation_id = new.id
    db.session.flush()
    source.last_message_at = db.session.scalar(select(func.max(Message.created_at)).where(
        Message.conversation_id == source.id, Message.direction != "note")) or source.last_message_at
    facts.split(source, new)
    who = actor_name(actor)
    record_event(source.id, "split", f"{who} split a message from {message.from_addr or 'us'} into {_label(new)}",
                 actor, message_id=message.id, into=new.id, when=now)
    record_event(new.id, "split", f"{who} split this message from {_label(source)}", actor,
                 message_id=message.id, source=source.id, when=now)
    db.session.expire(source, ["messages"])
    return new
