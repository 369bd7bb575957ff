"""`flask mail send-test --from ADDRESS --to RCPT [--timeout SECONDS]`: a test email through the send queue.

Queues the test like the page's "Send test email" (`app.runtime.outbound.queue_send_test`:
rendered with the address's published Email Template Design, sent by a `flask worker` on
the `send` queue, signed with DKIM when the domain has an active key), then waits for a
final status, printing each status as it changes, one line each:

    queued
    retrying: Cannot connect to relay.example:587: ... (next attempt at 10:42:07 UTC)
    sent: 250 2.0.0 OK queued; DKIM s1._domainkey.mail.example.com

The last line is the final status (`sent: ...`, `failed: <reason>`). Exit status: 0 sent;
1 failed, or nothing queued (unknown, unpublished or inbound-only address, bad recipient:
the reason on stderr); 2 not final after `--timeout` seconds (the test stays queued and
is sent when a worker takes it). `--timeout 0` queues and returns at once (exit 0).
Keep this output contract stable: scripts rely on it.
"""
from __future__ import annotations

import time

import click
from sqlalchemy import func, select

from app.cli.mail import mail_cli
from app.extensions import db
from app.mail.dkim import record_tags
from app.models.channels import EmailAddress
from app.models.send_tests import SendTest
from app.runtime.outbound import CannotSend, is_final, queue_send_test

POLL_SECONDS = 0.25


def _line(test: SendTest) -> str:
    status = test.delivery_status
    if status == "sent":
        line = f"sent: {test.smtp_code} {test.smtp_reply or ''}".rstrip()
        if test.dkim_signature:
            tags = record_tags(test.dkim_signature.partition(":")[2])
            line += f"; DKIM {tags.get('s')}._domainkey.{tags.get('d')}"
        else:
            line += "; not DKIM-signed"
        return line
    if status == "retrying":
        when = f" (next attempt at {test.next_attempt_at:%H:%M:%S} UTC)" if test.next_attempt_at else ""
        return f"retrying: {test.delivery_error}{when}"
    if status == "failed":
        return f"failed: {test.delivery_error}"
    return status


@mail_cli.command("send-test")
@click.option("--from", "sender", required=True, help="The sending address (published, enabled, may send).")
@click.option("--to", "recipient", required=True, help="One recipient.")
@click.option("--timeout", type=click.FloatRange(min=0), default=60, show_default=True,
              help="Seconds to wait for a final status (sent or failed); 0: queue and return.")
def send_test_command(sender: str, recipient: str, timeout: float) -> None:
    """Send a test email from ADDRESS to RCPT through the send queue and print its delivery status."""
    address_id = db.session.scalar(select(EmailAddress.id).where(func.lower(EmailAddress.address) == sender.strip().lower()))
    if address_id is None:
        raise click.ClickException(f"{sender} is not an email address of this installation")
    try:
        test = queue_send_test(address_id, recipient)
    except CannotSend as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    db.session.commit()  # the send job is enqueued now
    test_id = test.id
    deadline = time.monotonic() + timeout
    last = None
    while True:
        db.session.expire_all()
        test = db.session.get(SendTest, test_id)
        line = _line(test)
        db.session.rollback()
        if line != last:
            click.echo(line)
            last = line
        if is_final(test.delivery_status):
            raise SystemExit(0 if test.delivery_status == "sent" else 1)
        if time.monotonic() >= deadline:
            if timeout:
                click.echo(f"not final after {timeout:g} s: still {test.delivery_status}; "
                           "a `flask worker` on the send queue sends it", err=True)
                raise SystemExit(2)
            return
        time.sleep(POLL_SECONDS)
