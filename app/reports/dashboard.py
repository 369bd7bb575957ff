"""The live queue dashboard's figures: what is open now, who waits longest, who is signed in.

Read from the conversations (the inbox's own truth, so each figure's inbox link shows the same
conversations), the facts (when the customer last wrote and was last answered), the sessions
(signed in: an unexpired session) and the last hour's messages. The last hour's and today's figures count
conversations (with a customer's message, with an agent's reply), as the inbox's activity filters list them
(`InboxFilters.received_since` / `replied_since`). "Waiting": an open conversation
whose customer's last message has no agent reply after it. Breached (past a due time now) and At risk
(within the warning time of one) are the SLA's due times on the conversations, counted as the inbox's
Service level filter lists them (`app.runtime.sla.breached_now` / `at_risk_now`); shown once an SLA
policy exists (`sla_data`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from sqlalchemy import and_, distinct, func, or_, select

from app.extensions import db
from app.models.auth import Queue, User, UserSession, queue_members
from app.models.inbox import Conversation, Message
from app.models.reports import ConversationFacts as F
from app.models.sla import SlaPolicy
from app.runtime import sla
from app.web import start_of_day

#: The statuses that count against an agent's capacity (as routing counts them).
LOAD_STATUSES = ("open", "pending")


@dataclass
class QueueFigures:
    id: int
    name: str
    open: int = 0
    unassigned: int = 0
    waiting_since: datetime | None = None
    waiting_id: int | None = None
    breached: int = 0
    at_risk: int = 0
    members: int = 0
    signed_in: int = 0
    available: int = 0
    at_capacity: int = 0
    messages_in: int = 0  # conversations with a customer's message in the last hour
    replies_out: int = 0  # conversations with an agent's reply in the last hour


@dataclass
class AgentFigures:
    id: int
    name: str
    open: int = 0
    load: int = 0
    capacity: int = 0
    signed_in: bool = False
    waiting_since: datetime | None = None
    waiting_id: int | None = None
    replies_today: int = 0  # conversations the agent replied in today
    queues: list[str] = field(default_factory=list)
    queue_ids: list[int] = field(default_factory=list)

    @property
    def at_capacity(self) -> bool:
        return self.load >= self.capacity


@dataclass
class Dashboard:
    now: datetime
    queues: list[QueueFigures]
    agents: list[AgentFigures]
    sla_data: bool


_WAITING = and_(F.last_customer_message_at.is_not(None),
                or_(F.last_response_at.is_(None), F.last_response_at < F.last_customer_message_at))
_OPEN = and_(Conversation.status == "open", Conversation.merged_into_id.is_(None))


def _oldest_waiting() -> tuple[dict, dict]:
    """(per queue, per agent): group -> (since, conversation id) of the open conversation waiting longest
    (the lowest id among those waiting as long).

    One statement for both groupings: each waiting conversation numbered in its queue and among its agent's
    by how long it waits (window functions, which SQLite and PostgreSQL both have); the first of each."""
    order = (F.last_customer_message_at, Conversation.id)
    ranked = (select(Conversation.queue_id, Conversation.assignee_id, F.last_customer_message_at, Conversation.id,
                     func.row_number().over(partition_by=Conversation.queue_id, order_by=order).label("in_queue"),
                     func.row_number().over(partition_by=Conversation.assignee_id, order_by=order).label("of_agent"))
              .join(F, F.conversation_id == Conversation.id).where(_OPEN, _WAITING).subquery())
    per_queue, per_agent = {}, {}
    for queue_id, agent_id, since, cid, in_queue, of_agent in db.session.execute(
            select(ranked).where(or_(ranked.c.in_queue == 1, ranked.c.of_agent == 1))):
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=timezone.utc)
        if in_queue == 1 and queue_id is not None:
            per_queue[queue_id] = (since, cid)
        if of_agent == 1 and agent_id is not None:
            per_agent[agent_id] = (since, cid)
    return per_queue, per_agent


def dashboard(now: datetime, zone: str = "UTC") -> Dashboard:
    """Every queue's and every queue member's figures as of `now`; `zone`: whose "today" (replies today)."""
    queues = {q.id: QueueFigures(q.id, q.name) for q in db.session.scalars(select(Queue).order_by(Queue.name))}
    for qid, n_open, n_unassigned in db.session.execute(
            select(Conversation.queue_id, func.count(),
                   func.count().filter(Conversation.assignee_id.is_(None)))
            .where(_OPEN).group_by(Conversation.queue_id)):
        if qid in queues:
            queues[qid].open, queues[qid].unassigned = n_open, n_unassigned
    oldest_in_queue, oldest_of_agent = _oldest_waiting()
    for qid, (since, cid) in oldest_in_queue.items():
        if qid in queues:
            queues[qid].waiting_since, queues[qid].waiting_id = since, cid
    sla_data = db.session.scalar(select(SlaPolicy.id).limit(1)) is not None
    if sla_data:
        for qid, n_breached, n_at_risk in db.session.execute(
                select(Conversation.queue_id, func.count().filter(sla.breached_now(now)),
                       func.count().filter(sla.at_risk_now(now)))
                .where(Conversation.sla_due_at.is_not(None), Conversation.merged_into_id.is_(None))
                .group_by(Conversation.queue_id)):
            if qid in queues:
                queues[qid].breached, queues[qid].at_risk = n_breached, n_at_risk
    # The last hour's messages first (by the messages' time index), then their conversations' queues: joined
    # in one statement, a planner may walk every conversation instead.
    hour_ago = now - timedelta(hours=1)
    # (`conversation_id + 0`: grouped by a value, not by the column, so that no planner prefers the index by
    # conversation to the index by time.)
    conversation = (Message.conversation_id + 0).label("conversation")
    per_conversation = db.session.execute(
        select(conversation, func.count().filter(Message.direction == "in"),
               func.count().filter(Message.direction == "out", Message.author_id.is_not(None),
                                   Message.automatic.is_(None)))
        .where(Message.created_at >= hour_ago).group_by(conversation)).all()
    ids = [cid for cid, _i, _o in per_conversation if cid is not None]
    queue_of = {}
    for i in range(0, len(ids), 500):  # (a merged conversation is in no list: not counted)
        queue_of.update(db.session.execute(select(Conversation.id, Conversation.queue_id)
                                           .where(Conversation.id.in_(ids[i:i + 500]),
                                                  Conversation.merged_into_id.is_(None))).all())
    for cid, n_in, n_out in per_conversation:
        queue = queues.get(queue_of.get(cid))
        if queue is not None:
            queue.messages_in += n_in > 0
            queue.replies_out += n_out > 0

    # Agents: the active members of any queue, and anyone with conversations assigned.
    members = db.session.execute(select(queue_members.c.queue_id, queue_members.c.user_id)
                                 .join(User, User.id == queue_members.c.user_id).where(User.active.is_(True))).all()
    loads = dict(db.session.execute(select(Conversation.assignee_id, func.count())
                                    .where(Conversation.assignee_id.is_not(None),
                                           Conversation.status.in_(LOAD_STATUSES),
                                           Conversation.merged_into_id.is_(None))
                                    .group_by(Conversation.assignee_id)).all())
    user_ids = {uid for _q, uid in members} | set(loads)
    users = {u.id: u for u in db.session.scalars(select(User).where(User.id.in_(user_ids)))}
    signed_in = set(db.session.scalars(select(UserSession.user_id).where(UserSession.expires_at > now,
                                                                         UserSession.user_id.in_(user_ids))))
    agents = {uid: AgentFigures(uid, u.name or u.email, load=loads.get(uid, 0), capacity=u.email_capacity,
                                signed_in=uid in signed_in) for uid, u in users.items()}
    for qid, uid in members:
        if qid in queues and uid in agents:
            queue, agent = queues[qid], agents[uid]
            agent.queues.append(queue.name)
            agent.queue_ids.append(qid)
            queue.members += 1
            if agent.signed_in:
                queue.signed_in += 1
                if agent.at_capacity:
                    queue.at_capacity += 1
                else:
                    queue.available += 1
    for uid, n in db.session.execute(select(Conversation.assignee_id, func.count()).where(
            _OPEN, Conversation.assignee_id.in_(user_ids)).group_by(Conversation.assignee_id)):
        agents[uid].open = n
    for uid, (since, cid) in oldest_of_agent.items():
        if uid in agents:
            agents[uid].waiting_since, agents[uid].waiting_id = since, cid
    today = start_of_day(now, zone)
    for uid, n in db.session.execute(select(Message.author_id, func.count(distinct(Message.conversation_id)))
                                     .join(Conversation, Conversation.id == Message.conversation_id).where(
            Message.direction == "out", Message.automatic.is_(None), Message.author_id.in_(user_ids),
            Message.created_at >= today, Conversation.merged_into_id.is_(None)).group_by(Message.author_id)):
        agents[uid].replies_today = n
    return Dashboard(now, list(queues.values()), sorted(agents.values(), key=lambda a: a.name.lower()), sla_data)


#: The Dashboard's lists of a queue's agents (`agents_of`): "Signed in", "Available", "At capacity".
AGENT_LISTS = {"signed_in": "signed in", "available": "available", "at_capacity": "at capacity"}


def agents_of(board: Dashboard, queue_id: int, which: str) -> list[AgentFigures]:
    """The agents behind a queue's "Signed in" / "Available" / "At capacity" figure (`which`, one of
    `AGENT_LISTS`): its active members signed in, of those below capacity, of those at it."""
    members = [a for a in board.agents if queue_id in a.queue_ids and a.signed_in]
    if which == "available":
        return [a for a in members if not a.at_capacity]
    if which == "at_capacity":
        return [a for a in members if a.at_capacity]
    return members


def waited(since: datetime | None, now: datetime) -> str:
    """How long someone has waited, in words: "12 min", "3 h 5 min", "2 d 4 h"."""
    if since is None:
        return ""
    minutes = max(0, int((now - since).total_seconds() // 60))
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 24 * 60:
        return f"{minutes // 60} h {minutes % 60} min"
    return f"{minutes // (24 * 60)} d {minutes % (24 * 60) // 60} h"
