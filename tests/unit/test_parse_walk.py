"""The MIME walk of `parse_message` on structures the stdlib parser alone gets wrong (our fixtures in tests/data/mail)."""
from __future__ import annotations

from app.mail.parse import parse_message
from tests.subprocess_env import ROOT

DATA = ROOT / "tests" / "data" / "mail"


def parse(name: str):
    return parse_message((DATA / name).read_bytes())


def test_transfer_encoding_with_trailing_whitespace_is_still_decoded():
    # "quoted-printable   " and "base64 " (a trailing space or CR) are still the encodings they name.
    parsed = parse("cte-trailing-space.eml")
    assert parsed.text.strip() == "Café bill attached."
    [attachment] = parsed.attachments
    assert (attachment.filename, attachment.data, attachment.size) == ("bill.bin", b"\x00\x01\x02\x03\x04", 5)

