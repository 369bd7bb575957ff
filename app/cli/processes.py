"""The long-running processes: `flask worker`, `flask cron`, `flask smtp-sink` (development)."""
from __future__ import annotations

import logging
import os
import time

import click
from flask import current_app
from rq import SimpleWorker, Worker
from rq.serializers import JSONSerializer

from app.cli.serve import serve_until_signalled
from app.cron import tick
from app.mail.sink import start_sink
from app.queues import QUEUE_NAMES, get_queue, redis_connection, use_app_for_jobs, worker_settings
from app.runtime import metrics

log = logging.getLogger(__name__)


@click.command("worker")
@click.argument("queues", nargs=-1)
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@click.option("--simple", is_flag=True, help="Run jobs in this process (no fork per job).")
@click.option("--with-scheduler/--without-scheduler", default=True, show_default=True,
              help="Also run RQ's scheduler for delayed jobs and retries.")
def worker_command(queues: tuple[str, ...], burst: bool, simple: bool, with_scheduler: bool) -> None:
    """Work the given queues (default: send, ingest, flows, poll)."""
    for name in queues:
        if name not in QUEUE_NAMES:
            raise click.BadParameter(f"unknown queue {name!r}; queues are {', '.join(QUEUE_NAMES)}")
    if burst:
        current_app.config["SEND_LINGER_SECONDS"] = 0  # it stops when the queue is empty: nothing to wait for
    use_app_for_jobs(current_app._get_current_object())
    metrics.mark_worker()
    connection = redis_connection()
    worker_class = SimpleWorker if simple else Worker
    worker = worker_class(
        [get_queue(name, connection) for name in (queues or QUEUE_NAMES)],
        connection=connection,
        serializer=JSONSerializer,
        **worker_settings(),
    )
    worker.work(burst=burst, with_scheduler=with_scheduler, logging_level="INFO")


@click.command("cron")
@click.option("--once", is_flag=True, help="Run one tick and exit.")
@click.option("--interval", type=float, default=None, help="Seconds between ticks (default: CRON_TICK_SECONDS or 5).")
def cron_command(once: bool, interval: float | None) -> None:
    """Every tick, enqueue the periodic jobs that are due (mailbox polls, ...)."""
    interval = interval or float(current_app.config["CRON_TICK_SECONDS"])
    while True:
        try:
            tick()
        except Exception:  # noqa: BLE001 - one bad tick must not stop the scheduler
            log.exception("cron tick failed")
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
