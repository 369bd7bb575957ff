"""The MIME walk of `parse_message` on structures the stdlib parser alone gets wrong (fixtures: tests/data/mail)."""
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


def test_folded_boundary_parameter_is_unfolded():
    # boundary="outer\n part" means "outer part" (RFC 5322 unfolding removes the line break only).
    parsed = parse("folded-boundary.eml")
    assert parsed.text.strip() == "The order never came."
    assert [(a.filename, a.data) for a in parsed.attachments] == [("order.txt", b"Order 1234")]
    assert any("boundary" in d for d in parsed.defects)


def test_boundary_parameter_without_its_semicolon_is_found():
    parsed = parse("boundary-without-semicolon.eml")
    assert parsed.text.strip() == "Photo of the damage attached."
    assert [a.filename for a in parsed.attachments] == ["damage.png"]
    assert parsed.attachments[0].data.startswith(b"\x89PNG")


def test_alternative_with_two_plain_versions_shows_the_last():
    # RFC 2046 5.1.4: the versions of multipart/alternative are one content, the last the preferred one.
    parsed = parse("alternative-two-plain.eml")
    assert parsed.text.strip() == "Where is my parcel 4711?"
    assert "Draft wording" not in parsed.text
    assert "Where is my parcel 4711?" in (parsed.html or "")


def test_external_body_keeps_its_phantom_header_block():
    # message/external-body's content is the header block of the body it points to, not nothing.
    parsed = parse("external-body.eml")
    [pointer] = parsed.attachments
    assert pointer.filename == "manual.pdf"
    assert pointer.data == b"Content-Type: application/pdf\nContent-ID: <manual@example.test>\n"
    assert pointer.size == len(pointer.data)
    crlf = parse_message((DATA / "external-body.eml").read_bytes().replace(b"\n", b"\r\n"))
    assert crlf.attachments[0].data == pointer.data.replace(b"\n", b"\r\n")
