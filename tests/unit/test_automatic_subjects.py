"""Automatic replies' subjects: what threading compares and what the parser calls an automatic reply."""
from __future__ import annotations

import pytest

from app.mail.parse import parse_message
from app.mail.subjects import is_automatic_subject, thread_key


@pytest.mark.parametrize("subject", [
    "Automatic reply: Re: Refund", "Automatische Antwort: AW: Refund", "Réponse automatique : RE : Refund",
    "Respuesta automática: RE: Refund", "Risposta automatica: R: Refund", "Automatisch antwoord: Antw: Refund",
    "Autosvar: SV: Refund", "Automatyczna odpowiedź: Odp: Refund", "自动回复: 回复: Refund", "自动回复：Re：Refund",
    "自動応答: Re: Refund", "Out of Office: RE: Refund", "Abwesend: AW: Refund", "AutoReply: Re: Refund",
    "Out  of  office  AutoReply:Re:Refund", "Read: Re: Refund", "Gelesen: AW: Refund", "Lu : RE : Refund",
])
def test_an_automatic_replys_prefixes_go_only_when_asked(subject):
    assert thread_key(subject, automatic=True) == "refund"
    assert thread_key(subject) != "refund"  # a person's "Read: the contract" is not "the contract"


@pytest.mark.parametrize("subject, automatic", [
    ("Automatic reply: Refund", True), ("Out of office until Monday", True), ("自动回复: Refund", True),
    ("Autosvar: Refund", True), ("Auto: Refund", True), ("Automatyczna odpowiedź: Refund", True),
    ("Auto insurance quote", False), ("Re: Refund", False), ("Read: the contract", False), ("", False),
    ("Reorder 17", False),
])
def test_automatic_subjects(subject, automatic):
    assert is_automatic_subject(subject) is automatic


def test_a_subject_alone_makes_an_automatic_reply_that_is_never_answered():
    parsed = parse_message("From: a@example.com\r\nSubject: =?utf-8?b?6Ieq5Yqo5Zue5aSNOiDpgIDmrL4=?=\r\n\r\n"
                           "我不在办公室。\r\n".encode())
    assert parsed.subject == "自动回复: 退款"
    assert parsed.classification == "auto_reply" and parsed.no_auto_reply


def test_a_read_receipt_says_which_message_it_is_about():
    raw = (b"From: carla@example.com\r\nSubject: Read: Refund\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: multipart/report; report-type=disposition-notification; boundary=b\r\n\r\n"
           b"--b\r\nContent-Type: text/plain\r\n\r\nRead.\r\n--b\r\nContent-Type: message/disposition-notification\r\n\r\n"
           b"Final-Recipient: rfc822;carla@example.com\r\nOriginal-Message-ID: <ph.abcdefghij.x@mail.test>\r\n"
           b"Disposition: manual-action/MDN-sent-manually; displayed\r\n--b--\r\n")
    parsed = parse_message(raw)
    assert parsed.bounce is None and parsed.classification == "auto_reply"
    assert parsed.answers == "<ph.abcdefghij.x@mail.test>"
