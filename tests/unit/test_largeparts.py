"""Large base64 bodies decoded from the raw bytes: the same bytes (and sha256) as the stdlib's decode, less memory."""
from __future__ import annotations

import base64
import hashlib
import random
import tracemalloc
from email import message_from_bytes
from email.policy import compat32

import pytest

from app.mail import largeparts
from app.mail.parse import parse_message


def _message(body: bytes, eol: bytes = b"\r\n", cte: bytes = b"base64", ctype: bytes = b"application/zip") -> bytes:
    head = (b"From: Carla <carla@example.com>\r\nTo: support@mail.pigeonhole.test\r\nSubject: Big file\r\n"
            b"Message-ID: <big@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n"
            b"--XX\r\nContent-Type: text/plain\r\n\r\nSee the file.\r\n"
            b"--XX\r\nContent-Type: " + ctype + b"; name=big.zip\r\nContent-Disposition: attachment; filename=big.zip"
            b"\r\nContent-Transfer-Encoding: " + cte + b"\r\n\r\n")
    return (head + body + b"\r\n--XX--\r\n").replace(b"\r\n", eol)


def _stdlib(raw: bytes) -> list[bytes]:
    """What the plain stdlib parse decodes for each named part (today's bytes, the reference)."""
    return [p.get_payload(decode=True) for p in message_from_bytes(raw, policy=compat32).walk() if p.get_filename()]


def _lines(data: bytes, width: int) -> list[bytes]:
    encoded = base64.b64encode(data)
    return [encoded[i:i + width] for i in range(0, len(encoded), width)]


@pytest.fixture
def small_runs(monkeypatch):
    """Lift runs from 2 KB on, so the cases stay small (the mechanism does not depend on the threshold)."""
    monkeypatch.setattr(largeparts, "RUN_MIN_BYTES", 2048)
    used = []
    real = largeparts.decode_base64

    def spy(pieces):
        out = real(pieces)
        used.append(out is not None)
        return out

    monkeypatch.setattr(largeparts, "decode_base64", spy)
    return used


def _junk(lines: list[bytes], rng: random.Random) -> list[bytes]:
    out = list(lines)
    for _ in range(3):
        i = rng.randrange(len(out))
        out[i] = out[i][:7] + bytes([rng.choice(b"!*#~.\x00\xff")]) + out[i][7:]
    return out


CASES = {
    "76 columns, CRLF": lambda lines, rng: b"\r\n".join(lines),
    "odd line length 61": None,
    "odd line length 997": None,
    "junk characters": lambda lines, rng: b"\r\n".join(_junk(lines, rng)),
    "trailing spaces": lambda lines, rng: b" \r\n".join(lines),
    "missing padding": lambda lines, rng: b"\r\n".join(lines).rstrip(b"="),
    "padding in the middle": lambda lines, rng: b"\r\n".join(lines[:3] + [b"QQ=="] + lines[3:]),
    "one character too many": lambda lines, rng: b"\r\n".join(lines).rstrip(b"=") + b"\r\nA",
    "excess padding": lambda lines, rng: b"\r\n".join(lines) + b"===",
}


@pytest.mark.parametrize("eol", [b"\r\n", b"\n"], ids=["CRLF", "LF"])
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("size", [6000, 6001, 6002])  # every remainder of a base64 quantum
def test_streamed_bytes_equal_the_stdlibs_decode(small_runs, case, eol, size):
    rng = random.Random(f"{case}{size}")
    data = rng.randbytes(size)
    width = {"odd line length 61": 61, "odd line length 997": 997}.get(case, 76)
    body = (CASES[case] or (lambda lines, rng: b"\r\n".join(lines)))(_lines(data, width), rng)
    raw = _message(body, eol)
    [attachment] = parse_message(raw).attachments
    [expected] = _stdlib(raw)
    assert attachment.data == expected
    assert hashlib.sha256(attachment.data).hexdigest() == hashlib.sha256(expected).hexdigest()
    assert attachment.size == len(expected)
    if case in ("76 columns, CRLF", "odd line length 61", "odd line length 997", "junk characters",
                "trailing spaces", "missing padding"):
        assert small_runs == [True]  # decoded by the streamed path, not handed back to the stdlib


def test_a_long_run_of_letters_in_a_text_part_stays_as_it_was(small_runs):
    words = [b"Abcdefghij" * 7 for _ in range(200)]
    raw = _message(b"\r\n".join(words), cte=b"7bit", ctype=b"text/plain")
    assert len(largeparts.lift(raw).raw) < len(raw) // 10  # it was lifted ...
    [attachment] = parse_message(raw).attachments
    assert attachment.data == _stdlib(raw)[0]  # ... and given back untouched


def test_an_attached_message_keeps_its_bytes(small_runs):
    inner = _message(b"\r\n".join(_lines(random.Random(3).randbytes(9000), 76)))
    raw = (b"From: a@example.com\r\nTo: b@example.com\r\nSubject: Fwd\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: multipart/mixed; boundary=OUT\r\n\r\n--OUT\r\nContent-Type: text/plain\r\n\r\nsee below\r\n"
           b"--OUT\r\nContent-Type: message/rfc822\r\n\r\n" + inner + b"\r\n--OUT--\r\n")
    plain = parse_message(raw).attachments
    small_runs.clear()
    largeparts.RUN_MIN_BYTES = 1 << 40  # the same message through the plain stdlib path
    assert [a.data for a in plain] == [a.data for a in parse_message(raw).attachments]
    assert plain[0].filename == "Big file.eml"


def test_a_big_attachment_is_held_about_once_while_parsing():
    """The stdlib alone holds a base64 part several times over (8.7x its size was measured end to end)."""
    data = random.Random(5).randbytes(3 << 20)
    raw = _message(b"\r\n".join(_lines(data, 76)))
    tracemalloc.start()
    try:
        parsed = parse_message(raw)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert parsed.attachments[0].data == data
    assert peak < 1.5 * len(raw), f"parse peaked at {peak / len(raw):.1f}x the message size"
