"""The MIME writer: whatever goes in comes back out of a standard parser, and nothing breaks a header."""
from __future__ import annotations

from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.headerregistry import Address
from email.utils import getaddresses

import pytest

from app.mail import mime


def _parse(raw: bytes):
    return message_from_bytes(raw, policy=policy.default)


def _message(headers=(), text="Hello\n", html="<p>Hello</p>", files=()):
    base = [mime.address_header("From", ["Acme Support <support@acme.test>"])]
    return mime.build_message(base + list(headers), text, html, list(files))


def _lines(raw: bytes) -> list[bytes]:
    return raw.split(b"\r\n")


def _text(part) -> str:
    """A text part's content with the wire's CRLF line ends read as newlines."""
    return part.get_content().replace("\r\n", "\n")


def test_plain_reply_is_seven_bit_with_short_crlf_lines():
    raw = _message([mime.unstructured_header("Subject", "Re: Where is my order?")],
                   text="Grüße aus Köln\n" + "long " * 60 + "\n.leading dot\n", html="<p>Grüße</p>")
    assert raw.isascii()
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert max(len(line) for line in _lines(raw)) <= 78
    parsed = _parse(raw)
    assert parsed.get_content_type() == "multipart/alternative"
    assert _text(parsed.get_body(("plain",))) == "Grüße aus Köln\n" + "long " * 60 + "\n.leading dot\n"
    assert _text(parsed.get_body(("html",))) == "<p>Grüße</p>\n"
    assert parsed["MIME-Version"] == "1.0"


@pytest.mark.parametrize("name, addr", [
    ("Jane Doe", "jane@example.com"),
    ("Doe, Jane", "jane@example.com"),
    ('Jane "JD" Doe', "jane@example.com"),
    ("Jöns Ängström", "jons@example.com"),
    ("山田太郎 サポートセンター カスタマーサービス 東京本社 お問い合わせ窓口", "yamada@example.jp"),
    ("=?utf-8?q?not-an-encoded-word?=", "x@example.com"),
    ("", "bare@example.com"),
])
def test_addresses_round_trip(name, addr):
    value = str(Address(display_name=name, addr_spec=addr))  # what the composer hands over
    raw = _message([mime.address_header("To", [value, "Second <second@example.com>"])])
    assert max(len(line) for line in _lines(raw)) <= 78
    # RFC 2047 6.2: white space between adjacent encoded-words is dropped. Mail clients do; the stdlib's
    # structured-header parser keeps it, so read the names with its RFC decoder.
    header = message_from_bytes(raw, policy=policy.compat32)["To"].replace("\r\n", "")
    assert [(str(make_header(decode_header(n))), a) for n, a in getaddresses([header])] == [
        (name, addr), ("Second", "second@example.com")]
    if len(name.encode()) < 40:
        assert getaddresses([str(_parse(raw)["To"])])[0] == (name, addr)


@pytest.mark.parametrize("subject", [
    "Re: Where is my order?",
    "Re: Rückerstattung für Bestellung 4711 – bitte um schnelle Antwort, danke vielmals im Voraus",
    "Re: " + "word " * 40,
    "x" * 200,
    "注文番号 12345 の配送状況について教えてください。まだ届いていません。",
    "=?utf-8?b?SGk=?= literal",
    "",
])
def test_subjects_round_trip(subject):
    parsed = _parse(_message([mime.unstructured_header("Subject", subject)]))
    assert parsed["Subject"] == subject.strip()


def test_header_values_cannot_start_a_header_of_their_own():
    raw = _message([mime.unstructured_header("Subject", "Hi\r\nBcc: victim@example.com"),
                    mime.address_header("To", ["Eve\r\nX-Evil: 1 <eve@example.com>"]),
                    mime.token_header("In-Reply-To", "<a@b>\nX-Evil: 2")])
    parsed = _parse(raw)
    assert parsed["Bcc"] is None and parsed["X-Evil"] is None
    assert "Bcc: victim@example.com" in parsed["Subject"]


def test_long_references_fold_between_ids():
    refs = " ".join(f"<ph.{i:04d}.abcdefghijklmnop@mail.pigeonhole.test>" for i in range(10))
    raw = _message([mime.token_header("References", refs)])
    assert max(len(line) for line in _lines(raw)) <= 78
    assert _parse(raw)["References"].split() == refs.split()


@pytest.mark.parametrize("filename", [
    "invoice.pdf",
    "my invoice (final).pdf",
    "Rechnung für März.pdf",
    "Lebenslauf-" + "ä" * 80 + ".pdf",
    "契約書_2026年11月_最終版_署名済み_株式会社ピジョンホール_お客様控え.pdf",
    'quote"and;semicolon.txt',
])
def test_attachment_names_and_bytes_round_trip(filename):
    data = bytes(range(256)) * 40
    raw = _message(files=[mime.Part(filename, "application/pdf", data)])
    assert raw.isascii()
    assert max(len(line) for line in _lines(raw)) <= 78
    parsed = _parse(raw)
    assert parsed.get_content_type() == "multipart/mixed"
    (part,) = [p for p in parsed.walk() if p.get_filename()]
    assert part.get_filename() == filename
    assert part.get_content_disposition() == "attachment"
    assert part.get_content() == data


def test_inline_image_sits_in_related_with_its_content_id():
    raw = _message(html='<p><img src="cid:logo1"></p>',
                   files=[mime.Part("logo.png", "image/png", b"\x89PNG\r\n", content_id="logo1"),
                          mime.Part("card.vcf", "text/vcard", "BEGIN:VCARD\r\nFN:Jöns\r\nEND:VCARD\r\n".encode())])
    parsed = _parse(raw)
    related = [p for p in parsed.walk() if p.get_content_type() == "multipart/related"]
    assert len(related) == 1
    html, image = related[0].get_payload()
    assert html.get_content_type() == "text/html"
    assert image["Content-ID"] == "<logo1>" and image.get_content_disposition() == "inline"
    assert image.get_content() == b"\x89PNG\r\n"
    card = [p for p in parsed.walk() if p.get_filename() == "card.vcf"][0]
    assert card.get_content_type() == "text/vcard"
    assert "FN:Jöns" in _text(card)


def test_junk_content_types_and_ids_are_neutralised():
    raw = _message(files=[mime.Part("x.bin", "evil/\r\nX-Injected: 1", b"abc", content_id="a>\r\nX-Evil: 1")])
    parsed = _parse(raw)
    part = [p for p in parsed.walk() if p.get_filename() == "x.bin"][0]
    assert part.get_content_type() == "application/octet-stream"
    assert part["X-Injected"] is None and part["X-Evil"] is None
    assert "\r" not in part["Content-ID"] and "\n" not in part["Content-ID"]


def test_boundaries_cannot_occur_in_encoded_content():
    text = "--=_ph" + "0" * 24 + "\n=_ph boundary-looking text\n"
    raw = _message(text=text, html=f"<pre>{text}</pre>", files=[mime.Part("a.txt", "text/plain", text.encode())])
    parsed = _parse(raw)
    assert _text(parsed.get_body(("plain",))) == text
    assert [p.get_content_type() for p in parsed.walk()] == [
        "multipart/mixed", "multipart/alternative", "text/plain", "text/html", "text/plain"]


@pytest.mark.parametrize("name", ["", "Acme Support", "Doe, Jane", 'Say "hi"', "back\\slash", "Zoë Ünal",
                                  "dots. here", "(paren)", "[brackets]", "at@sign", "semi;colon", "日本語 サポート"])
def test_display_address_writes_what_the_stdlib_writes(name):
    from email.headerregistry import Address

    from app.mail.mime import display_address

    assert display_address(name, "help@acme.test") == str(Address(display_name=name, addr_spec="help@acme.test"))
