"""The jobs of ingest: which RQ jobs a batch of arrivals and of flow steps becomes (deterministic ids, batches
of up to `BATCH_MAX`), and which flow steps are still owed (a stored message without its `FlowRun`), for the
cron sweep and `flask mail requeue-flows`. Storing the mail itself is `app.runtime.ingest`.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

from sqlalchemy import or_, select

from app.extensions import db
from app.models.flows import FlowRun
from app.models.inbox import Conversation, Message

#: Classifications of inbound mail that no flow runs for.
NO_FLOW = ("auto_reply", "bounce", "feedback")

#: At most this many arrivals in one ingest job, and flow steps in one flow job. A job of a burst
#: costs RQ's bookkeeping (a dozen Redis round trips) and one commit once, not once per message,
#: and still ends within a second or so, so a second worker finds the next batch waiting.
BATCH_MAX = 50


def _chunks(values: Sequence, size: int = BATCH_MAX) -> list[Sequence]:
    return [values[i:i + size] for i in range(0, len(values), size)]


def ingest_jobs(raw_ids: Sequence[int]) -> list[tuple[str, tuple, str]]:
    """The ingest jobs of committed pending rows, for `app.queues.enqueue_jobs`, with deterministic ids.

    One row: `jobs.ingest.ingest_raw(id)` as `ingest-raw-<id>` (the id cron's sweep uses too).
    Several: `jobs.ingest.ingest_raws([ids])` per `BATCH_MAX`, as `ingest-raws-<first>-<last>`.
    """
    return [("jobs.ingest.ingest_raw", (chunk[0],), f"ingest-raw-{chunk[0]}") if len(chunk) == 1 else
            ("jobs.ingest.ingest_raws", (list(chunk),), f"ingest-raws-{chunk[0]}-{chunk[-1]}")
            for chunk in _chunks(list(raw_ids))]


def flow_jobs(steps: Sequence[tuple[int, int]]) -> list[tuple[str, tuple, str]]:
    """The flow jobs of (conversation id, message id) steps, like `ingest_jobs`: `jobs.flows.run_flow`
    as `flow-message-<id>` for one, `jobs.flows.run_flows` as `flow-messages-<first>-<last>` for several."""
    return [("jobs.flows.run_flow", tuple(chunk[0]), f"flow-message-{chunk[0][1]}") if len(chunk) == 1 else
            ("jobs.flows.run_flows", ([list(step) for step in chunk],),
             f"flow-messages-{chunk[0][1]}-{chunk[-1][1]}")
            for chunk in _chunks(list(steps))]


def flow_steps_missing(since: datetime, address_id: int | None = None) -> list[tuple[int, int]]:
    """(conversation id, message id), oldest first, of messages stored since then whose flow step never ran.

    The messages `ingest_redis.enqueue_flows` queues a step for (customer mail in a conversation, not an
    automatic reply, bounce or complaint) that have no `FlowRun`: their job was never queued
    (Redis was down) or was lost with Redis. A job still waiting in the queue looks the same;
    enqueue with the deterministic id and `enqueue_once` leaves it alone.
    """
    ran = select(FlowRun.id).where(FlowRun.message_id == Message.id).exists()
    query = (select(Message.conversation_id, Message.id)
             .where(Message.direction == "in", Message.conversation_id.is_not(None), Message.created_at >= since,
                    or_(Message.classification.is_(None), Message.classification.not_in(NO_FLOW)), ~ran)
             .order_by(Message.created_at, Message.id))
    if address_id is not None:
        query = query.where(Message.address_id == address_id)
    return [(conversation_id, message_id) for conversation_id, message_id in db.session.execute(query)]


def flow_steps_after(message_id: int, limit: int) -> list[tuple[int, int]]:
    """(conversation id, message id) of up to `limit` flow steps still owed for messages stored after
    `message_id` (higher ids), oldest first: what a flow job of a burst drains after its own steps.

    Their own jobs wait behind this one and find them done. On PostgreSQL the messages are locked
    `FOR UPDATE SKIP LOCKED`, so two flow jobs draining at the same moment take different steps
    (a step another transaction holds is left to it); SQLite's one writer runs flow jobs one at a
    time anyway, and ignores the clause.
    """
    if limit <= 0:
        return []
    ran = select(FlowRun.id).where(FlowRun.message_id == Message.id).exists()
    query = (select(Message.conversation_id, Message.id)
             .where(Message.id > message_id, Message.direction == "in", Message.conversation_id.is_not(None),
                    or_(Message.classification.is_(None), Message.classification.not_in(NO_FLOW)), ~ran)
             .order_by(Message.id).limit(limit).with_for_update(skip_locked=True, of=Message))
    return [(conversation_id, message_id) for conversation_id, message_id in db.session.execute(query)]


def free_flow_steps(steps: Sequence[Sequence[int]]) -> list[Sequence[int]]:
    """The (conversation id, message id) steps no other flow job holds, taken for this transaction.

    PostgreSQL: their messages locked `FOR UPDATE SKIP LOCKED`, in id order; a step whose message
    another transaction holds is being run by a flow job draining it, so this one leaves it (waiting
    for it would only idle a worker: if that job fails, the step stays owed and cron's sweep queues
    it). SQLite: every step (its one writer runs flow jobs one at a time).
    """
    if not steps or db.session.get_bind().dialect.name != "postgresql":
        return list(steps)
    free = set(db.session.scalars(select(Message.id).where(Message.id.in_([m for _c, m in steps]))
                                  .order_by(Message.id).with_for_update(skip_locked=True, of=Message)))
    return [step for step in steps if step[1] in free]


def stale_flow_steps(older_than_seconds: int, window_hours: int, limit: int = 500) -> list[tuple[int, int]]:
    """Like `flow_steps_missing`, for cron's sweep: messages stored in the last `window_hours`, more
    than `older_than_seconds` ago, whose flow never ran (its job died with its worker, or with Redis).

    The `FlowRun` a flow writes is the "done" mark; a flow-eligible message without one is pending.
    Found through the conversations active in the window (`ix_conversations_last_id`), so the sweep
    reads recent rows only, not the whole message table.
    """
    now = datetime.now(timezone.utc)
    since, before = now - timedelta(hours=window_hours), now - timedelta(seconds=older_than_seconds)
    active = select(Conversation.id).where(Conversation.last_message_at >= since)
    ran = select(FlowRun.id).where(FlowRun.message_id == Message.id).exists()
    query = (select(Message.conversation_id, Message.id)
             .where(Message.conversation_id.in_(active), Message.direction == "in",
                    Message.created_at >= since, Message.created_at < before,
                    or_(Message.classification.is_(None), Message.classification.not_in(NO_FLOW)), ~ran)
             .order_by(Message.id).limit(limit))
    return [(conversation_id, message_id) for conversation_id, message_id in db.session.execute(query)]
