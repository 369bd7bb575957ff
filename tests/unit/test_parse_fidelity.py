"""Header and charset fidelity of `parse_message`: our own fixtures in tests/data/mail/ (written by
tests/data/mail/make_fidelity.py), one small message per case.

Raw 8-bit and mislabelled headers, bodies without (or with a wrong) charset, a header block broken
in the middle, the sender fallbacks, attachment names as the sender wrote them.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from app.mail.parse import parse_message

DATA = Path(__file__).resolve().parents[1] / "data" / "mail"


def parse(name: str, **kw):
    return parse_message((DATA / name).read_bytes(), **kw)


def names(parsed) -> list[str]:
    return [a.filename for a in parsed.attachments]


def assert_clean(*texts: str) -> None:
    for text in texts:
        assert "\ufffd" not in text, text


# --- 1. charsets: raw 8-bit headers, mislabelled encoded words, bodies -----------------------------

def test_raw_utf8_subject_display_name_and_file_name():
    p = parse("header-raw-utf8.eml")
    assert p.subject == "Problème facture n° 1234"
    assert (p.from_name, p.from_addr) == ("Frédéric Dupré", "frederic@example.fr")
    assert names(p) == ["Relevé été.pdf"]
    assert not p.defects  # UTF-8 headers are RFC 6532's, nothing to note


def test_raw_latin1_subject_display_name_and_file_name_read_as_windows_1252():
    p = parse("header-raw-latin1.eml")
    assert p.subject == "Problème facture n° 1234 – urgent"
    assert p.from_name == "Frédéric Dupré"
    assert names(p) == ["Relevé été.pdf"]
    assert p.text.strip() == "Voilà la facture."
    assert any(d.startswith("subject: raw 8-bit") and "windows-1252" in d for d in p.defects), p.defects


@pytest.mark.parametrize("name, subject, note", [
    ("header-gb2312-really-gbk.eml", "关于朱镕基的发票", "subject: declared gb2312, read as gb18030"),
    ("header-ks_c_5601.eml", "똠방각하 견적서", "subject: declared ks_c_5601-1987, read as cp949"),
    ("header-latin1-really-cp1252.eml", "€ 50 – “Angebot”", "subject: declared iso-8859-1, read as windows-1252"),
    ("header-latin1-really-utf8.eml", "Problème résolu", "subject: declared iso-8859-1, read as utf-8"),
    ("header-shift_jis-cp932.eml", "①請求書～確認", "subject: declared shift_jis, read as cp932"),
])
def test_mislabelled_encoded_words_are_read_in_the_superset_and_the_winner_is_recorded(name, subject, note):
    p = parse(name)
    assert p.subject == subject
    assert note in p.defects


def test_a_gbk_display_name_declared_gb2312():
    p = parse("header-gb2312-really-gbk.eml")
    assert (p.from_name, p.from_addr) == ("朱镕基", "zhu@example.cn")
    assert p.text.strip() == "发票在附件里。"


@pytest.mark.parametrize("name, text, note", [
    ("body-no-charset-latin1.eml", "Ma commande n'est pas arrivée. Merci de vérifier où elle est.",
     "body: no charset, read as windows-1252"),
    ("body-utf8-declared-really-cp1252.eml", "Ça coûte 50 € – trop cher.",
     "body: declared utf-8, read as windows-1252"),
    ("body-no-charset-cyrillic.eml", "Здравствуйте! Мой заказ номер 17", "body: no charset, detected windows-1251"),
])
def test_bodies_without_or_with_a_wrong_charset(name, text, note):
    p = parse(name)
    assert p.text.startswith(text) and "\ufffd" not in p.text
    assert note in p.defects


def test_the_chain_never_runs_the_detector_on_short_latin_or_on_utf8():
    # A detector reads "Problème" as cp1250 and "Größe" as EBCDIC; the chain must not ask it.
    from app.mail.charsets import decode_text

    assert decode_text("Größe".encode("cp1252"), None) == ("Größe", "no charset, read as windows-1252")
    assert decode_text("Größe".encode(), None) == ("Größe", None)
    assert decode_text(b"plain", None) == ("plain", None)
    text, note = decode_text(b"\x81\x8d\x8f junk \xff", "utf-8")  # nothing reads it as declared: it says so
    assert note is not None and note.startswith("declared utf-8, ") and text.endswith(" junk \u044f")


# --- 2. a header block broken in the middle ------------------------------------------------------

def test_a_broken_line_in_the_header_block_is_skipped_and_the_headers_after_it_kept():
    p = parse("broken-header-line.eml")
    assert (p.from_name, p.from_addr) == ("Carla Customer", "carla@example.com")
    assert p.subject == "Where is my order?" and p.message_id == "<broken-line@example.com>"
    assert p.text.strip() == "My order 17 has not arrived."
    assert any("MissingHeaderBodySeparatorDefect" in d and "line 2" in d and "skipped" in d for d in p.defects)
    assert "no sender address" not in p.defects


def test_a_lost_subject_continuation_is_folded_back():
    p = parse("broken-header-subject-fold.eml")
    assert p.subject == "Where is my order number 17? It has not arrived"
    assert p.from_addr == "carla@example.com" and p.text.strip() == "Hello."
    assert any("folded into Subject" in d for d in p.defects)


def test_a_body_that_starts_with_header_like_lines_stays_the_body():
    p = parse("body-looks-like-headers.eml")
    assert p.subject == "My details" and p.from_addr == "carla@example.com"
    assert p.text.startswith("Order: 17\nName: Carla Customer\nFrom: my phone")
    assert not any("recovered" in d for d in p.defects)


def test_a_body_without_a_blank_line_before_it_is_not_taken_for_headers():
    p = parse("body-without-separator.eml")
    assert p.subject == "Quick question" and p.from_addr == "carla@example.com"
    assert "Hello there, a question about my order" in p.text and "Thanks: Carla" in p.text
    assert "header: MissingHeaderBodySeparatorDefect" in p.defects


# --- 3. no usable From -------------------------------------------------------------------------

@pytest.mark.parametrize("name, source, name_addr, label", [
    ("no-from-sender.eml", "sender", ("Office Desk", "desk@example.org"), "Sender"),
    ("no-from-reply-to.eml", "reply-to", ("Dana Doe", "dana@example.org"), "Reply-To"),
    ("no-from-return-path.eml", "return-path", ("", "bounces+dana@example.org"), "Return-Path"),
])
def test_without_a_usable_from_the_sender_is_taken_from_the_next_header(name, source, name_addr, label):
    p = parse(name)
    assert (p.from_name, p.from_addr) == name_addr
    assert p.sender_source == source
    assert f"no usable From; sender taken from {label}" in p.defects
    assert "no sender address" not in p.defects and p.error is None


def test_the_envelope_sender_comes_before_the_return_path_header_and_a_null_one_is_none():
    assert parse("no-from-return-path.eml", envelope_from="<env@example.org>").from_addr == "env@example.org"
    p = parse("no-address-at-all.eml", envelope_from="<>")
    assert p.from_addr == "" and p.sender_source is None and "no sender address" in p.defects


def test_from_wins_and_is_not_marked():
    p = parse("header-raw-utf8.eml")
    assert p.sender_source is None and not any("sender taken" in d for d in p.defects)


# --- 4. attachment names -----------------------------------------------------------------------

def test_rfc2231_continuations_are_joined_as_sent_with_their_charset():
    p = parse("attachment-rfc2231-continuation.eml")
    assert names(p) == ["Quarterly report – Q3 2024  final.pdf", "Lieferschein Müller.pdf"]


def test_raw_8bit_file_names_utf8_and_windows_1252():
    p = parse("attachment-raw-8bit-name.eml")
    assert names(p) == ["Facture été.pdf", "Übersicht März.pdf"]
    assert_clean(*names(p))


def test_name_on_content_type_and_rfc2047_inside_a_quoted_name():
    p = parse("attachment-name-on-content-type.eml")
    assert names(p) == ["invoice 42.pdf", "Angebot Müller.pdf"]
    assert all(a.named for a in p.attachments)


def test_a_delivery_reports_named_parts_keep_their_names_and_the_bounce_is_still_read():
    p = parse("delivery-report-named-parts.eml")
    assert names(p) == ["details.txt", "headers.txt"]
    details = p.attachments[0]
    assert details.content_type == "message/delivery-status" and b"Final-Recipient: rfc822; nobody@example.com" \
        in details.data and details.size == len(details.data)
    assert p.bounce is not None and p.bounce.recipients == ["nobody@example.com"]
    assert p.bounce.original_message_id == "<out-1@mail.pigeonhole.test>"


def test_parse_notes_are_the_defects_one_per_line():
    p = parse("no-from-reply-to.eml")
    assert p.parse_notes == "\n".join(p.defects) and "sender taken from Reply-To" in p.parse_notes
    assert parse("header-raw-utf8.eml").parse_notes is None


def test_address_with_two_at_signs_reads_its_first_addr_spec():
    # "billing!ana@gateway@relay.example.test" (an old relay route): RFC 5322 reads local-part@domain up to the
    # second "@", as MimeKit does; the stdlib's getaddresses leaves "@relay.example.test", with no local part.
    parsed = parse_message((DATA / "from-uucp-route.eml").read_bytes())
    assert parsed.from_addr == "billing!ana@gateway"
    assert parsed.sender_source is None


def test_field_with_8bit_name_does_not_end_the_header_block():
    # "X-Grüße: hallo" (8-bit bytes in a field name, after an obsolete "Subject :"): the stdlib ends the
    # header block there and shows To and Date as body text; mime4j skips the line and reads on, as we do.
    parsed = parse_message((DATA / "header-8bit-field-name.eml").read_bytes())
    assert parsed.subject == "Refund for order 77"
    assert parsed.to == [("", "desk@example.test")]
    assert parsed.date is not None
    assert parsed.text.strip() == "Please refund order 77."
    assert any("8-bit bytes in its name" in d for d in parsed.defects)
