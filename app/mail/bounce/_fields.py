"""What the detectors share: report fields, addresses and the returned original message.

* `report_of`: the first multipart/report of a message and what it reports;
* `fields_of`, `field_lines`: the "Name: value" fields of a report part, however the sender packed them;
* `clean`: addresses lower-cased, without brackets or an "rfc822;" type, each once;
* `original_message_id`, `original_recipients`: the Message-ID and the To of the message that came back.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only for annotations: app.mail.parse imports this package
    from app.mail.parse import ParsedMessage

ADDR = re.compile(r"<?([A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)>?")
_MSGID_LINE = re.compile(r"^\s*(?:X-Original-)?Message-ID:\s*(<[^<>\s]+>)", re.IGNORECASE | re.MULTILINE)

MDN = "disposition-notification"
ARF = "feedback-report"
DSN = "delivery-status"


@dataclass
class Report:
    """The first multipart/report of a message: what it reports (MDN, ARF or DSN) and the parts inside it."""

    kind: str
    parts: list[Message]


def report_of(msg: Message) -> Report | None:
    """Which report this is, by its report-type or by the part that carries it (senders leave the type out).

    A disposition notification wins over a feedback report; any other report (the type says
    delivery-status, or something else, or nothing) is read as a DSN if it holds a status part.
    """
    report = None
    for part in msg.walk():
        if part.get_content_type() == "multipart/report":
            report = part
            break
    if report is None:
        return None
    report_type = (report.get_param("report-type") or "").lower()
    parts = [p for p in report.walk() if p is not report]
    if report_type == MDN or any(p.get_content_type() == "message/disposition-notification" for p in parts):
        return Report(MDN, parts)
    if report_type == ARF or any(p.get_content_type() == "message/feedback-report" for p in parts):
        return Report(ARF, parts)
    return Report(DSN, parts)


def as_text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def clean(addresses) -> list[str]:
    out = []
    for a in addresses:
        a = as_text(a).strip().strip("<>;,.\"'").lower()
        if a.startswith("rfc822;"):
            a = a[7:].strip()
        if "@" in a and a not in out and len(a) <= 320:
            out.append(a)
    return out


def fields_of(block) -> list[tuple[str, str]]:
    if block is None:
        return []
    if isinstance(block, Message):
        if block.is_multipart() or not block.keys():
            payload = block.get_payload()
            if isinstance(payload, list):
                return [f for b in payload for f in fields_of(b)]
            return field_lines(payload if isinstance(payload, str) else "")
        return [(k.lower(), as_text(v).strip()) for k, v in block.items()] + field_lines(
            block.get_payload() if isinstance(block.get_payload(), str) else "")
    return []


def field_lines(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for line in re.sub(r"\r?\n[ \t]+", " ", text or "").splitlines():
        if ":" in line:
            key, _, value = line.partition(":")
            if re.fullmatch(r"[A-Za-z0-9-]+", key.strip()):
                out.append((key.strip().lower(), value.strip()))
    return out


def original_message_id(msg: Message, parsed: ParsedMessage) -> str | None:
    """The Message-ID of the returned message: attached message, attached headers, or quoted text."""
    own = parsed.message_id
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype in ("message/rfc822", "message/global"):
            payload = part.get_payload()
            inner = payload[0] if isinstance(payload, list) and payload else None
            if isinstance(inner, Message):
                found = _first_id(inner.get("Message-ID"))
                if found and found != own:
                    return found
        elif ctype in ("text/rfc822-headers", "text/plain", "message/delivery-status"):
            try:
                payload = part.get_payload(decode=True) or b""
            except Exception:  # noqa: BLE001
                continue
            for match in _MSGID_LINE.finditer(payload.decode("utf-8", "replace")[:200_000]):
                if match.group(1) != own:
                    return match.group(1)
    for match in _MSGID_LINE.finditer(parsed.text[:200_000]):
        if match.group(1) != own:
            return match.group(1)
    return None


def _first_id(value) -> str | None:
    if not value:
        return None
    match = re.search(r"<[^<>\s]+>", as_text(value))
    return match.group(0) if match else None


def original_recipients(msg: Message, parsed: ParsedMessage) -> list[str]:
    for part in msg.walk():
        if part.get_content_type() in ("message/rfc822", "message/global"):
            payload = part.get_payload()
            inner = payload[0] if isinstance(payload, list) and payload else None
            if isinstance(inner, Message):
                found = clean(ADDR.findall(as_text(inner.get("To", ""))))
                if found:
                    return found
        elif part.get_content_type() == "text/rfc822-headers":
            text = (part.get_payload(decode=True) or b"").decode("utf-8", "replace")
            match = re.search(r"^To:(.*(?:\n[ \t].*)*)", text, re.IGNORECASE | re.MULTILINE)
            if match:
                found = clean(ADDR.findall(match.group(1)))
                if found:
                    return found
    match = re.search(r"^\s*To:(.*)$", parsed.text[:200_000], re.IGNORECASE | re.MULTILINE)
    if match:
        return clean(ADDR.findall(match.group(1)))[:5]
    return []
