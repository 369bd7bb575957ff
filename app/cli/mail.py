"""Inbound mail commands (ops and scripts rely on them; keep the output contract stable).

* `flask ingress [--host H] [--port P]`   the SMTP ingress for the platform domain
* `flask mail ingest --address ADDR FILE...`  ingest .eml files and mbox files through the
  ingest service; prints one JSON object per message with the keys `file`, `status`
  (created, threaded, duplicate, bounce, auto_reply, stored_with_error), `conversation_id`,
  `message_id`, `from`, `to`, `cc`, `subject`, `text` (the visible reply text),
  `attachments` ([{filename, content_type, size, content_id, inline}]), `auto_reply`,
  `error` (plus `index` for messages of an mbox, `bounce` for delivery reports)
* `flask mail poll ADDR`                  poll one IMAP/POP3 address now and say what happened
"""
from __future__ import annotations

import json
import mailbox
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from app.blobs import blob_store
from app.cli.serve import serve_until_signalled
from app.runtime.ingest import RawItem, ingest
from app.runtime.ingress import make_controller
from app.runtime.live import published_address
from app.runtime.poll import NotPollable, poll_address

mail_cli = AppGroup("mail", help="Inbound mail: ingest files, poll mailboxes.")


def _live_address(address: str):
    live = published_address(address)
    if live is None:
        raise click.ClickException(f"{address} is not a published, enabled address")
    if not live.can_receive:
        raise click.ClickException(f"{address} is an outbound-only address")
    return live


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


@mail_cli.command("ingest")
@click.option("--address", "address", required=True, help="The receiving address (published, enabled, inbound).")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def ingest_command(address: str, files: tuple[Path, ...]) -> None:
    """Ingest raw message files (.eml, .box, mbox) for ADDRESS; one JSON object per message."""
    live = _live_address(address)
    store = blob_store()
    for path in files:
        for index, raw in _messages(path):
            ref = str(path) if index is None else f"{path}#{index}"
            item = RawItem(store.put(raw), len(raw), "cli", ref[-300:], raw=raw)
            result = ingest(live.id, [item])[0]
            extra = {"file": str(path)}
            if index is not None:
                extra["index"] = index
            click.echo(json.dumps(result.as_json(**extra), ensure_ascii=False))


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


@click.command("ingress")
@click.option("--host", default=None, help="Address to listen on (default INGRESS_HOST, 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default INGRESS_PORT, 2525).")
def ingress_command(host: str | None, port: int | None) -> None:
    """Run the SMTP ingress for the platform domain until stopped (Ctrl-C or SIGTERM)."""
    controller = make_controller(current_app._get_current_object(), host, port)
    controller.start()
    tls = " with STARTTLS" if current_app.config.get("INGRESS_TLS_CERT") else ""
    click.echo(f"ingress listening on {controller.hostname}:{controller.port}{tls} for "
               f"@{current_app.config['PLATFORM_MAIL_DOMAIN']}", err=True)
    serve_until_signalled(controller)


def init_app(app) -> None:
    app.cli.add_command(mail_cli)
    app.cli.add_command(ingress_command)
