"""How a message is shown: quote folding, the frame document, remote and cid: images."""
from __future__ import annotations

import base64
from types import SimpleNamespace

from app.inbox.display import FRAME_STYLE, FRAME_STYLE_HASH, frame_document, inline_image_data, snippet, split_body


def test_html_quote_is_split_at_the_first_quote_container():
    html = ('<p>Thanks, that works.</p><div class="gmail_quote"><div>On Mon, Alex wrote:</div>'
            '<blockquote>Try again</blockquote></div>')
    body = split_body(html, "")
    assert "Thanks, that works." in body.main_html and "gmail_quote" not in body.main_html
    assert "Try again" in body.quoted_html and "On Mon, Alex wrote:" in body.quoted_html


def test_a_message_that_starts_with_a_quote_is_not_hidden():
    body = split_body("<blockquote>Quoted first</blockquote><p>then my answer</p>", "")
    assert "then my answer" in body.main_html and body.quoted_html == ""


def test_text_quote_after_the_attribution_line():
    text = "Yes please.\n\nOn Monday, 3 March 2025, Alex wrote:\n> Shall we?\n> Regards"
    body = split_body(None, text)
    assert "Yes please." in body.main_html and "Shall we?" not in body.main_html
    assert "On Monday, 3 March 2025, Alex wrote:" in body.quoted_html and "Shall we?" in body.quoted_html
    assert split_body(None, "> only a quote").quoted_html == ""


def test_frame_blocks_remote_images_until_shown_and_keeps_a_strict_csp():
    html = '<p>Logo</p><img src="https://tracker.example/p.gif" alt="x"><img src="data:image/png;base64,AAAA">'
    hidden = frame_document(html, show_images=False)
    assert hidden.blocked_images == 1
    assert "tracker.example" not in hidden.srcdoc and "data:image/png;base64,AAAA" in hidden.srcdoc
    assert "default-src 'none'; img-src data:;" in hidden.srcdoc
    shown = frame_document(html, show_images=True)
    assert shown.blocked_images == 0 and 'src="https://tracker.example/p.gif"' in shown.srcdoc
    assert "img-src data: http: https:" in shown.srcdoc
    assert f"<style>{FRAME_STYLE}</style>" in shown.srcdoc and FRAME_STYLE_HASH.startswith("sha256-")
    assert '<base target="_blank">' in shown.srcdoc


def test_cid_images_are_inlined_from_stored_attachments():
    png = b"\x89PNG\r\n\x1a\nfake"
    attachments = [SimpleNamespace(content_id="<logo@x>", content_type="image/png", size=len(png), sha256="a"),
                   SimpleNamespace(content_id=None, content_type="application/pdf", size=3, sha256="b")]
    images = inline_image_data(attachments, {"a": png}.__getitem__)
    assert images == {"logo@x": "data:image/png;base64," + base64.b64encode(png).decode()}
    frame = frame_document('<img src="cid:logo@x"><img src="cid:missing@x">', show_images=False,
                           inline_images=images)
    assert images["logo@x"] in frame.srcdoc and "cid:missing" not in frame.srcdoc and frame.blocked_images == 0


def test_frame_heights_grow_with_content_and_snippets_are_one_line():
    assert frame_document("<p>hi</p>", show_images=False).height_class == "h1"
    assert frame_document("<p>x</p>" * 60, show_images=False).height_class == "h6"
    assert snippet("a\n b   c") == "a b c"
    assert snippet("x" * 300, 10) == "xxxxxxxxx…"


def test_message_display_is_cached_by_content_and_images_setting(monkeypatch):
    from app.inbox import display

    display._cache.clear()
    calls = []
    real = display.split_body
    monkeypatch.setattr(display, "split_body", lambda html, text, **kw: calls.append(html) or real(html, text, **kw))
    html = '<p>Hi <img src="https://t.example/a.gif"></p><blockquote>old</blockquote>'
    first = display.message_display(html, "Hi")
    assert first == display.message_display(html, "Hi") and len(calls) == 1  # the second came from the cache
    assert first.has_quote and first.frame.blocked_images == 1 and "t.example" not in first.frame.srcdoc
    shown = display.message_display(html, "Hi", show_images=True)
    assert "t.example/a.gif" in shown.frame.srcdoc and len(calls) == 2  # its own entry
    edited = display.message_display(html.replace("Hi", "Hello"), "Hi")
    assert "Hello" in edited.frame.srcdoc and len(calls) == 3  # other content, other key
    # the same text in another field is another key (parts are length-prefixed)
    assert display._digest("frame:0", "ab", "c") != display._digest("frame:0", "a", "bc")
    text_only = display.message_display(None, "Plain words")
    assert "Plain words" in text_only.frame.srcdoc and not text_only.has_quote
    inline = display.message_display('<img src="cid:x@y">', "", inline_images={"x@y": "data:image/png;base64,AA"})
    assert "data:image/png;base64,AA" in inline.frame.srcdoc
    assert len(display._cache) == 4  # frames with inline images are not kept
    assert display.sanitized_note('<p onclick="x()">Note</p>') == "<p>Note</p>"


def test_whether_there_is_a_quote_is_known_without_cleaning_it():
    html = "<p>New words</p><blockquote>old words</blockquote>"
    full, presence = split_body(html, ""), split_body(html, "", quote=False)
    assert full.has_quote and presence.has_quote and presence.main_html == full.main_html
    assert "old words" in full.quoted_html and presence.quoted_html == ""
    assert not split_body("<p>Only new</p>", "", quote=False).has_quote
    assert split_body(None, "Yes.\n\nOn Monday, Alex wrote:\n> Shall we?", quote=False).has_quote
