"""The one renderer: body layout, placeholders, headers, platform Bcc/Reply-To, attachments."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from email import message_from_bytes, policy

import pytest

from app.mail.render import (
    Draft, OutgoingAttachment, QuotedMessage, TemplateError, capped_references, check_template,
    envelope_recipients, render_message, render_parts,
)


@dataclass
class Sender:
    address: str = "support@mail.pigeonhole.test"
    display_name: str = "Söpport Team"
    forwarded_from: str | None = "support@acme.test"
    template_enabled: bool = True
    header_html: str = "<p>Hello {{ customer_name }}</p>"
    footer_html: str = "<p>— {{agent_name}}, {{ display_name }}</p>"
    is_platform: bool = True


def _draft(**kw):
    base = dict(to=["Carol <carol@example.com>"], subject="Re: Wo ist mein Päckchen?",
                body_html="<p>It ships <b>today</b>.</p><script>x()</script>",
                placeholders={"customer_name": "Carol <3", "agent_name": "Alex"},
                message_id="<ph.tok12345.abc@mail.pigeonhole.test>")
    base.update(kw)
    return Draft(**base)


def test_parts_have_header_body_footer_and_escaped_placeholders():
    html, text = render_parts(Sender(), _draft())
    assert html.index("Hello Carol &lt;3") < html.index("It ships <b>today</b>") < html.index("— Alex, Söpport Team")
    assert "<script>" not in html and "x()" not in html
    assert text.startswith("Hello Carol <3\n\nIt ships today.\n\n— Alex, Söpport Team")


def test_plain_text_keeps_a_blank_line_between_header_body_and_footer_of_bare_text():
    sender = Sender(header_html="Acme Help for {{ customer_name }}", footer_html="Kind regards, {{ display_name }}")
    _html, text = render_parts(sender, _draft(body_html="Thanks for writing.", signature_html="Alex"))
    assert text.startswith("Acme Help for Carol <3\n\nThanks for writing.\nAlex\n\nKind regards, Söpport Team"), text


def test_template_off_means_no_header_or_footer():
    html, text = render_parts(Sender(template_enabled=False), _draft())
    assert "Hello" not in html and "Söpport" not in text


def test_unknown_placeholder_is_a_clear_error():
    check_template("<p>{{ customer_name }} {{agent_name}}</p>")
    with pytest.raises(TemplateError, match=r"Unknown placeholder: \{\{ custmer \}\}"):
        check_template("<p>{{ custmer }}</p>")


def test_quoted_history_in_blockquote_and_quoted_text():
    q = QuotedMessage("Carol <carol@example.com>", datetime(2026, 11, 2, 9, 30, tzinfo=timezone.utc), "<p>Where is it?</p>")
    html, text = render_parts(Sender(), _draft(quoted=q))
    assert '<blockquote type="cite"' in html and "Where is it?" in html
    assert "On Mon, 02 Nov 2026 09:30, Carol <carol@example.com> wrote:\n> Where is it?" in text


def test_quoted_text_part_uses_the_stored_plain_text_when_there_is_one():
    q = QuotedMessage("Carol <carol@example.com>", None, "<p>Where is it?</p>", text="Where is it?\n\nCarol\n")
    _html, text = render_parts(Sender(), _draft(quoted=q))
    assert "Carol <carol@example.com> wrote:\n> Where is it?\n>\n> Carol\n" in text


def test_platform_address_puts_forwarded_from_in_bcc_and_reply_to():
    msg = render_message(Sender(), _draft(cc=["dan@example.com"], bcc=["boss@acme.test"]))
    parsed = message_from_bytes(msg.as_bytes(), policy=policy.default)
    assert parsed["Reply-To"] == "support@acme.test"
    assert parsed["Bcc"] is None  # never in the headers
    assert parsed["From"].addresses[0].display_name == "Söpport Team"
    assert b"=?utf-8?" in msg.as_bytes().split(b"\r\n\r\n")[0]  # RFC 2047 in the header block
    assert envelope_recipients(Sender(), _draft(cc=["dan@example.com"], bcc=["boss@acme.test"])) == [
        "carol@example.com", "dan@example.com", "boss@acme.test", "support@acme.test"]


def test_custom_address_has_no_reply_to_and_no_extra_bcc():
    sender = Sender(address="help@acme.test", forwarded_from=None, is_platform=False)
    parsed = message_from_bytes(render_message(sender, _draft()).as_bytes(), policy=policy.default)
    assert parsed["Reply-To"] is None
    assert envelope_recipients(sender, _draft()) == ["carol@example.com"]


def test_threading_headers_and_automatic_flag():
    refs = [f"<r{i}@x>" for i in range(15)]
    parsed = message_from_bytes(render_message(Sender(), _draft(
        in_reply_to="<r14@x>", references=refs, automatic=True)).as_bytes(), policy=policy.default)
    assert parsed["Message-ID"] == "<ph.tok12345.abc@mail.pigeonhole.test>"
    assert parsed["In-Reply-To"] == "<r14@x>"
    assert parsed["References"].split() == capped_references(refs) == ["<r0@x>"] + refs[-9:]
    assert parsed["Auto-Submitted"] == "auto-replied"


def test_attachments_inline_images_and_non_ascii_filenames():
    atts = [OutgoingAttachment("Rechnung für März.pdf", "application/pdf", b"%PDF-1.4"),
            OutgoingAttachment("logo.png", "image/png", b"\x89PNG", content_id="logo1"),
            OutgoingAttachment("notes.txt", "text/plain", b"hello")]
    raw = render_message(Sender(), _draft(attachments=atts, body_html='<img src="cid:logo1">')).as_bytes()
    assert b"filename*=utf-8''Rechnung%20f%C3%BCr%20M%C3%A4rz.pdf" in raw
    parsed = message_from_bytes(raw, policy=policy.default)
    names = {p.get_filename(): p for p in parsed.walk() if p.get_filename()}
    assert set(names) == {"Rechnung für März.pdf", "logo.png", "notes.txt"}
    assert names["logo.png"]["Content-ID"] == "<logo1>" and names["logo.png"].get_content_disposition() == "inline"
    assert names["Rechnung für März.pdf"].get_content() == b"%PDF-1.4"
    assert names["notes.txt"].get_content_type() == "text/plain"
    assert parsed.get_body(("html",)).get_content().count('src="cid:logo1"') == 1
