"""Remote content is held back on the parsed tree (`block_remote_images`), whatever quoting hides it.

Each case is raw HTML as a hostile sender would write it (not sanitised first): the blocker is
the second line behind `sanitize_html` and must hold on its own.
"""
from __future__ import annotations

import pytest

from app.inbox.display import frame_document
from app.mail.html import block_remote_images, css_fetches

REMOTE = "http://203.0.113.9/p.gif"

CASES = {
    "alt with >": f'<img alt="a>b" src={REMOTE}>',
    "title with >": f"<img title='x>y' src=\"{REMOTE}\">",
    "srcset": f'<img srcset="{REMOTE} 1x, https://203.0.113.9/q.gif 2x">',
    "background attribute": f'<table><tr><td background="{REMOTE}">cell</td></tr></table>',
    "style url()": f'<div style="background-image: url({REMOTE})">x</div>',
    "style url() escaped": '<div style="background:u\\72l(http://203.0.113.9/p.gif)">x</div>',
    "style image-set()": '<div style="background-image:image-set(\'http://203.0.113.9/p.gif\' 1x)">x</div>',
    "style element": f"<style>body {{ background: url('{REMOTE}') }}</style><p>x</p>",
    "style @import": '<style>@import "http://203.0.113.9/s.css";</style><p>x</p>',
    "picture source": f'<picture><source srcset="{REMOTE}"><img src="data:image/gif;base64,R0lGOD"></picture>',
    "input type=image": f'<input type="image" src="{REMOTE}">',
    "video poster": f'<video poster="{REMOTE}"></video>',
    "svg image href": f'<svg><image href="{REMOTE}"></image></svg>',
    "svg image xlink:href": f'<svg><image xlink:href="{REMOTE}"></image></svg>',
    "protocol-relative": '<img src="//203.0.113.9/p.gif">',
    "link stylesheet": f'<link rel="stylesheet" href="{REMOTE}"><p>x</p>',
    "object data": f'<object data="{REMOTE}"></object>',
    "newline in scheme": '<img src="ht\ntp://203.0.113.9/p.gif">',
}


@pytest.mark.parametrize("html", CASES.values(), ids=CASES.keys())
def test_every_way_to_fetch_is_blocked_and_counted(html):
    out, blocked = block_remote_images(html)
    assert "203.0.113.9" not in out, out
    assert blocked >= 1


@pytest.mark.parametrize("html", CASES.values(), ids=CASES.keys())
def test_the_frame_offers_show_images_for_each_and_then_keeps_the_source(html):
    hidden = frame_document(html, show_images=False)
    assert hidden.blocked_images >= 1
    assert "203.0.113.9" not in hidden.srcdoc
    shown = frame_document(html, show_images=True)
    assert shown.blocked_images == 0


def test_the_alt_probe_blocks_the_source_and_marks_the_image():
    """The probe that got through the regular expression: `>` inside a quoted alt."""
    out, blocked = block_remote_images(f'<p>Hi</p><img alt="a>b" src={REMOTE}>')
    assert blocked == 1
    assert REMOTE not in out and 'class="ph-blocked"' in out and 'alt="a&gt;b"' in out
    shown, none = block_remote_images(f'<img alt="a>b" src={REMOTE}>', show=True)
    assert none == 0 and f'src="{REMOTE}"' in shown


def test_links_data_images_and_text_are_kept_and_relative_or_script_sources_dropped():
    html = ('<p>See <a href="https://example.test/page">our page</a></p>'
            '<img src="data:image/png;base64,iVBORw0KGgo=" alt="inline">'
            '<img src="javascript:alert(1)"><img src="local.png"><div style="color: red">red</div>')
    out, blocked = block_remote_images(html)
    assert blocked == 0
    assert 'href="https://example.test/page"' in out and "data:image/png;base64,iVBORw0KGgo=" in out
    assert "javascript:" not in out and "local.png" not in out and 'style="color: red"' in out
    shown, _ = block_remote_images(html, show=True)
    assert "javascript:" not in shown and "local.png" not in shown


def test_cid_sources_become_inline_data_or_go():
    out, blocked = block_remote_images('<img src="cid:logo@x"><img src="cid:gone@x">',
                                       inline_images={"logo@x": "data:image/png;base64,AAAA"})
    assert blocked == 0
    assert 'src="data:image/png;base64,AAAA"' in out and "cid:" not in out


def test_nothing_to_block_means_no_show_images_button_and_junk_never_raises():
    assert block_remote_images("<p>plain</p>") == ("<p>plain</p>", 0)
    assert block_remote_images("") == ("", 0)
    for junk in ("<", "<<img src=", "\x00<p>", "</div></div><img src=http://203.0.113.9/>"):
        out, _ = block_remote_images(junk)
        assert "203.0.113.9" not in out


def test_css_fetches_reads_escapes_and_comments():
    assert css_fetches("background: url(http://x/y)")
    assert css_fetches("background: URL( 'x.png' )")
    assert css_fetches("background: ur\\l(http://x/y)")
    assert css_fetches("@im\\port 'x.css'")
    assert css_fetches("background: -webkit-image-set('http://x/a.png' 1x)")
    assert not css_fetches("background: url(data:image/png;base64,AAAA)")
    assert not css_fetches("color: red; font-family: 'Segoe UI', Arial")


def test_the_composer_holds_remote_sources_aside_and_saving_gives_them_back():
    from app.mail.html import release_held_images, sanitize_html

    html = (f'<p>Fwd</p><img alt="a>b" src="{REMOTE}"><img src="cid:logo@x">'
            f'<div style="background:url({REMOTE})">x</div>')
    held, count = block_remote_images(html, hold=True)
    assert count == 2 and f' src="{REMOTE}"' not in held and f'data-ph-src="{REMOTE}"' in held
    assert 'src="cid:logo@x"' in held  # only remote sources are touched
    back = sanitize_html(release_held_images(held))
    assert f'src="{REMOTE}"' in back and "data-ph-" not in back and "cid:logo@x" in back
    shown, none = block_remote_images(html, hold=True, show=True)
    assert none == 0 and f'src="{REMOTE}"' in shown
