"""Send test email: one rendered message from an address to one recipient, through the send queue.

Admins use it to check an address's SMTP settings and DKIM end to end (Channels › Email,
the address's "⋮" menu; `flask mail send-test`). What is the same as a reply: the
published configuration (`sending_address`: only a published, enabled address that may
send), the renderer (`render_message`: the Email Template Design's header and footer),
the send queue (job `send-test-<id>` on `send`), the SMTP server (the platform relay or
the address's own server), DKIM signing as the last step before SMTP (`dkim_signed`), the
delivery states and the retry rules (`failure_outcome`, the cron sweep).

What differs, on purpose: a test lives in its own row (`SendTest`), not in a conversation,
so it never shows in the workspace, searches or reports, and answers nobody. It goes to
the one recipient given: no Bcc to a platform address's contact-center mailbox (which
forwards back to our ingress and would open a conversation). Its send job sends it alone
over its own connection, claiming it with a lease like a message (a worker that dies
mid-send leaves it to the sweep once the lease has expired). Admins may send
`SEND_TEST_LIMIT_PER_HOUR` tests an hour each; the command line is not limited.
"""
from __future__ import annotations

import secrets
from datetime import timedelta
from email.headerregistry import Address
from email.utils import getaddresses, format_datetime

from flask import current_app
from markupsafe import escape
from sqlalchemy import func, select, update

from app.extensions import db
from app.mail.addresses import InvalidAddress, check_address
from app.mail.render import Draft, render_message
from app.mail.smtp import DeliveryError
from app.mail.tokens import make_message_id, new_conversation_token
from app.models._types import utcnow
from app.models.auth import User
from app.models.send_tests import SendTest
from app.runtime.outbound.claims import failure_outcome
from app.runtime.outbound.deliver import dkim_signed, smtp_session
from app.runtime.outbound.dispatch import enqueue_send_queue_job
from app.runtime.outbound.senders import CannotSend, sending_address, transport_settings
from app.runtime.outbound.states import FAILED, IN_PROGRESS, LEASED_STATE, QUEUED, SENDING, SENT, claimable
from app.runtime.template_images import inline_images
from app.transactions import hold_row, on_commit, outside_transaction

SEND_TEST_JOB = "jobs.send.send_test_email"
SUBJECT = "Test email from Pigeonhole"


class InvalidRecipient(CannotSend):
    """The recipient is not one email address; nothing was queued."""


class TooManyTests(CannotSend):
    """This admin sent the most test emails allowed in the last hour; nothing was queued."""


def send_test_job_id(test_id: int) -> str:
    return f"send-test-{test_id}"


def is_final(status: str) -> bool:
    return status not in IN_PROGRESS


def clean_recipient(value: str) -> str:
    """The one recipient of a test (its address, domain in punycode). Raises `InvalidRecipient`."""
    value = (value or "").strip()
    pairs = [(name, addr) for name, addr in getaddresses([value]) if name or addr]
    if not value:
        raise InvalidRecipient("Enter the email address to send the test to.")
    if not pairs:  # nothing the address parser could read: let the checker say why
        pairs = [("", value)]
    if len(pairs) > 1:
        raise InvalidRecipient("Enter one email address: a test goes to one recipient.")
    name, addr = pairs[0]
    try:
        checked = check_address(addr)
    except InvalidAddress as exc:
        raise InvalidRecipient(f"“{addr or name}” is not an email address: {exc}") from None
    return checked.ascii_email


def cannot_send_reason(address_id: int) -> str | None:
    """Why the address cannot send a test now (not published, disabled, inbound-only, no server), or None."""
    try:
        transport_settings(sending_address(address_id))
    except CannotSend as exc:
        return str(exc)
    return None


def tests_left(user_id: int) -> tuple[int, object]:
    """(how many more tests the admin may send now, when the oldest of the last hour's stops counting)."""
    limit = current_app.config["SEND_TEST_LIMIT_PER_HOUR"]
    since = utcnow() - timedelta(hours=1)
    count, oldest = db.session.execute(
        select(func.count(SendTest.id), func.min(SendTest.created_at))
        .where(SendTest.requested_by_id == user_id, SendTest.created_at > since)).one()
    return max(0, limit - count), (oldest + timedelta(hours=1) if oldest is not None else None)


def _body(address: str, when) -> str:
    stamp = format_datetime(when)
    return (f"<p>This is a test email from Pigeonhole, sent from {escape(address)} to check that it can send: "
            f"its SMTP server and, when its domain has a verified key, its DKIM signature.</p>"
            f"<p>Sent {escape(stamp)}.</p>"
            "<p>It arrived, so the address can send. There is no need to reply.</p>")


def queue_send_test(address_id: int, recipient: str, requested_by: int | None = None) -> SendTest:
    """Render and queue a test email from the address to `recipient`; returns the row (flushed).

    Its send job is enqueued once the caller commits. Raises `CannotSend` (the address is
    not published, is disabled, archived or inbound-only, or has no usable SMTP server),
    `InvalidRecipient`, and `TooManyTests` when `requested_by` (an admin's id; None for the
    command line) already sent `SEND_TEST_LIMIT_PER_HOUR` in the last hour.
    """
    sender = sending_address(address_id)
    transport_settings(sender)  # refuse now, not in the worker, when no server is usable
    to = clean_recipient(recipient)
    author = None
    if requested_by is not None:
        hold_row(User, requested_by)  # one admin's requests are counted one at a time, until the commit
        left, again_at = tests_left(requested_by)
        if left <= 0:
            raise TooManyTests(
                f"You sent {current_app.config['SEND_TEST_LIMIT_PER_HOUR']} test emails in the last hour, the most "
                f"allowed. Try again after {again_at:%H:%M} UTC.")
        author = db.session.get(User, requested_by)
    now = utcnow()
    domain = sender.address.rpartition("@")[2].lower() or current_app.config["PLATFORM_MAIL_DOMAIN"]
    draft = Draft(to=[str(Address(addr_spec=to))], subject=f"{SUBJECT} ({sender.address})",
                  body_html=_body(sender.address, now), message_id=make_message_id(new_conversation_token(), domain),
                  date=now, placeholders={"customer_name": "", "agent_name": author.name if author else "",
                                          "conversation_reference": ""},
                  attachments=inline_images(sender))
    rendered = render_message(sender, draft)
    test = SendTest(address_id=sender.id, requested_by_id=requested_by, recipient=to, from_addr=rendered.from_header,
                    subject=draft.subject, message_id=draft.message_id, raw=rendered.raw, created_at=now,
                    delivery_status=QUEUED, delivery_attempts=0, next_attempt_at=now)
    db.session.add(test)
    db.session.flush()
    on_commit(enqueue_send_test, test.id)
    return test


def enqueue_send_test(test_id: int, stale_started: bool = False):
    """Enqueue the send job of a test (`send-test-<id>` on the send queue); call after the commit."""
    return enqueue_send_queue_job(SEND_TEST_JOB, test_id, send_test_job_id(test_id), stale_started)


def _finish(test_id: int, token: str, **values) -> None:
    values.update(claim_token=None, claimed_until=None, last_attempt_at=utcnow())
    db.session.execute(update(SendTest).where(SendTest.id == test_id, SendTest.claim_token == token).values(**values),
                       execution_options={"synchronize_session": False})
    db.session.commit()


def _claim(test_id: int, token: str) -> bool:
    now = utcnow()
    lease = timedelta(seconds=current_app.config["SEND_LEASE_SECONDS"])
    claimed = db.session.execute(
        update(SendTest).where(SendTest.id == test_id, claimable(now, SendTest))
        .values(delivery_status=SENDING, claim_token=token, claimed_until=now + lease,
                delivery_attempts=SendTest.delivery_attempts + 1),
        execution_options={"synchronize_session": False}).rowcount == 1
    db.session.commit()
    return claimed


def deliver_send_test(test_id: int) -> str:
    """The send job of a test: claim it, sign it, send it, record the outcome; returns the status.

    Commits as it goes (the claim before any byte goes to the server, the outcome right
    after its reply); never raises for delivery problems, which are recorded on the row.
    """
    test = db.session.get(SendTest, test_id)
    if test is None:
        db.session.rollback()
        return "missing"
    token = secrets.token_hex(16)
    try:
        sender = sending_address(test.address_id)
        settings = transport_settings(sender)
    except CannotSend as exc:  # unpublished, disabled or changed since it was queued
        if _claim(test_id, token):
            _finish(test_id, token, delivery_status=FAILED, next_attempt_at=None, delivery_error=str(exc))
        return _status(test_id)
    recipient, raw = test.recipient, bytes(test.raw)
    if not _claim(test_id, token):
        return _status(test_id)
    attempts = db.session.scalar(select(SendTest.delivery_attempts).where(SendTest.id == test_id))
    signature, data = dkim_signed(raw, sender.address, {})
    db.session.rollback()  # no transaction open while we talk to the server
    try:
        with smtp_session(settings) as session:
            result = session.send(sender.address, [recipient], data)
    except DeliveryError as error:
        _finish(test_id, token, **failure_outcome(attempts, error))
    else:
        _finish(test_id, token, delivery_status=SENT, sent_at=utcnow(), smtp_code=result.code,
                smtp_reply=result.text[:4000], next_attempt_at=None, delivery_error=None, dkim_signature=signature)
    return _status(test_id)


def _status(test_id: int) -> str:
    status = db.session.scalar(select(SendTest.delivery_status).where(SendTest.id == test_id))
    db.session.rollback()
    return status


def enqueue_due_send_tests(limit: int = 100) -> int:
    """Cron: enqueue the job of each test that is due (a retry, a job lost with Redis, a dead worker's lease)."""
    rows = db.session.execute(select(SendTest.id, SendTest.delivery_status)
                              .where(claimable(utcnow(), SendTest))
                              .order_by(SendTest.next_attempt_at, SendTest.id).limit(limit)).all()
    db.session.rollback()
    return sum(outside_transaction(enqueue_send_test, test_id, stale_started=status == LEASED_STATE) is not None
               for test_id, status in rows)


def recent_send_tests(address_id: int, limit: int = 5) -> list[SendTest]:
    """The address's latest tests, newest first (the Send test email page lists them)."""
    return list(db.session.scalars(select(SendTest).where(SendTest.address_id == address_id)
                                   .order_by(SendTest.created_at.desc(), SendTest.id.desc()).limit(limit)))
