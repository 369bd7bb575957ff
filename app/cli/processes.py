"""The long-running processes: `flask worker`, `flask cron`, `flask smtp-sink` (development)."""
from __future__ import annotations

import logging
import os
import signal
import sys
import time

import click
from flask import current_app
from redis.exceptions import RedisError
from rq.serializers import JSONSerializer

from app.cli.serve import serve_until_signalled
from app.cron import tick
from app.extensions import db
from app.flows import intents
from app.mail.sink import start_sink
from app.queues import (QUEUE_NAMES, PigeonholeSimpleWorker, PigeonholeWorker, get_queue, redis_connection,
                        use_app_for_jobs, worker_settings)
from app.runtime import metrics

log = logging.getLogger(__name__)


@click.command("worker")
@click.argument("queues", nargs=-1)
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@click.option("--simple", is_flag=True, help="Run jobs in this process (no fork per job).")
@click.option("--with-scheduler/--without-scheduler", default=True, show_default=True,
              help="Also run RQ's scheduler for delayed jobs and retries.")
@click.option("--processes", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Worker processes to run from this command (each restarted if it dies).")
def worker_command(queues: tuple[str, ...], burst: bool, simple: bool, with_scheduler: bool,
                   processes: int) -> None:
    """Work the given queues (default: send, ingest, flows, poll).

    What every job needs (the intent classifier's numpy and scikit-learn, the live intent model) is
    loaded here once, before RQ forks a work horse per job (or, with `--simple`, runs the jobs in
    this process), so no job pays for it. With `--processes N` this process forks N workers after
    loading, restarts one that dies, and passes SIGTERM on to them (each finishes its job at hand).

    When Redis goes away, RQ's worker quits; this command waits for Redis to answer again and starts
    a new worker (one log line per outage), so a Redis restart or failover needs nobody's help.
    SIGTERM still stops it: a warm stop finishes the job at hand.
    """
    for name in queues:
        if name not in QUEUE_NAMES:
            raise click.BadParameter(f"unknown queue {name!r}; queues are {', '.join(QUEUE_NAMES)}")
    if burst:
        current_app.config["SEND_LINGER_SECONDS"] = 0  # it stops when the queue is empty: nothing to wait for
    use_app_for_jobs(current_app._get_current_object())
    _preload()
    worker_class = PigeonholeSimpleWorker if simple else PigeonholeWorker
    if processes > 1:
        _supervise_workers(processes, lambda: _work(worker_class, queues, burst, with_scheduler), burst)
        return
    metrics.mark_worker()
    _work(worker_class, queues, burst, with_scheduler)


def _preload() -> None:
    """Load the intent classifier before any fork; a failure is logged and left to the first flow job."""
    try:
        intents.preload()
    except Exception:  # noqa: BLE001 - e.g. a database not upgraded yet: the job will say so
        log.exception("could not preload the intent classifier")
    finally:
        db.session.remove()
        db.engine.dispose()  # no pooled connection crosses a fork


def _supervise_workers(count: int, work, burst: bool) -> None:
    """Fork `count` worker processes running `work`; start again one that dies; SIGTERM stops them all.

    A child that exits with status 0 is done (`--burst`, or a warm stop); any other end (a crash, a
    SIGKILL) gets a new child and one log line. The parent does no work and holds no connection.
    """
    children: dict[int, int] = {}  # pid -> slot
    stopping = False

    def start(slot: int) -> None:
        pid = os.fork()
        if pid == 0:  # the child: its own signal handlers are RQ's
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            code = 0
            try:
                metrics.mark_worker()
                work()
            except BaseException:  # noqa: BLE001 - reported, then the supervisor decides
                log.exception("worker process %s failed", os.getpid())
                code = 1
            finally:
                logging.shutdown()
                os._exit(code)
        children[pid] = slot

    def stop(signum, _frame) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for slot in range(count):
        start(slot)
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        slot = children.pop(pid, None)
        if slot is None:
            continue
        code = os.waitstatus_to_exitcode(status)
        if stopping or code == 0:
            continue
        log.warning("worker process %s stopped (exit %s); starting another", pid, code)
        time.sleep(1)
        if not stopping:
            start(slot)


def _work(worker_class, queues: tuple[str, ...], burst: bool, with_scheduler: bool) -> None:
    while True:
        connection = redis_connection()
        worker = worker_class(
            [get_queue(name, connection) for name in (queues or QUEUE_NAMES)],
            connection=connection,
            serializer=JSONSerializer,
            **worker_settings(),
        )
        try:
            worker.work(burst=burst, with_scheduler=with_scheduler, logging_level="INFO")
        except RedisError as exc:  # raised from its teardown when Redis is gone
            if getattr(worker, "_stop_requested", False):
                return  # asked to stop (SIGTERM) while Redis was going away too: stop, do not wait for it
            log.warning("worker %s lost Redis (%s)", worker.name, exc.__class__.__name__)
        else:
            if burst or getattr(worker, "_stop_requested", False) or _redis_answers(connection):
                return  # asked to stop, or done
        _wait_for_redis(connection)


def _redis_answers(connection) -> bool:
    try:
        return bool(connection.ping())
    except RedisError:
        return False


def _wait_for_redis(connection, longest: float = 10.0) -> None:
    """Sleep until Redis answers, backing off to `longest` seconds; SIGTERM meanwhile ends the process."""
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        log.warning("Redis does not answer: the worker starts again once it does")
        delay = 0.5
        while not _redis_answers(connection):
            time.sleep(delay)
            delay = min(longest, delay * 2)
        log.warning("Redis answers again: starting a new worker")
    finally:
        signal.signal(signal.SIGTERM, previous)


@click.command("cron")
@click.option("--once", is_flag=True, help="Run one tick and exit.")
@click.option("--interval", type=float, default=None, help="Seconds between ticks (default: CRON_TICK_SECONDS or 5).")
def cron_command(once: bool, interval: float | None) -> None:
    """Every tick, enqueue the periodic jobs that are due (mailbox polls, ...)."""
    interval = interval or float(current_app.config["CRON_TICK_SECONDS"])
    redis_down = False
    while True:
        try:
            tick()
        except RedisError as exc:  # one line per outage, not a traceback every tick
            if not redis_down:
                log.warning("cron: Redis does not answer (%s); ticking on until it does", exc.__class__.__name__)
            redis_down = True
        except Exception:  # noqa: BLE001 - one bad tick must not stop the scheduler
            log.exception("cron tick failed")
        else:
            if redis_down:
                log.warning("cron: Redis answers again")
            redis_down = False
        if once:
            return
        time.sleep(interval)


@click.command("smtp-sink")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (keep it loopback).")
@click.option("--port", type=int, default=8025, show_default=True)
@click.option("--dir", "directory", default=None,
              help="Where to write messages (default: OUTBOX_DIR, else instance/outbox).")
def smtp_sink_command(host: str, port: int, directory: str | None) -> None:
    """Development SMTP server that keeps every message in the outbox folder and never delivers."""
    directory = directory or current_app.config.get("OUTBOX_DIR") or os.path.join(
        current_app.config["INSTANCE_DIR"], "outbox")
    controller = start_sink(directory, host, port)
    click.echo(f"SMTP sink on {host}:{port}, writing to {directory}")
    serve_until_signalled(controller)
