"""The sanitiser's allow-list of CSS properties (docs/templates.md) and the images it keeps or drops.

White text written on a dark background must keep its background (it came out white on white when
`background` was dropped and `color` kept); an image whose source is removed must not stay as an
empty `<img>`; images of headers and footers are sent inline (`cid:`) and shown from our own URL only
in the editor.
"""
from __future__ import annotations

import pytest

from app.mail.html import ALLOWED_STYLE_PROPERTIES, sanitize_html
from app.mail.inline_images import content_id, image_sha256, image_sha256s, rewrite_image_sources, sniff_image

SHA = "ab" * 32


def test_white_on_dark_keeps_its_background():
    html = '<div style="background: #1d2330; color: #ffffff; padding: 8px">Acme Support</div>'
    assert sanitize_html(html) == '<div style="background:#1d2330;color:#ffffff;padding:8px">Acme Support</div>'


@pytest.mark.parametrize("style, kept", [
    ("background: #222 url(https://tracker.example/p.gif) no-repeat; color: #fff", "background-color:#222;color:#fff"),
    ("background: url('https://tracker.example/p.gif'); color: white", "color:white"),
    ("background: rgb(10, 20, 30) image-set('a.png' 1x); color: white", "background-color:rgb(10, 20, 30);color:white"),
    ("background-image: url(https://x.example/a.png); background-color: navy", "background-color:navy"),
    ("BACKGROUND: navy", "background:navy"),
])
def test_a_background_keeps_its_colour_never_its_image(style, kept):
    assert sanitize_html(f'<p style="{style}">x</p>') == f'<p style="{kept}">x</p>'


def test_properties_outside_the_allow_list_are_dropped():
    html = '<p style="position: fixed; top: 0; z-index: 9; color: red; text-align: center; behavior: url(x.htc)">x</p>'
    assert sanitize_html(html) == '<p style="color:red;text-align:center">x</p>'
    assert {"background", "background-color", "color", "text-align", "font-weight"} <= ALLOWED_STYLE_PROPERTIES
    assert not {"position", "z-index", "behavior", "background-image"} & ALLOWED_STYLE_PROPERTIES


def test_an_image_whose_source_is_removed_is_removed_whole():
    html = ('<p>a<img src="/relative.png" alt="rel"><img src="javascript:alert(1)"><img alt="none">'
            '<img src="cid:logo" alt="x>y">b</p>')
    assert sanitize_html(html) == '<p>a<img src="cid:logo" alt="x>y">b</p>'
    assert sanitize_html('<img src="https://example.com/a.png">', remote_images=False) == ""
    assert sanitize_html('<img src="https://example.com/a.png">') == '<img src="https://example.com/a.png">'


def test_template_images_are_named_by_content_id_and_rewritten_on_the_tree():
    assert sniff_image(b"\x89PNG\r\n\x1a\nrest") == "image/png" and sniff_image(b"GIF89a") == "image/gif"
    assert sniff_image(b"\xff\xd8\xff\xe0") == "image/jpeg" and sniff_image(b"<svg onload=x>") is None
    cid = "cid:" + content_id(SHA)
    assert image_sha256(cid) == SHA and image_sha256("cid:logo") is None
    html = f'<p>Hi</p><img src="{cid}" alt="Logo"><img src="cid:other">'
    assert image_sha256s(html + html) == [SHA]
    shown = rewrite_image_sources(html, lambda src: f"/img/{image_sha256(src)}" if image_sha256(src) else src)
    assert shown == f'<p>Hi</p><img src="/img/{SHA}" alt="Logo"><img src="cid:other">'
    assert rewrite_image_sources(html, lambda src: None) == "<p>Hi</p>"
    assert rewrite_image_sources("<p>no image</p>", lambda src: None) == "<p>no image</p>"
