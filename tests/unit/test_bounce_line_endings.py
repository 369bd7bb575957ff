"""Delivery reports read the same with LF, CRLF and CR-only line endings; `app.mail.lines` leaves binary data alone."""
from __future__ import annotations

from email import message_from_bytes
from email.policy import compat32
from pathlib import Path

import pytest

from app.mail.lines import lf_for_bare_cr
from app.mail.parse import parse_message

DATA = Path(__file__).resolve().parent.parent / "data" / "mail"
ENDINGS = {"lf": b"\n", "crlf": b"\r\n", "cr": b"\r"}

#: Our own reports: file, failed recipient, status, the Message-ID of our message that came back.
REPORTS = [
    ("bounce.eml", "gone@example.org", "5.1.1", "<ph.abcdefghijklmnop.qrs@mail.pigeonhole.test>"),
    # RFC 3464 from Postfix, the original's headers as text/rfc822-headers.
    ("bounce-dsn-headers.eml", "full@example.org", "5.2.2", "<ph.dsnheaders00000.c1@mail.pigeonhole.test>"),
    # Exim's plain-text bounce: no MIME, the original quoted after a divider.
    ("bounce-exim-text.eml", "nobody@example.com", "5.1.1", "<ph.eximtextbounce0.d2@mail.pigeonhole.test>"),
]


def with_ending(raw: bytes, form: str) -> bytes:
    return raw.replace(b"\r\n", b"\n").replace(b"\n", ENDINGS[form])


@pytest.mark.parametrize("form", list(ENDINGS))
@pytest.mark.parametrize(("name", "recipient", "status", "original"), REPORTS)
def test_each_report_is_read_the_same_with_each_line_ending(name, recipient, status, original, form):
    parsed = parse_message(with_ending((DATA / name).read_bytes(), form))
    bounce = parsed.bounce
    assert bounce is not None, (name, form)
    assert (bounce.kind, bounce.recipients, bounce.status, bounce.original_message_id) == \
        ("failed", [recipient], status, original), (name, form)
    assert parsed.classification == "bounce" and parsed.no_auto_reply
    lf = parse_message(with_ending((DATA / name).read_bytes(), "lf"))
    # (A CRLF text keeps one CR at its very end: parse.py strips LFs only when it joins the text parts.)
    assert (parsed.subject, parsed.from_addr, parsed.text.rstrip(), bounce.diagnostic) == \
        (lf.subject, lf.from_addr, lf.text.rstrip(), lf.bounce.diagnostic)
    assert "\r" not in parsed.text.rstrip() and status in bounce.diagnostic


def test_lf_and_crlf_mail_is_handed_on_as_it_came():
    # The first line break decides: a stray CR further down is the parser's to read (as it always did).
    for raw in (b"Subject: a\n\nb\n", b"Subject: a\r\n\r\nb\r\n", b"Subject: a\r\n\r\nb\rc\r\n", b"", b"\n\r"):
        assert lf_for_bare_cr(raw) is raw


def test_cr_mail_is_read_with_lf_line_breaks():
    assert lf_for_bare_cr(b"Subject: a\r\rb\r") == b"Subject: a\n\nb\n"
    assert lf_for_bare_cr(b"Subject: a\rTo: b\r\n\rc\r\n") == b"Subject: a\nTo: b\n\nc\n"  # CRLFs among them too


def _with_binary_part(data: bytes) -> bytes:
    return (b"From: Carla <carla@example.com>\rTo: support@mail.pigeonhole.test\rSubject: Scan\r"
            b"MIME-Version: 1.0\rContent-Type: multipart/mixed; boundary=\"x\"\r\r"
            b"--x\rContent-Type: text/plain; charset=utf-8\rContent-Transfer-Encoding: quoted-printable\r\r"
            b"A long line with a soft=\r break.\rSecond line.\r"
            b"--x\rContent-Type: application/octet-stream; name=\"scan.bin\"\r"
            b"Content-Transfer-Encoding: binary\r\r" + data + b"\r--x--\r")


def test_a_binary_part_keeps_every_byte_while_the_text_around_it_is_read_as_lines():
    data = b"\x00\x01\r\x02\r\n\x03\n\rMZ\xff\r--xy\r\r"  # CRs and LFs that are data; "--xy" is no boundary
    raw = _with_binary_part(data)
    normalised = lf_for_bare_cr(raw)
    assert data + b"\r--x--\n" in normalised and b"Subject: Scan\n" in normalised
    parsed = parse_message(raw)
    assert [(a.filename, a.data) for a in parsed.attachments] == [("scan.bin", data)]
    # Quoted-printable's soft line break (=CR) is one once the CR is a line break.
    assert parsed.text == "A long line with a soft break.\nSecond line." and parsed.from_addr == "carla@example.com"


def test_a_binary_body_of_a_single_part_message_is_left_as_it_came():
    raw = (b"From: carla@example.com\rSubject: raw\rContent-Type: application/octet-stream\r"
           b"Content-Transfer-Encoding: binary\r\r\x00\r\x01\r")
    assert lf_for_bare_cr(raw) == raw.replace(b"\r", b"\n", 5)
    assert parse_message(raw).attachments[0].data == b"\x00\r\x01\r"


def test_a_binary_part_inside_a_returned_message_keeps_every_byte():
    data = b"\x89PNG\r\n\x1a\n\x00\r\r\x00"
    inner = (b"From: support@mail.pigeonhole.test\rSubject: Re: scan\rMIME-Version: 1.0\r"
             b"Content-Type: multipart/mixed; boundary=in\r\r--in\rContent-Type: text/plain\r\rSee the scan.\r"
             b"--in\rContent-Type: image/png; name=scan.png\rContent-Transfer-Encoding: binary\r\r" + data
             + b"\r--in--\r")
    raw = (b"From: MAILER-DAEMON@mx.example.org\rTo: support@mail.pigeonhole.test\rSubject: Returned mail\r"
           b"MIME-Version: 1.0\rContent-Type: multipart/mixed; boundary=out\r\r--out\rContent-Type: text/plain\r\r"
           b"Your message was returned.\r--out\rContent-Type: message/rfc822\r\r" + inner + b"--out--\r")
    normalised = lf_for_bare_cr(raw)
    assert data + b"\r--in--\n" in normalised and b"See the scan.\n--in\n" in normalised
    png = [p for p in message_from_bytes(normalised, policy=compat32).walk() if p.get_content_type() == "image/png"]
    assert [p.get_payload(decode=True) for p in png] == [data]
