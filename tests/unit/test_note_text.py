"""`note_html`: a note typed as plain text becomes safe HTML (no app needed)."""
from __future__ import annotations

from types import SimpleNamespace

from app.inbox.notes import note_html
from app.mail.html import sanitize_html


def test_links_only_for_safe_schemes_and_trailing_punctuation_left_out():
    html = note_html("See https://example.com/a_(b). Or ftp://x.example and javascript:alert(1), mailto:a@b.example!")
    assert '<a href="https://example.com/a_(b">https://example.com/a_(b</a>).' in html
    assert '<a href="mailto:a@b.example">mailto:a@b.example</a>!' in html
    assert "ftp://x.example" in html and 'href="ftp' not in html and 'href="javascript' not in html


def test_html_is_escaped_and_line_breaks_and_paragraphs_kept():
    html = note_html('<a href="javascript:x">hi</a>\nline two\n\nnew "paragraph"')
    assert html == ('<p>&lt;a href=&quot;javascript:x&quot;&gt;hi&lt;/a&gt;<br>line two</p>'
                    '<p>new &quot;paragraph&quot;</p>')
    assert sanitize_html(html).count("<a") == 0


def test_mentions_marked_only_for_given_colleagues_and_not_inside_addresses_or_links():
    bea = SimpleNamespace(name="Bea <Buddy>", email="bea@example.test")
    html = note_html("@bea, ask bob@bea.example or @Olga; https://x.example/@bea", {"bea": bea})
    assert html.count('class="mention"') == 1
    assert 'title="Bea &lt;Buddy&gt;">@bea</strong>,' in html
    assert "bob@bea.example" in html and "@Olga" in html and 'href="https://x.example/@bea"' in html
