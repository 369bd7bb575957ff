"""Command-line entry points (`flask --app wsgi ...`).

* `flask users create EMAIL --role admin`  prompts for a password
* `flask demo seed`                         idempotent demo data
* `flask worker [QUEUE ...] [--burst]`      an RQ worker (JSON serializer, all queues by default)
* `flask cron [--once]`                     the scheduler loop: enqueues due periodic jobs
* `flask smtp-sink [--port 8025]`           development SMTP server writing to the outbox folder
"""
from __future__ import annotations

import logging
import os
import time

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from app.mail import cli as mail_cli

log = logging.getLogger(__name__)

users_cli = AppGroup("users", help="Manage users.")
demo_cli = AppGroup("demo", help="Demo data.")


@users_cli.command("create")
@click.argument("email")
@click.option("--role", type=click.Choice(["admin", "supervisor", "agent"]), default="agent", show_default=True)
@click.option("--name", default="", help="Display name (defaults to the email's local part).")
@click.password_option(prompt="Password", confirmation_prompt=True)
def create_user_command(email: str, role: str, name: str, password: str) -> None:
    """Create a user with EMAIL and a role; the password is asked for, never an argument."""
    from app.auth.services import UserExists, create_user
    from app.extensions import db

    try:
        user = create_user(email, password, role, name)
    except UserExists:
        raise click.ClickException(f"a user with the email {email} already exists") from None
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    db.session.commit()
    click.echo(f"created {user.role} {user.email}")


@demo_cli.command("seed")
def seed_command() -> None:
    """Create the demo users, queue and configuration (safe to run again)."""
    from app.demo import seed
    from app.extensions import db

    created = seed()
    db.session.commit()
    for line in created:
        click.echo(line)
    click.echo("demo data ready")


@click.command("worker")
@click.argument("queues", nargs=-1)
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@click.option("--simple", is_flag=True, help="Run jobs in this process (no fork per job).")
@click.option("--with-scheduler/--without-scheduler", default=True, show_default=True,
              help="Also run RQ's scheduler for delayed jobs and retries.")
def worker_command(queues: tuple[str, ...], burst: bool, simple: bool, with_scheduler: bool) -> None:
    """Work the given queues (default: send, ingest, flows, poll)."""
    from rq import SimpleWorker, Worker
    from rq.serializers import JSONSerializer

    import jobs
    from app.queues import QUEUE_NAMES, get_queue, redis_connection

    for name in queues:
        if name not in QUEUE_NAMES:
            raise click.BadParameter(f"unknown queue {name!r}; queues are {', '.join(QUEUE_NAMES)}")
    if burst:
        current_app.config["SEND_LINGER_SECONDS"] = 0  # it stops when the queue is empty: nothing to wait for
    jobs.use_app(current_app._get_current_object())
    connection = redis_connection()
    worker_class = SimpleWorker if simple else Worker
    worker = worker_class(
        [get_queue(name, connection) for name in (queues or QUEUE_NAMES)],
        connection=connection,
        serializer=JSONSerializer,
    )
    worker.work(burst=burst, with_scheduler=with_scheduler, logging_level="INFO")


@click.command("cron")
@click.option("--once", is_flag=True, help="Run one tick and exit.")
@click.option("--interval", type=float, default=None, help="Seconds between ticks (default: CRON_TICK_SECONDS or 5).")
def cron_command(once: bool, interval: float | None) -> None:
    """Every tick, enqueue the periodic jobs that are due (mailbox polls, ...)."""
    from app.cron import tick

    interval = interval or float(os.environ.get("CRON_TICK_SECONDS", "5"))
    while True:
        try:
            tick()
        except Exception:  # noqa: BLE001 - one bad tick must not stop the scheduler
            log.exception("cron tick failed")
        if once:
            return
        time.sleep(interval)


def serve_until_signalled(controller) -> None:
    """Keep a started server (an aiosmtpd controller) running until SIGINT or SIGTERM, then stop it."""
    import signal
    import threading

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        stop.wait()
    finally:
        controller.stop()


def init_app(app: Flask) -> None:
    app.cli.add_command(users_cli)
    app.cli.add_command(demo_cli)
    app.cli.add_command(worker_command)
    app.cli.add_command(cron_command)
    mail_cli.init_app(app)  # flask ingress, flask mail ingest / poll
    from app.mail.sink import smtp_sink_command  # outbound (issue 5): the development SMTP sink

    app.cli.add_command(smtp_sink_command)
