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


def test_empty_part_before_the_close_delimiter_leaves_the_epilogue_out():
    # "--b1" straight followed by "--b1--": an empty part; the stdlib misses the close and shows the epilogue.
    parsed = parse("multipart-empty-last-part.eml")
    assert parsed.text.strip() == "Invoice 9 is wrong."
    assert parsed.attachments == []


def test_delimiter_lines_with_text_after_a_blank_still_delimit():
    # RFC 2046 5.1.1: the boundary need only begin the line; "--b2 words" and "--b2-- words" delimit.
    parsed = parse("multipart-delimiter-with-text.eml")
    assert parsed.text.strip() == "My router keeps rebooting."
    assert any("delimiters followed by text" in d for d in parsed.defects)


def test_delimiter_lines_folded_like_the_boundary_parameter_are_read():
    parsed = parse("multipart-folded-delimiters.eml")
    assert parsed.text.strip() == "The delivery failed twice."
    assert [(a.filename, a.data.strip()) for a in parsed.attachments] == [("log.txt", b"log line")]


def test_multipart_closed_without_parts_shows_no_preamble():
    # A close delimiter and no part: the text before it is the preamble RFC 2046 says to ignore.
    parsed = parse("multipart-no-parts.eml")
    assert parsed.text == ""
    assert any("no parts" in d for d in parsed.defects)


def test_inner_multipart_without_delimiters_is_kept_as_a_file_beside_the_text():
    parsed = parse("multipart-inner-without-delimiter.eml")
    assert parsed.text.strip() == "Please call me back."
    [kept] = parsed.attachments
    assert (kept.named, kept.content_type, kept.data.strip()) == (False, "text/plain", b"My number is 555 0100.")


def test_multipart_without_any_delimiter_is_the_text_when_nothing_else_is():
    parsed = parse("multipart-without-delimiter.eml")
    assert parsed.text.strip() == "My order 31 arrived broken."


def test_winmail_dat_with_only_an_html_body_becomes_the_html():
    # No files inside: nothing to list; Outlook's HTML body is the message's HTML (it has none of its own).
    parsed = parse("tnef-html-body.eml")
    assert parsed.attachments == []
    assert "The heater in room 12 is broken." in (parsed.html or "")
    assert parsed.text.strip() == "See attached."


def test_winmail_dat_with_only_an_rtf_body_keeps_it_decompressed():
    parsed = parse("tnef-rtf-body.eml")
    [body] = parsed.attachments
    assert (body.filename, body.named, body.content_type) == ("body.rtf", False, "application/rtf")
    assert body.data.startswith(b"{\\rtf1") and b"The heater in room 12 is broken." in body.data


def test_winmail_dat_with_only_message_properties_lists_nothing():
    # An appointment's or read receipt's properties only: no file to show; the raw message keeps it.
    parsed = parse("tnef-properties-only.eml")
    assert parsed.attachments == []
    assert any("winmail.dat holds no files" in d for d in parsed.defects)
