"""Which delivery reports count as bounces (hard or soft), what a status code means, and a DSN's per-recipient
statuses (one report may say 5.1.1 of one recipient and 4.2.2 of another)."""
from __future__ import annotations

import pytest

from app.mail.bounce.status import failure_class, status_meaning
from app.mail.parse import parse_message


@pytest.mark.parametrize(("kind", "status", "expected"), [
    ("failed", "5.1.1", "hard"), ("failed", "5.7.1", "hard"), ("failed", "4.2.2", "soft"),
    ("failed", None, "soft"), ("failed", "junk", "soft"), ("failed", "2.0.0", None),
    ("delayed", "4.4.7", None), ("delayed", "5.1.1", None), ("delivered", "2.0.0", None),
    ("feedback", None, None), ("mdn", None, None),
])
def test_failure_class(kind, status, expected):
    assert failure_class(kind, status) == expected


@pytest.mark.parametrize(("status", "meaning"), [
    ("5.1.1", "mailbox does not exist"), ("4.2.2", "mailbox full"), ("5.1.10", "the address takes no mail (null MX)"),
    ("5.2.9", "a problem with the mailbox"), ("5.9.9", ""), (None, ""), ("550", ""),
])
def test_status_meaning(status, meaning):
    assert status_meaning(status) == meaning


MIXED = (
    "From: MAILER-DAEMON@mx.example.org\r\nTo: support@mail.pigeonhole.test\r\nSubject: Undelivered Mail\r\n"
    "Message-ID: <mixed-1@mx.example.org>\r\nMIME-Version: 1.0\r\n"
    "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n"
    "--b\r\nContent-Type: text/plain\r\n\r\nSome recipients failed.\r\n"
    "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.org\r\n\r\n"
    "Final-Recipient: rfc822; Gone@Example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n"
    "Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n\r\n"
    "Final-Recipient: rfc822; full@example.com\r\nOriginal-Recipient: rfc822; full.alias@example.net\r\n"
    "Action: failed\r\nStatus: 4.2.2\r\nDiagnostic-Code: smtp; 452 4.2.2 mailbox\r\n full\r\n"
    "--b\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <ours-1@mail.pigeonhole.test>\r\n--b--\r\n").encode()


def test_a_dsn_keeps_each_recipients_own_status():
    bounce = parse_message(MIXED).bounce
    assert bounce.kind == "failed" and bounce.recipients == ["gone@example.com", "full@example.com"]
    assert bounce.status == "5.1.1"  # the report's: the first
    gone, full = bounce.failure_of("GONE@example.com"), bounce.failure_of("full@example.com")
    assert (gone.status, gone.diagnostic) == ("5.1.1", "550 5.1.1 user unknown")
    assert (full.status, full.diagnostic, full.original_recipient) == ("4.2.2", "452 4.2.2 mailbox full",
                                                                       "full.alias@example.net")
    other = bounce.failure_of("someone@example.com")  # not in a block of its own: the report's words
    assert other.status == "5.1.1"
