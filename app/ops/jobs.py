"""Ops › Jobs: each queue's figures, the workers and what they run, and the failed jobs with Requeue.

Read from RQ's own registries in Redis (the failed registry keeps a failed job with its traceback
for `FAILED_JOB_TTL_SECONDS`). Jobs take ids, never objects or secrets (`app.queues`), so their
arguments may be shown to admins. Requeue puts a failed job back at the end of its queue, under
its id, as RQ's `requeue` does; a job id that is no longer in the registry is a `LookupError`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job
from rq.registry import FailedJobRegistry, StartedJobRegistry

from app.queues import QUEUE_NAMES, get_queue, live_workers, redis_connection

#: How many failed jobs of each queue the page lists (newest first).
FAILED_LIMIT = 50


@dataclass(frozen=True)
class QueueFigures:
    name: str
    waiting: int
    oldest_age_seconds: float
    running: int
    failed: int
    workers: int


@dataclass(frozen=True)
class WorkerRow:
    name: str
    hostname: str
    pid: int | None
    queues: list[str]
    state: str
    current_job: str | None
    last_heartbeat: datetime | None
    done: int
    failed: int


@dataclass(frozen=True)
class FailedJob:
    id: str
    queue: str
    call: str
    error: str
    traceback: str
    enqueued_at: datetime | None
    ended_at: datetime | None


def _connection():
    return redis_connection(timeout=current_app.config["REDIS_HEALTH_TIMEOUT"])


def queue_figures() -> list[QueueFigures]:
    conn = _connection()
    listening: dict[str, int] = {name: 0 for name in QUEUE_NAMES}
    for worker in live_workers(conn):
        for name in worker.queue_names():
            if name in listening:
                listening[name] += 1
    now, rows = time.time(), []
    for name in QUEUE_NAMES:
        queue = get_queue(name, connection=conn)
        first = queue.get_job_ids(0, 1)
        job = queue.fetch_job(first[0]) if first else None
        age = max(0.0, now - job.enqueued_at.timestamp()) if job is not None and job.enqueued_at else 0.0
        rows.append(QueueFigures(name, queue.count, round(age, 1), StartedJobRegistry(queue=queue).count,
                                 FailedJobRegistry(queue=queue).count, listening[name]))
    return rows


def workers() -> list[WorkerRow]:
    rows = []
    for worker in sorted(live_workers(_connection()), key=lambda w: w.name):
        job = worker.get_current_job()
        rows.append(WorkerRow(worker.name, worker.hostname or "", worker.pid, worker.queue_names(),
                              worker.get_state(), _describe_call(job) if job else None, worker.last_heartbeat,
                              worker.successful_job_count, worker.failed_job_count))
    return rows


def failed_jobs(limit: int = FAILED_LIMIT) -> list[FailedJob]:
    """The newest failed jobs of every queue (each queue's newest `limit`), newest first."""
    conn, found = _connection(), []
    for name in QUEUE_NAMES:
        registry = FailedJobRegistry(queue=get_queue(name, connection=conn))
        ids = registry.get_job_ids(0, -1)[-limit:]
        for job in Job.fetch_many(ids, connection=conn, serializer=registry.serializer):
            if job is None:
                continue
            result = job.latest_result()
            trace = (result.exc_string if result is not None else None) or ""
            last = next((line for line in reversed(trace.strip().splitlines()) if line.strip()), "")
            found.append(FailedJob(job.id, name, _describe_call(job), last[:300] or "failed (no error recorded)",
                                   trace[-4000:], job.enqueued_at, job.ended_at))
    found.sort(key=lambda j: j.ended_at.timestamp() if j.ended_at else 0, reverse=True)
    return found


def requeue(queue_name: str, job_id: str) -> None:
    """Put a failed job back on its queue; LookupError when it is not (or no longer) in the failed registry."""
    if queue_name not in QUEUE_NAMES:
        raise LookupError(queue_name)
    registry = FailedJobRegistry(queue=get_queue(queue_name, connection=_connection()))
    try:
        registry.requeue(job_id)
    except (InvalidJobOperation, NoSuchJobError) as exc:
        raise LookupError(job_id) from exc


def requeue_all(queue_name: str) -> int:
    """Requeue every failed job of a queue; how many went back."""
    if queue_name not in QUEUE_NAMES:
        raise LookupError(queue_name)
    registry = FailedJobRegistry(queue=get_queue(queue_name, connection=_connection()))
    count = 0
    for job_id in registry.get_job_ids(0, -1):
        try:
            registry.requeue(job_id)
            count += 1
        except (InvalidJobOperation, NoSuchJobError):
            continue  # gone meanwhile (expired, or requeued by someone else)
    return count


def _describe_call(job: Job) -> str:
    """`jobs.send.deliver(981)`: the function and its id arguments (never more than 200 characters)."""
    try:
        args = ", ".join(repr(a) for a in job.args)
        name = job.func_name
    except Exception:  # noqa: BLE001 - a job whose data cannot be read still gets a row
        return "(unreadable job data)"
    return f"{name}({args})"[:200]
