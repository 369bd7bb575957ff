"""Who may see what in the workspace, and the two errors every workspace service raises.

A supervisor or admin sees every conversation; an agent sees those assigned to them and
those of the queues they are a member of. Anything else is `NotFound` (never "forbidden"),
so an agent cannot even learn that a conversation, message or attachment of another queue
exists.
"""
from __future__ import annotations

from flask import current_app
from sqlalchemy import or_, select

from app.blobs import BlobNotFound, blob_store
from app.extensions import db
from app.models.auth import Role, User, queue_members
from app.models.inbox import Attachment, Conversation, Message


class NotFound(LookupError):
    """No such thing, or the user may not see it."""


class InvalidAction(ValueError):
    """A request that cannot be carried out; the message says why, in the user's words."""


class NotAllowed(InvalidAction):
    """A request this user may not make (the views answer 403); the message says why."""


def get_user(user_or_id: User | int) -> User:
    """The user (services take a `User` or its id); raises `NotFound`."""
    if isinstance(user_or_id, User):
        return user_or_id
    user = db.session.get(User, user_or_id)
    if user is None:
        raise NotFound("user")
    return user


def member_queue_ids(user: User):
    """A SELECT of the ids of the queues `user` is a member of."""
    return select(queue_members.c.queue_id).where(queue_members.c.user_id == user.id)


def visibility_filter(user: User):
    """A WHERE clause for the conversations `user` may see (None: all of them)."""
    if user.has_role(Role.SUPERVISOR):
        return None
    return or_(Conversation.assignee_id == user.id, Conversation.queue_id.in_(member_queue_ids(user)))


#: The agent rule of `visibility_filter`, in SQL over `conversations` (parameter `user_id`).
VISIBLE_SQL = "({c}assignee_id = :user_id OR {c}queue_id IN (SELECT queue_id FROM queue_members WHERE user_id = :user_id))"


def can_see(user: User, conversation: Conversation) -> bool:
    if user.has_role(Role.SUPERVISOR) or conversation.assignee_id == user.id:
        return True
    if conversation.queue_id is None:
        return False
    return db.session.execute(select(queue_members.c.queue_id).where(
        queue_members.c.user_id == user.id, queue_members.c.queue_id == conversation.queue_id)).first() is not None


def may_transfer_to_any_queue(user: User) -> bool:
    """Whether `user` may Transfer to queues they are not a member of: supervisors and admins
    always, agents while `TRANSFER_TO_ANY_QUEUE` is on."""
    return bool(current_app.config["TRANSFER_TO_ANY_QUEUE"]) or user.has_role(Role.SUPERVISOR)


def get_conversation(user: User | int, conversation_id: int) -> Conversation:
    """The conversation if `user` may see it; raises `NotFound` otherwise."""
    user = get_user(user)
    conversation = db.session.get(Conversation, conversation_id)
    if conversation is None or not can_see(user, conversation):
        raise NotFound("conversation")
    return conversation


def get_message(user: User | int, message_id: int) -> Message:
    message = db.session.get(Message, message_id)
    if message is None or message.conversation_id is None:
        raise NotFound("message")
    get_conversation(user, message.conversation_id)
    return message


def get_attachment(user: User | int, attachment_id: int) -> Attachment:
    """An attachment of a message the user may see; raises `NotFound`."""
    attachment = db.session.get(Attachment, attachment_id)
    if attachment is None:
        raise NotFound("attachment")
    get_message(user, attachment.message_id)
    return attachment


def attachment_bytes(attachment: Attachment) -> bytes:
    try:
        return blob_store().get(attachment.sha256)
    except BlobNotFound:
        raise NotFound("attachment content") from None
