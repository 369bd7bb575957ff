"""Writes the header/charset fidelity fixtures (tests/unit/test_parse_fidelity.py) byte for byte.

Their point is bytes that are not what they claim (raw 8-bit headers, GBK declared as GB2312,
Latin-1 bodies without a charset), so they are built here from Python strings and codecs
rather than typed into an editor that would "fix" them. Run from the repository root:

    .venv/bin/python tests/data/mail/make_fidelity.py

and commit the .eml files it writes (they are small; one case each).
"""
from __future__ import annotations

import base64
from pathlib import Path

HERE = Path(__file__).parent


def b64word(text: str, label: str, codec: str) -> bytes:
    return f"=?{label}?B?{base64.b64encode(text.encode(codec)).decode()}?=".encode()


def mail(*headers: bytes, body: bytes = b"Hello, see the subject.\n",
         ctype: bytes = b"text/plain; charset=utf-8") -> bytes:
    head = b"".join(h + b"\n" for h in headers)
    return head + b"MIME-Version: 1.0\nContent-Type: " + ctype + b"\n\n" + body


BASE = (b"To: Support <support@mail.pigeonhole.test>", b"Date: Tue, 07 Apr 2026 10:00:00 +0200")


def with_attachments(headers: tuple[bytes, ...], parts: list[bytes], text: bytes = b"Please find it attached.\n",
                     text_ctype: bytes = b"text/plain; charset=utf-8") -> bytes:
    body = b"--BOUNDARY\nContent-Type: " + text_ctype + b"\n\n" + text
    for part in parts:
        body += b"--BOUNDARY\n" + part
    body += b"--BOUNDARY--\n"
    return mail(*headers, body=body, ctype=b'multipart/mixed; boundary="BOUNDARY"')


PDF = b"Content-Transfer-Encoding: base64\n\nJVBERi0xLjQgdGVzdA==\n"  # "%PDF-1.4 test"

FIXTURES = {
    # Raw UTF-8 in Subject, From's display name and a file name (no RFC 2047 at all).
    "header-raw-utf8.eml": with_attachments(
        (b"From: " + "Frédéric Dupré".encode() + b" <frederic@example.fr>", *BASE,
         b"Subject: " + "Problème facture n° 1234".encode(), b"Message-ID: <raw-utf8@example.fr>"),
        [b'Content-Type: application/pdf\nContent-Disposition: attachment; filename="' + "Relevé été.pdf".encode()
         + b'"\n' + PDF]),
    # The same in raw Latin-1/windows-1252; the body declares iso-8859-1.
    "header-raw-latin1.eml": with_attachments(
        (b"From: " + "Frédéric Dupré".encode("cp1252") + b" <frederic@example.fr>", *BASE,
         b"Subject: " + "Problème facture n° 1234 – urgent".encode("cp1252"), b"Message-ID: <raw-latin1@example.fr>"),
        [b'Content-Type: application/pdf\nContent-Disposition: attachment; filename="'
         + "Relevé été.pdf".encode("cp1252") + b'"\n' + PDF],
        text="Voilà la facture.\n".encode("cp1252"), text_ctype=b"text/plain; charset=iso-8859-1"),
    # Encoded words declared GB2312 whose bytes are GBK (镕 is not in GB2312).
    "header-gb2312-really-gbk.eml": mail(
        b"From: " + b64word("朱镕基", "GB2312", "gbk") + b" <zhu@example.cn>", *BASE,
        b"Subject: " + b64word("关于朱镕基的发票", "GB2312", "gbk"), b"Message-ID: <gbk@example.cn>",
        body="发票在附件里。\n".encode("gbk"), ctype=b"text/plain; charset=gb2312"),
    # Encoded words declared ks_c_5601-1987 with cp949-only syllables (똠 is not in KS X 1001).
    "header-ks_c_5601.eml": mail(
        b"From: kim@example.kr", *BASE, b"Subject: " + b64word("똠방각하 견적서", "ks_c_5601-1987", "cp949"),
        b"Message-ID: <ks@example.kr>", body="견적서입니다.\n".encode("cp949"), ctype=b"text/plain; charset=ks_c_5601-1987"),
    # Declared ISO-8859-1, really windows-1252 (euro sign, curly quotes, en dash in 0x80-0x9f).
    "header-latin1-really-cp1252.eml": mail(
        b"From: shop@example.de", *BASE, b"Subject: =?ISO-8859-1?Q?=80_50_=96_=93Angebot=94?=",
        b"Message-ID: <cp1252@example.de>"),
    # Declared ISO-8859-1, really UTF-8.
    "header-latin1-really-utf8.eml": mail(
        b"From: shop@example.fr", *BASE, b"Subject: =?ISO-8859-1?Q?Probl=C3=A8me_r=C3=A9solu?=",
        b"Message-ID: <latin1-utf8@example.fr>"),
    # Declared Shift_JIS, with NEC/IBM extensions only cp932 has (① and ～).
    "header-shift_jis-cp932.eml": mail(
        b"From: tanaka@example.jp", *BASE, b"Subject: " + b64word("①請求書～確認", "Shift_JIS", "cp932"),
        b"Message-ID: <sjis@example.jp>"),
    # A line in the middle of the header block that is no header: From and Subject come after it.
    "broken-header-line.eml": (
        b"Received: from relay.example.com by mx.example.net; Tue, 07 Apr 2026 10:00:01 +0200\n"
        b"this line is not a header\n"
        b"From: Carla Customer <carla@example.com>\n" + BASE[0] + b"\n" + BASE[1] + b"\n"
        b"Subject: Where is my order?\nMessage-ID: <broken-line@example.com>\n\nMy order 17 has not arrived.\n"),
    # The same, the broken line being the lost continuation of a long Subject.
    "broken-header-subject-fold.eml": (
        b"Subject: Where is my order\nnumber 17? It has not arrived\n"
        b"From: Carla Customer <carla@example.com>\n" + BASE[0] + b"\n"
        b"Message-ID: <broken-fold@example.com>\n\nHello.\n"),
    # A proper blank line, then a body whose first lines look like headers: a body all the same.
    "body-looks-like-headers.eml": mail(
        b"From: Carla Customer <carla@example.com>", *BASE, b"Subject: My details",
        b"Message-ID: <body-headers@example.com>",
        body=b"Order: 17\nName: Carla Customer\nFrom: my phone\n\nThanks.\n"),
    # No blank line after the headers; the body's first line is no header and nothing after it is one.
    "body-without-separator.eml": (
        b"From: Carla Customer <carla@example.com>\n" + BASE[0] + b"\nSubject: Quick question\n"
        b"Hello there, a question about my order\nThanks: Carla\n"),
    # No From: the Sender, Reply-To and envelope (Return-Path) fallbacks, and nothing at all.
    "no-from-sender.eml": mail(
        b"Sender: Office Desk <desk@example.org>", b"Reply-To: replies@example.org", *BASE,
        b"Subject: No From, a Sender", b"Message-ID: <no-from-sender@example.org>"),
    "no-from-reply-to.eml": mail(
        b"From: Customer Service", b"Reply-To: Dana Doe <dana@example.org>", *BASE,
        b"Subject: From without an address", b"Message-ID: <no-from-reply-to@example.org>"),
    "no-from-return-path.eml": mail(
        b"Return-Path: <bounces+dana@example.org>", *BASE, b"Subject: Only an envelope sender",
        b"Message-ID: <no-from-return-path@example.org>"),
    "no-address-at-all.eml": mail(
        b"From: Someone", *BASE, b"Subject: Nobody to answer", b"Message-ID: <no-address@example.org>"),
    # RFC 2231 continuations, encoded and plain segments, spaces at the joins (two before "final").
    "attachment-rfc2231-continuation.eml": with_attachments(
        (b"From: carla@example.com", *BASE, b"Subject: Report", b"Message-ID: <rfc2231@example.com>"),
        [b"Content-Type: application/pdf\nContent-Disposition: attachment;\n"
         b" filename*0*=utf-8'en'Quarterly%20report%20;\n filename*1*=%E2%80%93%20Q3%202024;\n"
         b' filename*2="  final.pdf"\n' + PDF,
         b"Content-Type: application/pdf\nContent-Disposition: attachment;\n"
         b" filename*=iso-8859-1''Lieferschein%20M%FCller.pdf\n" + PDF]),
    # Raw 8-bit file names: UTF-8 in Content-Disposition, windows-1252 in Content-Type's name.
    "attachment-raw-8bit-name.eml": with_attachments(
        (b"From: carla@example.com", *BASE, b"Subject: Files", b"Message-ID: <raw-names@example.com>"),
        [b'Content-Type: application/pdf\nContent-Disposition: attachment; filename="' + "Facture été.pdf".encode()
         + b'"\n' + PDF,
         b'Content-Type: application/pdf; name="' + "Übersicht März.pdf".encode("cp1252") + b'"\n'
         b"Content-Disposition: attachment\n" + PDF]),
    # name= on Content-Type only; RFC 2047 inside a quoted name.
    "attachment-name-on-content-type.eml": with_attachments(
        (b"From: carla@example.com", *BASE, b"Subject: Invoice", b"Message-ID: <ct-name@example.com>"),
        [b'Content-Type: application/pdf; name="invoice 42.pdf"\nContent-Disposition: attachment\n' + PDF,
         b'Content-Type: application/pdf\nContent-Disposition: attachment;\n'
         b' filename="=?utf-8?Q?Angebot_M=C3=BCller.pdf?="\n' + PDF]),
    # Bodies without a charset, or with a wrong one.
    "body-no-charset-latin1.eml": mail(
        b"From: carla@example.com", *BASE, b"Subject: Bonjour", b"Message-ID: <body-latin1@example.com>",
        body="Ma commande n'est pas arrivée. Merci de vérifier où elle est.\n".encode("cp1252"), ctype=b"text/plain"),
    "body-utf8-declared-really-cp1252.eml": mail(
        b"From: carla@example.com", *BASE, b"Subject: Bonjour", b"Message-ID: <body-wrong@example.com>",
        body="Ça coûte 50 € – trop cher.\n".encode("cp1252")),
    "body-no-charset-cyrillic.eml": mail(
        b"From: ivan@example.ru", *BASE, b"Subject: Privet", b"Message-ID: <body-cyrillic@example.ru>",
        body=("Здравствуйте! Мой заказ номер 17 до сих пор не пришёл. Пожалуйста, проверьте, где он сейчас "
              "находится, и сообщите мне об этом как можно скорее. Спасибо большое за помощь.\n").encode("cp1251"),
        ctype=b"text/plain"),
    # A delivery report whose status and header parts carry names of their own.
    "delivery-report-named-parts.eml": (
        b"From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\n" + BASE[0] + b"\n" + BASE[1] + b"\n"
        b"Subject: Undelivered Mail Returned to Sender\nMessage-ID: <dsn-named@mx.example.net>\nMIME-Version: 1.0\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="R"\n\n'
        b"--R\nContent-Type: text/plain\n\nYour message could not be delivered.\n"
        b'--R\nContent-Type: message/delivery-status; name="details.txt"\n'
        b'Content-Disposition: attachment; filename="details.txt"\n\n'
        b"Reporting-MTA: dns; mx.example.net\n\nFinal-Recipient: rfc822; nobody@example.com\nAction: failed\n"
        b"Status: 5.1.1\nDiagnostic-Code: smtp; 550 5.1.1 no such user\n"
        b'--R\nContent-Type: text/rfc822-headers; name="headers.txt"\n\n'
        b"From: support@mail.pigeonhole.test\nTo: nobody@example.com\nSubject: Your order\n"
        b"Message-ID: <out-1@mail.pigeonhole.test>\n--R--\n"),
}


def main() -> None:
    for name, data in FIXTURES.items():
        (HERE / name).write_bytes(data)
    print(f"wrote {len(FIXTURES)} fixtures to {HERE}")


if __name__ == "__main__":
    main()
