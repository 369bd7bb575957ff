"""Inbound mail commands (ops and scripts rely on them; keep the output contract stable).

* `flask ingress [--host H] [--port P]`   the SMTP ingress for the platform domain
* `flask mail ingest --address ADDR FILE...`  ingest .eml files and mbox files through the
  ingest service; prints one JSON object per message with the keys `file`, `status`
  (created, threaded, duplicate, bounce, auto_reply, stored_with_error), `conversation_id`,
  `message_id`, `from`, `to`, `cc`, `subject`, `text` (the visible reply text),
  `attachments` ([{filename, content_type, size, content_id, inline}]), `auto_reply`,
  `error` (plus `index` for messages of an mbox, `bounce` for delivery reports).
  A FILE that cannot be read (missing, unreadable, or not a regular file: a directory,
  FIFO, socket or device, which would block or make no sense) gets one object with
  `status` "error" and the reason in `error`, and a line on stderr; the other files are
  ingested, and the exit status is 1. Stdout carries these objects and nothing else.
* `flask mail requeue-flows --since TIME [--address ADDR]`  queue the flow step of messages
  stored since TIME whose step never ran (ingest without Redis says so once, with this command)
* `flask mail poll ADDR`                  poll one IMAP/POP3 address now and say what happened
* `flask mail idle`                       hold IMAP IDLE connections and fetch on new mail, until
  stopped (SIGINT/SIGTERM gives the mailboxes back to the other idle processes at once)
"""
from __future__ import annotations

import json
import logging
import mailbox
import signal
import stat
import threading
from datetime import datetime, timezone
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from redis.exceptions import RedisError

from app.blobs import blob_store
from app.cli.serve import serve_until_signalled
from app.extensions import db
from app.runtime.idle import IdleSupervisor
from app.runtime.ingest import IngestResult, RawItem, ingest
from app.runtime.ingest_jobs import flow_steps_missing
from app.runtime.ingress import make_controller
from app.runtime.live import published_address
from app.runtime.poll import NotPollable, enqueue_once, poll_address
from app.transactions import outside_transaction

mail_cli = AppGroup("mail", help="Inbound mail: ingest files, poll mailboxes.")


def _live_address(address: str):
    live = published_address(address)
    if live is None:
        raise click.ClickException(f"{address} is not a published, enabled address")
    if not live.can_receive:
        raise click.ClickException(f"{address} is an outbound-only address")
    return live


def _not_a_file(path: Path) -> str | None:
    """Why PATH cannot be ingested as a message file, or None.

    Asked before the file is opened: opening a FIFO blocks until something writes to it,
    and every file after it would wait forever.
    """
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "no such file"
    except OSError as exc:
        return f"cannot read it: {exc.strerror or exc}"
    if stat.S_ISREG(mode):
        return None
    kind = ("a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "not a file")
    return f"not a regular file ({kind}): not read"


def _messages(path: Path):
    """(index or None, raw bytes) for an .eml file, or each message of an mbox file."""
    with path.open("rb") as fh:
        head = fh.read(5)
    if head == b"From ":
        box = mailbox.mbox(str(path), create=False)
        try:
            for index, key in enumerate(box.iterkeys()):
                yield index, box.get_bytes(key)
        finally:
            box.close()
    else:
        yield None, path.read_bytes()


def _refuse(path: Path, reason: str) -> None:
    """The contract's object for a file that was not read (stdout), and a line for the person (stderr)."""
    click.echo(json.dumps(IngestResult("error", error=reason).as_json(file=str(path)), ensure_ascii=False))
    click.echo(f"error: {path}: {reason}", err=True)


@mail_cli.command("ingest")
@click.option("--address", "address", required=True, help="The receiving address (published, enabled, inbound).")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
def ingest_command(address: str, files: tuple[Path, ...]) -> None:
    """Ingest raw message files (.eml, .box, mbox) for ADDRESS; one JSON object per message."""
    live = _live_address(address)
    store = blob_store()
    refused = 0
    for path in files:
        reason = _not_a_file(path)
        if reason is None:
            try:
                _ingest_file(live.id, store, path)
            except OSError as exc:  # unreadable, or gone while being read: the messages before it are stored
                reason = f"cannot read it: {exc.strerror or exc}"
        if reason is not None:
            refused += 1
            _refuse(path, reason)
    if refused:
        raise SystemExit(1)


def _ingest_file(address_id: int, store, path: Path) -> None:
    for index, raw in _messages(path):
        ref = str(path) if index is None else f"{path}#{index}"
        item = RawItem(store.put(raw), len(raw), "cli", ref[-300:], raw=raw)
        result = ingest(address_id, [item])[0]
        extra = {"file": str(path)}
        if index is not None:
            extra["index"] = index
        click.echo(json.dumps(result.as_json(**extra), ensure_ascii=False))


def _since(_ctx, _param, value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("give an ISO date and time, e.g. 2026-04-01T09:30:00+00:00") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


@mail_cli.command("requeue-flows")
@click.option("--since", required=True, callback=_since,
              help="ISO date and time (UTC unless it says otherwise): messages stored since then.")
@click.option("--address", "address", default=None, help="Only this receiving address.")
def requeue_flows_command(since: datetime, address: str | None) -> None:
    """Queue the flow step of messages stored since SINCE whose step never ran (Redis was down).

    Safe to run twice: a step still waiting in the queue is left alone, and a message
    runs through a flow once.
    """
    address_id = _live_address(address).id if address else None
    missing = flow_steps_missing(since, address_id)
    db.session.rollback()  # only read; enqueue with no transaction open
    try:
        queued = sum(outside_transaction(enqueue_once, "flows", "jobs.flows.run_flow", conversation_id, message_id,
                                         job_id=f"flow-message-{message_id}")
                     for conversation_id, message_id in missing)
    except RedisError as exc:
        raise click.ClickException(f"Redis is unavailable ({exc}); run this again once it is back") from None
    waiting = len(missing) - queued
    click.echo(f"{queued} flow step{'' if queued == 1 else 's'} queued"
               + (f", {waiting} already waiting in the queue" if waiting else ""))


@mail_cli.command("poll")
@click.argument("address")
def poll_command(address: str) -> None:
    """Poll ADDRESS's IMAP or POP3 mailbox now (synchronously) and print what happened."""
    live = _live_address(address)
    try:
        result = poll_address(live.id)
    except NotPollable as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(result.summary())
    if result.error:
        raise SystemExit(1)


@mail_cli.command("idle")
def idle_command() -> None:
    """Push: keep an IMAP IDLE connection per published IMAP mailbox and fetch new mail at once.

    Run any number, on any machines: each mailbox is held by one process at a time (a Redis
    lease), and a stopped or dead process's mailboxes are taken over by the others.
    """
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    supervisor = IdleSupervisor(current_app._get_current_object())
    click.echo(f"idle: {supervisor.owner} watching published IMAP mailboxes "
               f"(up to {supervisor.capacity}, re-read every {supervisor.refresh_seconds:g} s)", err=True)
    supervisor.run(stop)


@click.command("ingress")
@click.option("--host", default=None, help="Address to listen on (default INGRESS_HOST, 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default INGRESS_PORT, 2525).")
def ingress_command(host: str | None, port: int | None) -> None:
    """Run the SMTP ingress for the platform domain until stopped (Ctrl-C or SIGTERM)."""
    controller = make_controller(current_app._get_current_object(), host, port)
    controller.start()
    tls = " with STARTTLS" if current_app.config.get("INGRESS_TLS_CERT") else ""
    logging.getLogger(__name__).info("ingress listening on %s:%s%s for @%s", controller.hostname, controller.port,
                                     tls, current_app.config["PLATFORM_MAIL_DOMAIN"])
    serve_until_signalled(controller)


def init_app(app) -> None:
    app.cli.add_command(mail_cli)
    app.cli.add_command(ingress_command)
