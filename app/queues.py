"""The RQ queues (`send`, `ingest`, `flows`, `poll`) on the configured Redis.

Jobs are enqueued with the JSON serializer and take ids, never objects; their
ids are deterministic where a duplicate would be harmful (`poll-mailbox-42`,
`send-message-981`), so enqueuing twice is a no-op. Enqueue only after the
database commit that created the rows a job reads.
"""
from __future__ import annotations

import logging
import os
from datetime import datetime, timedelta, timezone
from urllib.parse import unquote, urlsplit

from flask import current_app
from redis import Redis
from redis.sentinel import Sentinel
from rq import Queue, SimpleWorker, Worker
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.exceptions import DuplicateJobError
from rq.scheduler import RQScheduler
from rq.serializers import JSONSerializer

QUEUE_NAMES = ("send", "ingest", "flows", "poll")


def redis_connection(url: str | None = None, timeout: float | None = None) -> Redis:
    """The process's Redis client for `url` (default `REDIS_URL`) and timeout; its pool is reused.

    One client per setting, not one per call: RQ keeps its Lua scripts per client object
    (unique enqueues), so a fresh client per call would keep one socket open per enqueue.
    redis-py resets a pool inherited across fork, so forked RQ work horses are safe.

    With `REDIS_SENTINELS` (and no `url`), the client is redis-py's Sentinel master client for
    `REDIS_SENTINEL_SERVICE`: each new connection asks the sentinels where the master is, so
    after a failover the queues, the locks and the workers (which reconnect by themselves) follow
    the new master. `REDIS_URL` then gives the database number and password only.
    """
    sentinels = current_app.config.get("REDIS_SENTINELS") if url is None else None
    url = url or current_app.config["REDIS_URL"]
    key = ("sentinel:" + sentinels if sentinels else url, timeout)
    client = _clients.get(key)
    if client is None:
        kwargs = {}
        if timeout is not None:
            kwargs = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
        if sentinels:
            client = _sentinel_master(sentinels, url, kwargs)
        else:
            client = Redis.from_url(url, **kwargs)
        _clients[key] = client
    return client


_clients: dict[tuple[str, float | None], Redis] = {}


def sentinel_addresses(setting: str) -> list[tuple[str, int]]:
    """"host:port,host:port" (port 26379 when left out) as (host, port) pairs."""
    out = []
    for part in setting.split(","):
        host, _, port = part.strip().rpartition(":") if ":" in part else (part.strip(), "", "26379")
        if host:
            out.append((host.strip("[]"), int(port)))
    return out


def _sentinel_master(sentinels: str, url: str, kwargs: dict) -> Redis:
    parsed = urlsplit(url)
    db = int(parsed.path.lstrip("/") or 0) if parsed.path.lstrip("/").isdigit() else 0
    sentinel = Sentinel(sentinel_addresses(sentinels), sentinel_kwargs=dict(kwargs), **kwargs)
    return sentinel.master_for(current_app.config["REDIS_SENTINEL_SERVICE"], db=db,
                               username=unquote(parsed.username) if parsed.username else None,
                               password=unquote(parsed.password) if parsed.password else None)


def get_queue(name: str, connection: Redis | None = None) -> Queue:
    if name not in QUEUE_NAMES:
        raise ValueError(f"unknown queue {name!r}; queues are {', '.join(QUEUE_NAMES)}")
    return Queue(name, connection=connection or redis_connection(), serializer=JSONSerializer)


def enqueue(queue: str, func: str, *args, job_id: str | None = None, **options):
    """Enqueue `func` (a dotted path under `jobs.`) with JSON-serialisable `args`.

    With a `job_id`, a job of that id that is still queued or running makes this a
    no-op (returns None), so a mailbox is never polled twice at once.
    """
    q = get_queue(queue)
    if job_id is not None:
        options["job_id"] = job_id
        options["unique"] = True
    try:
        return q.enqueue(func, *args, **options)
    except DuplicateJobError:
        return None


def job_waiting(queue: str, job_id: str) -> bool:
    """Whether the job of that id is still waiting to start (queued, deferred or scheduled): it will read
    its work when it runs, later than now. False when it runs, has ended, or is gone."""
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    try:
        job = Job.fetch(job_id, connection=get_queue(queue).connection, serializer=JSONSerializer)
    except NoSuchJobError:
        return False
    return job.get_status(refresh=False) in ("queued", "deferred", "scheduled")


def enqueue_jobs(queue: str, jobs: list[tuple[str, tuple, str]], **options) -> None:
    """Enqueue `(func, args, job_id)` each, in one Redis round trip (a pipeline).

    For a batch of new rows whose ids make the job ids (nothing else can hold those ids
    yet, so no uniqueness check is needed); raises what Redis raises.
    """
    if not jobs:
        return
    datas = [Queue.prepare_data(func, list(args), job_id=job_id, **options) for func, args, job_id in jobs]
    get_queue(queue).enqueue_many(datas)


#: The app that jobs run in, handed over by `flask worker` before RQ forks (see `jobs.app_context`).
_jobs_app = None


def use_app_for_jobs(app) -> None:
    """Let this process's jobs open their app contexts on `app` instead of building an app each."""
    global _jobs_app
    _jobs_app = app


def app_for_jobs():
    """The app handed over by `use_app_for_jobs`, or None."""
    return _jobs_app


def queue_depths(connection: Redis) -> dict[str, int]:
    return {name: get_queue(name, connection).count for name in QUEUE_NAMES}


class _RegistersAgain:
    """A worker that registers again when Redis lost its key (a restart without persistence, a
    failover to a replica that never saw it): `/healthz`, Ops and `/metrics` count workers by that
    key, and RQ's heartbeat alone would leave a bare hash that lists no queue."""

    def heartbeat(self, timeout=None, pipeline=None):
        if pipeline is None:
            self._register_again_if_lost()
        super().heartbeat(timeout, pipeline)

    def maintain_heartbeats(self, job):
        self._register_again_if_lost()
        super().maintain_heartbeats(job)

    def _register_again_if_lost(self) -> None:
        if self.connection.hexists(self.key, "birth"):
            return
        self.connection.delete(self.key)
        self.register_birth()
        logging.getLogger(__name__).warning("worker %s: Redis had lost its registration; registered again", self.name)


class _SchedulerOfItsWorker(RQScheduler):
    """RQ's scheduler, which a worker forks into a process of its own, stopping once that worker is gone.

    RQ's own goes on when its worker is killed (SIGKILL, the OOM killer): an orphan that outlives every
    restart, keeps the scheduler's lock from the worker started in its place, and keeps a process
    manager that waits for its output (honcho) from noticing that the worker died.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._worker_pid = os.getpid()  # built in the worker, before the fork

    def heartbeat(self) -> None:
        if os.getppid() != self._worker_pid and not self._stop_requested:
            self.log.warning("Scheduler [PID %s]: its worker (PID %s) is gone; stopping", os.getpid(),
                             self._worker_pid)
            self._stop_requested = True  # RQ's loop stops at its next turn: locks released, death registered
        super().heartbeat()


class _StartsItsOwnScheduler:
    def _start_scheduler(self, burst: bool = False, logging_level: str | None = "INFO",
                         date_format: str = DEFAULT_LOGGING_DATE_FORMAT, log_format: str = DEFAULT_LOGGING_FORMAT) -> None:
        """RQ's `Worker._start_scheduler` with `_SchedulerOfItsWorker` (RQ names its class inside the method)."""
        self.scheduler = _SchedulerOfItsWorker(self.queues, connection=self.connection, serializer=self.serializer,
                                               logging_level=logging_level if logging_level is not None
                                               else self.log.level, date_format=date_format, log_format=log_format)
        self.scheduler.acquire_locks()
        if not self.scheduler.acquired_locks:
            return
        if not burst:
            self.scheduler.start()
            return
        try:
            self.scheduler.register_birth()
            self.scheduler.enqueue_scheduled_jobs()
        finally:
            self.scheduler.release_locks()
            self.scheduler.register_death()


class PigeonholeWorker(_StartsItsOwnScheduler, _RegistersAgain, Worker):
    """RQ's forking worker, registering again after a Redis restart."""


class PigeonholeSimpleWorker(_StartsItsOwnScheduler, _RegistersAgain, SimpleWorker):
    """RQ's non-forking worker (`flask worker --simple`), registering again after a Redis restart."""


def worker_settings() -> dict:
    """RQ Worker options from the settings: how often a worker heartbeats (`WORKER_TTL_SECONDS`)."""
    ttl = current_app.config["WORKER_TTL_SECONDS"]
    return {"worker_ttl": ttl, "job_monitoring_interval": max(1, min(30, ttl // 2))}


def live_workers(connection: Redis) -> list[Worker]:
    """The workers whose heartbeat is fresh (within `WORKER_TTL_SECONDS`).

    RQ lists a worker until its key expires, a minute or more after a SIGKILL or a machine crash,
    and counts its registry's names even after that: neither says whether anyone works the queues.
    """
    cutoff = datetime.now(timezone.utc) - timedelta(seconds=current_app.config["WORKER_TTL_SECONDS"])
    return [w for w in Worker.all(connection=connection)
            if w.last_heartbeat is not None and w.last_heartbeat >= cutoff and w.get_state() != "suspended"]


def unworked_queues(connection: Redis, depths: dict[str, int], workers: list[Worker]) -> list[str]:
    """The queues with jobs waiting and no live worker listening to them."""
    listened = {name for w in workers for name in w.queue_names()}
    return [name for name, depth in depths.items() if depth and name not in listened]
