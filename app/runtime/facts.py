"""The reports' facts of a conversation (`ConversationFacts`), kept as things happen.

One writer, called where each thing happens and part of the caller's transaction (the caller
commits): `customer_wrote` (ingest stored a customer's message), `synced` (routing, assignment,
transfer or a status change: queue, agent, intent and status copied from the conversation;
resolving stamps `resolved_at`, an open after a resolve counts a reopen), `agent_replied` (an
agent's reply was queued: first and last response, reply count), `sla_judged` (the SLA found a
target met or breached: `app.runtime.sla`), `merged` and `split` (merge and split moved messages).
`rebuild` computes a row from the messages and is used by `flask reports backfill`
(`app.runtime.backfill`, which adds the SLA's judgement of the history) and after a merge or split,
never on a report's path.

The facts' **version** (`version()`, a counter in Redis) goes up after every commit that changed a row of
the facts or of `conversation_tags`, or deleted a conversation, queue, user or address (whose rows the
database then changes by cascade): whatever the writer, since a session listener sees the ORM's flushes and
its bulk statements on those tables. The reports cache what they computed under it (`app.reports.figures`).
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone

from redis.exceptions import RedisError
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from app.extensions import db
from app.models._types import utcnow
from app.models.auth import Queue, User
from app.models.channels import EmailAddress
from app.models.inbox import Conversation, Message, customer_written
from app.models.organize import ConversationTag
from app.models.reports import ConversationFacts
from app.queues import redis_connection

#: The statuses that count as resolved.
RESOLVED = ("resolved", "closed")
#: The SLA's targets, each with a `<target>_breached` column: None (no SLA measured it), False (met), True.
SLA_TARGETS = ("first_response", "next_response", "resolution")


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=timezone.utc) if value is not None and value.tzinfo is None else value


def measure(facts: ConversationFacts) -> ConversationFacts:
    """Keep the two durations the reports read in step with their times (whole seconds)."""
    start = _aware(facts.first_customer_message_at or facts.created_at)
    facts.first_response_seconds = (round((_aware(facts.first_response_at) - start).total_seconds())
                                    if facts.first_response_at is not None and start is not None else None)
    facts.resolution_seconds = (round((_aware(facts.resolved_at) - _aware(facts.created_at)).total_seconds())
                                if facts.resolved_at is not None and facts.created_at is not None else None)
    return facts


def _row(conversation: Conversation) -> ConversationFacts:
    facts = db.session.get(ConversationFacts, conversation.id)
    if facts is None:
        facts = ConversationFacts(conversation_id=conversation.id, created_at=conversation.created_at or utcnow(),
                                  status=conversation.status or "open", reopened_count=0, reply_count=0,
                                  messages_in=0)
        db.session.add(facts)
    return facts


def synced(conversation: Conversation, now: datetime | None = None) -> ConversationFacts:
    """Copy queue, agent, intent, address and status; stamp or clear `resolved_at` as the status says."""
    now = now or utcnow()
    facts = _row(conversation)
    facts.queue_id, facts.address_id, facts.intent = conversation.queue_id, conversation.address_id, conversation.intent
    if conversation.assignee_id is not None:
        facts.agent_id = conversation.assignee_id  # the handling agent stays after an unassign
    status = conversation.status or "open"
    if status in RESOLVED and facts.status not in RESOLVED:
        facts.resolved_at = now
    elif status not in RESOLVED and facts.status in RESOLVED:
        facts.resolved_at = None
        facts.reopened_count = (facts.reopened_count or 0) + 1
    facts.status = status
    return measure(facts)


def customer_wrote(conversation: Conversation, at: datetime) -> ConversationFacts:
    """A customer's message was stored in `conversation` (after any reopen was applied to it)."""
    facts = synced(conversation, at)
    if facts.first_customer_message_at is None:
        facts.first_customer_message_at = at
    facts.last_customer_message_at = at
    facts.messages_in = (facts.messages_in or 0) + 1
    return measure(facts)


def agent_replied(conversation_id: int, agent_id: int, at: datetime) -> ConversationFacts | None:
    """An agent's reply was queued in the conversation."""
    conversation = db.session.get(Conversation, conversation_id)
    if conversation is None:
        return None
    facts = synced(conversation, at)
    facts.agent_id = agent_id
    if facts.first_response_at is None and facts.first_customer_message_at is not None:
        facts.first_response_at = at  # a conversation an agent started has no first response
    facts.last_response_at = at
    facts.reply_count = (facts.reply_count or 0) + 1
    return measure(facts)


def sla_judged(conversation: Conversation, target: str, breached: bool) -> None:
    """The SLA judged one of the conversation's targets (`SLA_TARGETS`): met (False) or breached (True).

    A breach stands: a target met later (the next response of another cycle, a resolution after a
    reopen) never turns a True back to False; a later breach turns a False to True."""
    if conversation.id is None:
        return  # not stored yet: nothing was due
    facts = _row(conversation)
    column = f"{target}_breached"
    if breached or getattr(facts, column) is None:
        setattr(facts, column, bool(breached))


def combined_breach(*values: bool | None) -> bool | None:
    """One target's judgement over several conversations (a merge): breached if any was, met if any was
    measured, None if none was."""
    known = [v for v in values if v is not None]
    return any(known) if known else None


def merged(source: Conversation, target: Conversation) -> ConversationFacts:
    """`source` was merged into `target`: its messages count in the target's row (rebuilt from them, the
    two judgements of each SLA target combined), and the merged one leaves the reports."""
    gone = db.session.get(ConversationFacts, source.id)
    facts = rebuild(target)
    if gone is not None:
        for target_name in SLA_TARGETS:
            column = f"{target_name}_breached"
            setattr(facts, column, combined_breach(getattr(facts, column), getattr(gone, column)))
        facts.reopened_count = (facts.reopened_count or 0) + (gone.reopened_count or 0)
        db.session.delete(gone)
    return facts


def split(source: Conversation, new: Conversation) -> None:
    """A message of `source` moved to the `new` conversation: both rows recomputed from their messages
    (the new one has no SLA judgement yet; the source keeps its own)."""
    rebuild(source)
    rebuild(new)


def rebuild(conversation: Conversation) -> ConversationFacts:
    """The row recomputed from the conversation and its messages (the backfill). `resolved_at` is the
    status's time when resolved (`status_at`, else the last message's time)."""
    facts = _row(conversation)
    facts.created_at = conversation.created_at
    facts.queue_id, facts.address_id, facts.intent = conversation.queue_id, conversation.address_id, conversation.intent
    facts.status = conversation.status or "open"
    inbound = db.session.execute(
        select(func.min(Message.created_at), func.max(Message.created_at), func.count())
        .where(Message.conversation_id == conversation.id, customer_written())).one()
    facts.first_customer_message_at, facts.last_customer_message_at, facts.messages_in = inbound
    agent_reply = (Message.conversation_id == conversation.id, Message.direction == "out",
                   Message.author_id.is_not(None), Message.automatic.is_(None))
    facts.last_response_at, facts.reply_count = db.session.execute(
        select(func.max(Message.created_at), func.count()).where(*agent_reply)).one()
    facts.first_response_at = None if facts.first_customer_message_at is None else db.session.scalar(
        select(func.min(Message.created_at)).where(*agent_reply,
                                                   Message.created_at >= facts.first_customer_message_at))
    last_author = db.session.scalar(
        select(Message.author_id).where(Message.conversation_id == conversation.id, Message.direction == "out",
                                        Message.author_id.is_not(None))
        .order_by(Message.created_at.desc()).limit(1))
    facts.agent_id = conversation.assignee_id or last_author
    facts.resolved_at = ((conversation.status_at or conversation.last_message_at)
                         if facts.status in RESOLVED else None)
    return measure(facts)


#: The Redis key of the facts' version (see the module's docstring).
VERSION_KEY = "reports:facts-version"
#: Rows whose change (any) changes what a report reads, and rows whose deletion does (by cascade).
_WATCHED = (ConversationFacts, ConversationTag)
_DELETIONS = (Conversation, Queue, User, EmailAddress)
_TABLES = frozenset(m.__table__.name for m in _WATCHED)
_DELETION_TABLES = frozenset(m.__table__.name for m in _DELETIONS)
#: The mark, in a session's `info`, of a transaction that changed what the reports read.
_CHANGED = "reports_facts_changed"
log = logging.getLogger(__name__)


def version() -> int | None:
    """The facts' version now; None when Redis does not answer (then nothing may be cached)."""
    try:
        return int(redis_connection(timeout=1.0).get(VERSION_KEY) or 0)
    except RedisError:
        return None


def _changed(session: Session) -> None:
    session.info[_CHANGED] = True


@event.listens_for(Session, "after_flush")
def _flushed(session: Session, _context) -> None:
    if (any(isinstance(row, _WATCHED) for row in (*session.new, *session.dirty, *session.deleted))
            or any(isinstance(row, _DELETIONS) for row in session.deleted)):
        _changed(session)


@event.listens_for(Session, "do_orm_execute")
def _executed(state) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        table = getattr(state.statement, "table", None)
        name = getattr(table, "name", None)
        if name in _TABLES or (state.is_delete and name in _DELETION_TABLES):
            _changed(state.session)


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    """After the COMMIT (not a savepoint's release) of a transaction that changed the facts: the version moves on.
    Any session, once per transaction. Should Redis not answer, the reports' cache (in the same Redis) is not
    read either; a change it missed while it came back is bounded by the cache's lifetime."""
    if session.get_nested_transaction() is not None or not session.info.pop(_CHANGED, False):
        return
    try:
        redis_connection(timeout=1.0).incr(VERSION_KEY)
    except RedisError as exc:
        if not _outage["down"]:  # once per outage, at debug: /healthz, Ops and ingest say Redis is down
            log.debug("the reports' facts changed but Redis did not answer (%s); cached reports age out", exc)
        _outage["down"] = True
    else:
        _outage["down"] = False


#: Whether the last version bump found Redis down (its outage is logged once).
_outage = {"down": False}


@event.listens_for(Session, "after_soft_rollback")
def _rolled_back(session: Session, previous_transaction) -> None:
    if not previous_transaction.nested:
        session.info.pop(_CHANGED, None)  # (a savepoint's rollback keeps the mark: one change too many is harmless)
