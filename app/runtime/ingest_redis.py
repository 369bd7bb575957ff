"""What ingest needs Redis for, after and around its commits (`app.runtime.ingest` stores the mail):

- `address_lock`: ingest serialised per address across workers (threading must see the previous
  message), a leased Redis lock;
- `enqueue_flows`: the flow steps of a committed batch, queued in one round trip;
- `queue_left_to_holder`: the job for an address's pending rows that other jobs left to the lock's holder;
- `redis_outage`: without Redis the mail is still stored; one warning per outage, not per batch, says
  what waits and the command that queues the missed flow steps.
"""
from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Sequence
from contextlib import ExitStack, contextmanager
from datetime import datetime, timedelta, timezone

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import select

from app.extensions import db
from app.models.inbound import InboundRaw, InboundStatus
from app.queues import enqueue, enqueue_jobs, job_waiting, redis_connection
from app.runtime.ingest_jobs import BATCH_MAX, flow_jobs, ingest_jobs
from app.runtime.leases import leased_lock

log = logging.getLogger("app.runtime.ingest")


def enqueue_flows(results: Sequence) -> None:
    """One Redis round trip for the whole batch: its flow steps in jobs of up to `BATCH_MAX` (`flow_jobs`).

    Without Redis the mail is stored and only its flow step waits: `redis_outage` says so once
    per outage, with the command that queues the missed steps later (`flow_steps_missing`).
    """
    steps = [(r.conversation_id, r.message_row_id) for r in results if r.flow and r.conversation_id is not None]
    if not steps:
        return
    try:
        enqueue_jobs("flows", flow_jobs(steps))
    except RedisError as exc:
        redis_outage.failed(exc)
        return
    except Exception:  # noqa: BLE001 - the mail is stored; the flow step is what is lost
        log.exception("could not enqueue the flow step for %d messages", len(steps))
        return
    redis_outage.ok()


class RedisOutage:
    """Says once per outage, not once per batch, that Redis is unavailable and what waits for it.

    Ingest goes on without Redis (the mail is stored; the per-address lock and the flow
    step are what is missing), so `flask mail ingest` over a thousand files, or a poller,
    would otherwise log the same error a thousand times. The warning names the command
    that queues the missed flow steps, from `MARGIN` before the outage was noticed: a batch
    being stored then, or flow jobs lost with a restarted Redis, are included, and the
    command skips messages whose flow ran.
    """

    MARGIN = timedelta(minutes=15)

    def __init__(self) -> None:
        self.noticed_at: datetime | None = None
        self._lock = threading.Lock()

    def failed(self, exc: Exception) -> None:
        with self._lock:
            if self.noticed_at is not None:
                return
            self.noticed_at = datetime.now(timezone.utc)
        reason = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        log.warning("Redis is unavailable (%s): mail is still stored, but without the per-address lock and its "
                    "flow step is not queued. Once Redis is back, queue the missed flow steps with: "
                    "flask mail requeue-flows --since %s", reason, self.since().isoformat())

    def ok(self) -> None:
        if self.noticed_at is None:
            return
        since = self.since()
        with self._lock:
            self.noticed_at = None
        log.info("Redis is available again; flow steps not queued meanwhile: flask mail requeue-flows --since %s",
                 since.isoformat())

    def since(self) -> datetime:
        return (self.noticed_at - self.MARGIN).replace(microsecond=0)


redis_outage = RedisOutage()


def _lock_name(address_id: int) -> str:
    return f"pigeonhole:ingest-address:{address_id}"


def queue_left_to_holder(address_id: int) -> None:
    """After an ingest of the address let its lock go: a job for the address's pending rows that no error
    holds back, which jobs that found the lock taken left to this one (`leave_to_holder`).

    Their rows were committed before their jobs looked at the lock, so before it was let go, and so
    before this query: none is missed. Rows whose own jobs still wait find them done. The job id is
    `ingest_jobs`' for those rows, enqueued once: a job of that id still waiting will see them when it
    runs; one that runs already (the job that left them, finishing) may have looked before, so then
    one more job, of an id of its own. Without Redis, cron's sweep finds the rows.
    """
    ids = list(db.session.scalars(select(InboundRaw.id).where(
        InboundRaw.status == InboundStatus.PENDING.value, InboundRaw.address_id == address_id,
        InboundRaw.error.is_(None)).order_by(InboundRaw.id).limit(BATCH_MAX)))
    if not ids:
        return
    func, args, job_id = ingest_jobs(ids)[0]
    options = {"result_ttl": 0, "failure_ttl": 24 * 3600}
    try:
        if enqueue("ingest", func, *args, job_id=job_id, **options) is None and not job_waiting("ingest", job_id):
            enqueue("ingest", func, *args, job_id=f"{job_id}-after-{uuid.uuid4().hex[:12]}", **options)
    except RedisError as exc:
        redis_outage.failed(exc)


@contextmanager
def address_lock(address_id: int, wait: float | None = None):
    """Serialise ingest per address across workers (threading must see the previous message).

    A Redis lock with a short lease renewed while this process lives (`INGEST_LOCK_LEASE_SECONDS`,
    `app.runtime.leases`): a killed worker frees it within the lease, not after minutes. Without
    Redis, or after waiting `wait` seconds (default `INGEST_LOCK_WAIT_SECONDS`), ingest proceeds
    unlocked (the dedupe constraint still prevents duplicates; two simultaneous first messages of
    one thread could then open two conversations); `redis_outage` says so once per outage. Yields
    whether to go on: False only with `wait=0` when another process holds the lock (the caller
    leaves the rows to it).
    """
    config = current_app.config
    with ExitStack() as stack:
        try:
            held = stack.enter_context(leased_lock(
                redis_connection(), _lock_name(address_id), lease=config["INGEST_LOCK_LEASE_SECONDS"],
                wait=config["INGEST_LOCK_WAIT_SECONDS"] if wait is None else wait))
        except RedisError as exc:
            redis_outage.failed(exc)
        else:
            redis_outage.ok()
            if held is None:
                if wait == 0:
                    yield False
                    return
                log.warning("ingest of address %s goes on unlocked: its lock stayed taken", address_id)
        yield True
