"""The queues and agents a user can choose from: the queues they work (the inbox's queue filter,
New Mail's queue), the queues they may Transfer to and who could take a conversation (Assign).

The pick lists are rows read by prebuilt SQL (`ordered_columns`): no ORM objects to build.
"""
from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import Boolean, bindparam, select, text

from app.extensions import db
from app.inbox.access import get_user, may_transfer_to_any_queue, member_queue_ids
from app.models._types import ordered_columns
from app.models.auth import Queue, Role, User
from app.models.inbox import Conversation


def user_queues(user: User | int) -> list[Queue]:
    """The queues a user works (all queues for supervisors and admins), by name."""
    user = get_user(user)
    query = select(Queue).order_by(Queue.name)
    if not user.has_role(Role.SUPERVISOR):
        query = query.where(Queue.id.in_(member_queue_ids(user)))
    return list(db.session.scalars(query))


#: (id, name) of the queues an agent works, by name (supervisors and admins: `QUEUES_SQL`).
MY_QUEUES_SQL = ordered_columns(text("SELECT q.id, q.name FROM queues q JOIN queue_members m ON m.queue_id = q.id "
                                     "WHERE m.user_id = :user_id ORDER BY q.name"), "id name")


def queue_choices(user: User | int) -> list:
    """`user_queues` as (id, name) rows, for a queue filter: no ORM objects to build."""
    user = get_user(user)
    if user.has_role(Role.SUPERVISOR):
        return all_queue_choices()
    return db.session.execute(MY_QUEUES_SQL, {"user_id": user.id}).all()


#: (id, name) of every queue, by name.
QUEUES_SQL = ordered_columns(text("SELECT id, name FROM queues ORDER BY name"), "id name")


def all_queue_choices() -> list:
    """Every queue as (id, name) rows, by name."""
    return db.session.execute(QUEUES_SQL).all()


def transfer_choices(user: User | int, conversation: Conversation) -> list:
    """The Transfer list as (id, name) rows, by name: every queue, or (`TRANSFER_TO_ANY_QUEUE` off)
    the queues `user` works and the conversation's own."""
    user = get_user(user)
    if may_transfer_to_any_queue(user):
        return all_queue_choices()
    rows = queue_choices(user)
    if conversation.queue_id is not None and all(row[0] != conversation.queue_id for row in rows):
        rows = sorted([*rows, (conversation.queue_id, conversation.queue.name)], key=lambda row: row[1])
    return rows


#: Active users who could take a conversation: all of them, or (`_QUEUE`) its queue's members and
#: every supervisor and admin. SQL text: see `app.inbox.lists.INBOX_SQL`.
_ASSIGNABLE = "SELECT id, name, email FROM users WHERE active = :yes{} ORDER BY name"
_ASSIGNABLE_QUEUE = (" AND (id IN (SELECT user_id FROM queue_members WHERE queue_id = :queue_id) "
                     f"OR role IN ('{Role.SUPERVISOR.value}', '{Role.ADMIN.value}'))")
ASSIGNABLE_SQL = {queue: ordered_columns(text(_ASSIGNABLE.format(_ASSIGNABLE_QUEUE if queue else "")).bindparams(
    bindparam("yes", True, type_=Boolean())), "id name email") for queue in (False, True)}


def assignable_users(conversation: Conversation) -> list:
    """Active users who could take the conversation: its queue's members, then supervisors and admins,
    by name, as (id, name, email) rows."""
    queue = conversation.queue_id is not None
    return db.session.execute(ASSIGNABLE_SQL[queue], {"queue_id": conversation.queue_id} if queue else {}).all()


#: The inbox's Queue, Assignee and Address filters in one statement: ("agent", id, name) for active users by
#: name, ("address", id, address) for our addresses that are not archived, by address, ("queue", id, name) for
#: the queues the user works (`:all_queues`: every queue, for supervisors and admins), by name.
FILTER_CHOICES_SQL = ordered_columns(text(
    "SELECT * FROM (SELECT 'agent' AS kind, id, coalesce(nullif(name, ''), email) AS label FROM users "
    "WHERE active = :yes) AS agents "
    "UNION ALL SELECT * FROM (SELECT 'address', id, address FROM email_addresses WHERE archived_at IS NULL) AS ours "
    "UNION ALL SELECT * FROM (SELECT 'queue', id, name FROM queues WHERE :all_queues "
    "OR id IN (SELECT queue_id FROM queue_members WHERE user_id = :user_id)) AS worked "
    "ORDER BY 1, 3").bindparams(bindparam("yes", True, type_=Boolean()), bindparam("all_queues", type_=Boolean())),
    "kind id label")


def filter_choices(user: User | int) -> dict:
    """{"queues": [(id, name)], "agent_choices": [(id, name)], "address_choices": [(id, address)]} for the
    inbox's filters (the queues: `queue_choices`), in one statement."""
    user = get_user(user)
    out = {"queue_choices": [], "agent_choices": [], "address_choices": []}
    for kind, ident, label in db.session.execute(FILTER_CHOICES_SQL, {
            "all_queues": user.has_role(Role.SUPERVISOR), "user_id": user.id}):
        out[f"{kind}_choices"].append((ident, label))
    out["queues"] = [QueueChoice(*row) for row in out.pop("queue_choices")]
    return out


class QueueChoice(NamedTuple):
    """A queue of the Queue filter (as `queue_choices`' rows: `.id`, `.name`)."""
    id: int
    name: str
