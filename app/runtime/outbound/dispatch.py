"""Dispatch: the send queue's jobs (`send-message-<id>`) and the waiting marks that coalesce a burst of Sends.

Everything this package keeps in Redis is written here: the jobs, the mark
`WAITING_KEY` of an address whose job is waiting, and their removal by a job that
took their messages over. The database stays the record of what is due.
"""
from __future__ import annotations

import logging

from flask import current_app
from redis.exceptions import RedisError
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job, JobStatus
from sqlalchemy import select

from app.extensions import db
from app.models._types import utcnow
from app.models.inbox import Message
from app.queues import get_queue, redis_connection
from app.runtime.outbound.states import LEASED_STATE, claimable
from app.transactions import outside_transaction

log = logging.getLogger(__name__)

SEND_QUEUE = "send"
SEND_JOB = "jobs.send.send_message"


def send_job_id(message_id: int) -> str:
    return f"send-message-{message_id}"


def job_timeout() -> int:
    # Shorter than the lease: RQ kills a stuck job before anyone else may claim its messages.
    return max(1, int(current_app.config["SEND_LEASE_SECONDS"] * 0.9))


#: "A send job of this address is waiting in the queue" (value: its message id). See `enqueue_send`.
WAITING_KEY = "pigeonhole:send:waiting:{address_id}"
#: How long that mark may outlive a job lost with Redis: the sweep leaves the address alone meanwhile.
WAITING_TTL_SECONDS = 60


def enqueue_send(message_id: int, *, address_id: int | None = None, stale_started: bool = False):
    """Enqueue the send job of a message (`send-message-<id>`); call after the commit.

    A pending job of that id makes this a no-op (returns None). A finished or failed
    job of that id (kept by RQ for a while), or a "queued" one that is no longer in the
    queue, is replaced; so is a "started" one when `stale_started` says its message's
    lease has expired (its worker died).

    `address_id` (a Send passes its address) coalesces a burst: while a send job of that
    address is still waiting in the queue, nothing is enqueued (returns None), because
    that job, once it starts, sends every message of its server that is due then, this
    one included. The mark (`WAITING_KEY`, set with NX) is removed by the job when it
    starts and by a job that claims its message, each before it looks for due
    messages again, so a message committed before the mark was seen is always found.
    A mark whose job was lost expires after `WAITING_TTL_SECONDS`; the sweep
    (`enqueue_due_messages`) then enqueues the address's due messages.
    """
    if address_id is None:
        return _enqueue_job(message_id, stale_started)
    connection = redis_connection()
    key = WAITING_KEY.format(address_id=address_id)
    if not connection.set(key, message_id, nx=True, ex=WAITING_TTL_SECONDS):
        return None  # the waiting job of this address will send it
    job = None
    try:
        job = _enqueue_job(message_id, stale_started)
    finally:
        if job is None:
            connection.delete(key)  # no job of ours is waiting: do not hold the others back
    return job


def _waiting_keys(address_ids) -> list[str]:
    """The waiting marks' keys of these addresses, each once."""
    return [WAITING_KEY.format(address_id=a) for a in sorted({a for a in address_ids if a is not None})]


def clear_waiting(address_ids) -> None:
    """Remove the waiting marks of these addresses (the caller looks for due messages next)."""
    keys = _waiting_keys(address_ids)
    if not keys:
        return
    try:
        redis_connection().delete(*keys)
    except RedisError:
        log.warning("could not clear the waiting marks of %s; they expire by themselves", keys, exc_info=True)


def _enqueue_job(message_id: int, stale_started: bool):
    return enqueue_send_queue_job(SEND_JOB, message_id, send_job_id(message_id), stale_started)


def enqueue_send_queue_job(func: str, row_id: int, job_id: str, stale_started: bool = False):
    """Enqueue `func(row_id)` on the send queue under `job_id`, unless that job is still pending.

    The rules of `enqueue_send` for its job: a finished, failed or lost job of that id is
    replaced, and so is a "started" one when `stale_started` says its lease has expired.
    """
    connection = redis_connection()
    queue = get_queue(SEND_QUEUE, connection)
    options = dict(job_id=job_id, unique=True, result_ttl=0, failure_ttl=24 * 3600, job_timeout=job_timeout())
    for _ in range(3):
        try:
            return queue.enqueue(func, row_id, **options)
        except DuplicateJobError:
            try:
                job = Job.fetch(job_id, connection=connection, serializer=queue.serializer)
                status = job.get_status(refresh=False)
            except NoSuchJobError:
                continue  # it just finished; enqueue again
            if status in (JobStatus.SCHEDULED, JobStatus.DEFERRED):
                return None
            if status == JobStatus.QUEUED and connection.lpos(queue.key, job_id) is not None:
                return None  # waiting in the queue (a "queued" job missing from it is a leftover: replace it)
            if status == JobStatus.STARTED and not stale_started:
                return None
            job.delete()
    return None


def enqueue_due_messages(limit: int = 1000) -> int:
    """Cron: enqueue the send job of every message that is due; returns how many were enqueued.

    Due: queued or retrying with `next_attempt_at` passed (also catches a job lost
    with Redis), or `sending` whose lease expired (its worker died). Queued and
    retrying messages of an address whose send job is waiting (`WAITING_KEY`) are
    left to that job.
    """
    now = utcnow()
    rows = db.session.execute(
        select(Message.id, Message.delivery_status, Message.address_id)
        .where(Message.direction == "out", claimable(now))
        .order_by(Message.next_attempt_at, Message.id).limit(limit)).all()
    db.session.rollback()  # no transaction open while we talk to Redis
    addresses = sorted({r.address_id for r in rows if r.address_id is not None})
    marks = redis_connection().mget(_waiting_keys(addresses)) if addresses else []
    waiting = {a for a, mark in zip(addresses, marks) if mark is not None}
    enqueued = 0
    for message_id, status, address_id in rows:
        if status != LEASED_STATE and address_id in waiting:
            continue
        if outside_transaction(enqueue_send, message_id, stale_started=status == LEASED_STATE) is not None:
            enqueued += 1
    return enqueued


def drop_jobs(message_ids: list[int], address_ids: list[int] = ()) -> None:
    """Remove the queued (not yet started) send jobs of messages we claimed: they would find nothing to do.

    Also removes the waiting marks of their addresses (see `enqueue_send`).
    """
    if not message_ids:
        return
    try:
        connection = redis_connection()
        queue = get_queue(SEND_QUEUE, connection)
        pipe = connection.pipeline(transaction=False)
        for message_id in message_ids:
            pipe.lrem(queue.key, 1, send_job_id(message_id))
        removed = pipe.execute()
        pipe = connection.pipeline(transaction=False)
        for message_id, count in zip(message_ids, removed):
            if count:
                pipe.delete(Job.key_for(send_job_id(message_id)))
        marks = _waiting_keys(address_ids)
        if marks:
            pipe.delete(*marks)
        pipe.execute()
    except RedisError:
        log.warning("could not remove the redundant send jobs; they will find nothing to do", exc_info=True)
