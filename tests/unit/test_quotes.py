"""Quoted history: one detector (`app.mail.quotes`) for the stored visible text and the folded tiles.

The fixtures in tests/data/mail/quotes/ are ours, one small message per case (text and HTML
alternatives): per language Outlook's header block, the original-message separator and the
attribution line; expected.json says what the customer wrote and what must be folded.
"""
from __future__ import annotations

import html as _html
import json
import re
import time
from pathlib import Path

import pytest

from app.inbox.display import split_body
from app.mail.parse import parse_message
from app.mail.quotes import quote_start_in_html, quote_start_in_text, visible_reply

FIXTURES = Path(__file__).resolve().parent.parent / "data" / "mail" / "quotes"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())


def words(html: str) -> str:
    """The text of a body's HTML as a reader sees it (tags out, entities decoded, spaces collapsed)."""
    return " ".join(_html.unescape(re.sub(r"<[^>]+>", " ", html)).split())


def test_every_fixture_has_an_expectation_and_every_language_its_three_forms():
    assert sorted(EXPECTED) == sorted(p.name for p in FIXTURES.glob("*.eml"))
    for lang in ("en", "de", "fr", "es", "nl", "it", "pt", "sv", "pl", "zh", "ja"):
        for form in ("outlook", "separator", "attribution"):
            assert f"{lang}-{form}.eml" in EXPECTED


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_is_folded_in_visible_text_and_in_both_tiles(name):
    expected = EXPECTED[name]
    parsed = parse_message((FIXTURES / name).read_bytes())
    assert parsed.error is None and parsed.text
    kept, dropped = expected["kept"], expected["dropped"]
    # the stored visible text
    assert kept in parsed.visible_text, parsed.visible_text
    if dropped is None:
        assert parsed.visible_text == parsed.text.strip()
    else:
        assert not any(d in parsed.visible_text for d in dropped), parsed.visible_text
    # the tile of the HTML body and the tile of the text body
    bodies = [split_body(None, parsed.text)] + ([split_body(parsed.html, parsed.text)] if parsed.html else [])
    for body in bodies:
        main, quoted = words(body.main_html), words(body.quoted_html)
        assert kept in main, (main, quoted)
        if dropped is None:
            assert not body.has_quote and quoted == "", quoted
        else:
            assert body.has_quote, main
            assert not any(d in main for d in dropped), main
            assert all(d in quoted for d in dropped), quoted


def test_the_customers_own_from_sentence_is_not_a_header_block():
    text = "From: my account page I see the invoice twice.\nCan you check?"
    assert quote_start_in_text("Hello,\n\n" + text) is None
    assert visible_reply("Hello,\n\n" + text) == "Hello,\n\n" + text
    # one label line followed by a second one is a block, in any of the languages
    assert quote_start_in_text("Hello,\n\nVon: Alex\nBetreff: Rechnung\n\nold") == len("Hello,\n\n")


def test_gmail_blockquote_is_still_folded_and_a_leading_quote_is_not():
    html = ('<div dir="ltr">Thanks!</div><div class="gmail_quote"><div class="gmail_attr">On Mon, Alex wrote:</div>'
            '<blockquote class="gmail_quote">old words</blockquote></div>')
    body = split_body(html, "")
    assert words(body.main_html) == "Thanks!" and "old words" in body.quoted_html
    assert quote_start_in_html("<blockquote>quoted first</blockquote><p>then mine</p>") is None


def test_apple_mail_attribution_goes_with_the_quote():
    html = ('<div>Sounds good.</div><div><br></div><div>On 3 Mar 2025, at 10:00, Alex &lt;a@example.com&gt; wrote:'
            '</div><blockquote type="cite"><div>Lunch?</div></blockquote>')
    body = split_body(html, "")
    assert words(body.main_html) == "Sounds good." and "wrote:" in words(body.quoted_html)


def test_outlook_divider_and_header_div_are_cut_before_the_divider():
    html = ('<p class="MsoNormal">Done.</p><hr style="display:inline-block;width:98%"><div dir="ltr">'
            '<b>From:</b> Alex<br><b>Sent:</b> Monday<br><b>Subject:</b> Visit</div><div>Come?</div>')
    cut = quote_start_in_html(html)
    assert html[cut:].startswith("<hr")
    html = ('<p>Done.</p><p>&nbsp;</p><div style="border:none;border-top:solid #B5C4DF 1.0pt;padding:3.0pt 0cm 0cm">'
            '<p><b>De&nbsp;:</b> Alex<br><b>Envoyé&nbsp;:</b> lundi</p></div>')
    assert html[:quote_start_in_html(html)] == "<p>Done.</p>"  # the empty paragraph goes with the quote


def test_text_cut_takes_the_divider_above_the_header_block_along():
    text = "Fine.\n\n ------------------------------\n\n*From:* Alex [mailto:a@x]\n*Sent:* Monday\n\nold"
    assert text[quote_start_in_text(text):].startswith(" -----")
    assert visible_reply(text) == "Fine."


def test_trailing_quote_block_and_its_intro_line():
    text = "Here you go.\n\nAlex said:\n> the log\n> more\n"
    assert visible_reply(text) == "Here you go."
    assert visible_reply("> only a quote\n> more") == "> only a quote\n> more"


def test_signature_and_list_footer_after_the_quote_still_fold():
    text = ("Agreed.\n\nOn Fri, Feb 24, 2012 at 10:19 AM, <a@example.com> wrote:\n\n> Old words\n\n-- \n"
            "*Sam | Support*\n")
    assert visible_reply(text) == "Agreed."


def test_hostile_input_stays_fast():
    """No pattern may backtrack: a few of the worst shapes for each rule, 2 MB each, well under a second."""
    texts = [
        "On " * 700_000,                                   # openers without an end
        ("From: x\n" * 250_000),                           # one label, over and over
        ("From: x\nSent: y\n" * 120_000),                  # headers everywhere
        ("> q\n" * 500_000),                               # a trailing quote of the whole size
        ("x" * 2_000_000),                                 # one long line
        ("-" * 2_000_000),
    ]
    htmls = [
        "<div" * 500_000,                                  # tags that never close
        '<div class="' + "a" * 2_000_000,
        "<blockquote>" * 170_000,                          # containers with no text before them
        "<p>From: x<br>Sent: y</p>" * 80_000,
        "<b>" + "x" * 2_000_000,
    ]
    for text in texts:
        started = time.perf_counter()
        visible_reply(text)
        split_body(None, text, quote=False)
        assert time.perf_counter() - started < 2.0, text[:20]
    for html in htmls:
        started = time.perf_counter()
        quote_start_in_html(html)
        assert time.perf_counter() - started < 2.0, html[:20]


def test_sentences_that_look_like_attributions_are_not_cut():
    for text in ("Hello,\n\nOn Monday I wrote to you about this:\nthe parcel never came.\n\nSam",
                 "Hallo,\n\nAm Montag schrieb ich Ihnen Folgendes:\ndas Paket kam nie an.\n\nSam",
                 "Hello,\n\nThis is what my colleague wrote:\nthe parcel never came.\n\nSam"):
        assert quote_start_in_text(text) is None, text
    assert quote_start_in_text("Ja.\n\nAm 03.03.25 um 10:00 schrieb Alex:\n> Passt das?") == len("Ja.\n\n")
