"""Delivery reports: bounces (RFC 3464 DSNs and the many that are not), ARF complaints, MDNs.

`detect_report(msg, parsed, envelope_from)` answers a `Bounce` (or None) with the
failed recipients, the original Message-ID (so the ingest service can mark our
outgoing message as bounced) and the diagnostic text. It tries, in order:

1. `multipart/report`: `delivery-status` (per-recipient Action, Status,
   Final-Recipient, Diagnostic-Code), `feedback-report` (ARF) and
   `disposition-notification` (read receipts, answered as kind "mdn");
2. GNU Mailman's `flufl.bounce` detectors, which know the non-standard formats
   of Exim, Postfix, qmail, Exchange, Yahoo, AOL, GroupWise and others;
3. our own heuristics for what is left: `X-Failed-Recipients`, a sender like
   MAILER-DAEMON or postmaster (or a null reverse path) together with a
   bounce-like subject, recipients read from the text near SMTP codes, and as a
   last resort the To of the returned original message.

It never raises; a detector that breaks on odd input is skipped.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from email.message import Message
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only for annotations: parse.py imports this module
    from app.mail.parse import ParsedMessage

log = logging.getLogger(__name__)


@dataclass
class Bounce:
    """A delivery report. `kind`: failed, delayed, delivered, feedback (ARF complaint)."""

    kind: str
    recipients: list[str]
    original_message_id: str | None = None
    status: str | None = None
    diagnostic: str = ""

    @property
    def failed(self) -> bool:
        return self.kind == "failed"

_BOUNCE_SUBJECT = re.compile(
    r"(undeliver|undelivered|delivery status notification|returned mail|return(ed)? to sender|"
    r"mail delivery (failed|failure|system|subsystem)|delivery (has )?failed|failure notice|delivery failure|"
    r"non[- ]?delivery|could not be delivered|not delivered|nondeliverable|unzustellbar|non remis|"
    r"no se puede entregar|mail system error|could not send message|delivery notification|"
    r"message delivery|rejected|bounced?|fehlgeschlagen|zustellung|delivery problem|unable to deliver|"
    r"mail failure|permanent error|warning: message|delayed mail|delivery delay|remise|returned)",
    re.IGNORECASE,
)
_DAEMON_LOCALS = {"mailer-daemon", "postmaster", "mailerdaemon", "mail-daemon", "mdaemon", "mailer",
                  "mail.daemon", "maildelivery", "mail-delivery", "bounce", "bounces", "nobody", "root",
                  "mail", "smtp", "mailadmin", "mail-router", "mmdf"}
_ADDR = re.compile(r"<?([A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)>?")
_STATUS = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
_SMTP_CODE = re.compile(r"\b([45]\d\d)[\s-]")
_MSGID_LINE = re.compile(r"^\s*(?:X-Original-)?Message-ID:\s*(<[^<>\s]+>)", re.IGNORECASE | re.MULTILINE)


def detect_report(msg: Message, parsed: "ParsedMessage", envelope_from: str | None = None) -> "Bounce | None":
    try:
        report = _multipart_report(msg, parsed)
        if report is not None:
            return report
    except Exception:  # noqa: BLE001
        log.debug("multipart/report reading failed", exc_info=True)

    from_raw = _s(msg.get("From", ""))
    if not _may_be_report(parsed, envelope_from, from_raw):
        return None  # flufl's detectors scan every line of every part: only for candidates
    recipients: list[str] = []
    try:
        from flufl.bounce import all_failures

        logging.getLogger("flufl.bounce").setLevel(logging.CRITICAL)
        temporary, permanent = all_failures(msg)
        recipients = _clean([_s(r) for r in (*permanent, *temporary)])
        if recipients:
            kind = "failed" if permanent else "delayed"
            return Bounce(kind, recipients, _original_message_id(msg, parsed), _status_in(parsed.text),
                          _diagnostic(parsed.text, recipients))
    except Exception:  # noqa: BLE001 - flufl's heuristics on odd input
        log.debug("flufl.bounce failed", exc_info=True)

    failed_header = parsed.automation.get("x-failed-recipients", "")
    if failed_header:
        recipients = _clean(_ADDR.findall(failed_header))
        if recipients:
            return Bounce("failed", recipients, _original_message_id(msg, parsed), _status_in(parsed.text),
                          _diagnostic(parsed.text, recipients))

    if not _looks_like_bounce(parsed, envelope_from, from_raw):
        return None
    recipients = _recipients_from_text(parsed) or _original_recipients(msg, parsed)
    if not recipients:
        return None
    status = _status_in(parsed.text)
    kind = "delayed" if status and status.startswith("4") and re.search(
        r"delay|will (be )?retr|still trying|warning", parsed.text[:4000], re.IGNORECASE) else "failed"
    return Bounce(kind, recipients, _original_message_id(msg, parsed), status, _diagnostic(parsed.text, recipients))


def _s(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _clean(addresses) -> list[str]:
    out = []
    for a in addresses:
        a = _s(a).strip().strip("<>;,.\"'").lower()
        if a.startswith("rfc822;"):
            a = a[7:].strip()
        if "@" in a and a not in out and len(a) <= 320:
            out.append(a)
    return out


def _may_be_report(parsed: "ParsedMessage", envelope_from: str | None, from_raw: str) -> bool:
    """Cheap pre-check: a daemon-like or null sender, a bounce-like subject, or X-Failed-Recipients."""
    if parsed.automation.get("x-failed-recipients") or _BOUNCE_SUBJECT.search(parsed.subject or ""):
        return True
    if (envelope_from is not None and envelope_from.strip("<> ") == "") \
            or parsed.automation.get("return-path", "").strip() == "<>":
        return True
    local = parsed.from_addr.split("@", 1)[0].lower()
    sender = f"{local} {from_raw} {parsed.from_name}".lower()
    return local in _DAEMON_LOCALS or any(w in sender for w in (
        "mailer-daemon", "postmaster", "post_master", "mail delivery", "delivery", "bounce", "no-reply", "noreply",
        "daemon", "mailer", "notification"))


def _looks_like_bounce(parsed: "ParsedMessage", envelope_from: str | None, from_raw: str = "") -> bool:
    local = parsed.from_addr.split("@", 1)[0].lower()
    from_raw = from_raw.lower()
    daemon = local in _DAEMON_LOCALS or "mailer-daemon" in local or "postmaster" in local \
        or (envelope_from is not None and envelope_from.strip("<> ") == "") \
        or parsed.automation.get("return-path", "").strip() == "<>" \
        or "mailer-daemon" in (parsed.from_name or "").lower() \
        or "mail delivery" in (parsed.from_name or "").lower() \
        or "postmaster" in (parsed.from_name or "").lower() \
        or "mailer-daemon" in from_raw or "postmaster" in from_raw or "post_master" in from_raw
    subject = bool(_BOUNCE_SUBJECT.search(parsed.subject or ""))
    if daemon and (subject or _SMTP_CODE.search(parsed.text[:5000] or "")):
        return True
    # Some systems send bounces from ordinary-looking addresses: a clear subject plus an SMTP reply.
    return subject and bool(_STATUS.search(parsed.text[:5000]) or re.search(
        r"\b5\d\d\b.{0,80}(user|mailbox|recipient|address)", parsed.text[:5000], re.IGNORECASE | re.DOTALL))


def _multipart_report(msg: Message, parsed: "ParsedMessage") -> "Bounce | None":
    report = None
    for part in msg.walk():
        if part.get_content_type() == "multipart/report":
            report = part
            break
    if report is None:
        return None
    report_type = (report.get_param("report-type") or "").lower()
    sub_parts = [p for p in report.walk() if p is not report]
    if report_type == "disposition-notification" or any(
            p.get_content_type() == "message/disposition-notification" for p in sub_parts):
        return Bounce("mdn", [], _original_message_id(msg, parsed))
    if report_type == "feedback-report" or any(p.get_content_type() == "message/feedback-report" for p in sub_parts):
        fields = _fields_of(next((p for p in sub_parts if p.get_content_type() == "message/feedback-report"), None))
        recipients = _clean(_ADDR.findall(" ".join(v for k, v in fields if k in ("original-rcpt-to", "removal-recipient"))))
        if not recipients:
            recipients = _original_recipients(msg, parsed)
        return Bounce("feedback", recipients, _original_message_id(msg, parsed),
                      diagnostic=" ".join(v for k, v in fields if k == "feedback-type")[:500])

    status_part = next((p for p in sub_parts if p.get_content_type() in (
        "message/delivery-status", "message/global-delivery-status")), None)
    if status_part is None:
        return None
    blocks = _dsn_blocks(status_part)
    failed, delayed, delivered, statuses, diagnostics = [], [], [], [], []
    for fields in blocks[1:] if len(blocks) > 1 else blocks:
        values = dict(fields)
        recipient = values.get("final-recipient") or values.get("original-recipient") or ""
        recipient = recipient.split(";", 1)[-1].strip()
        if "@" not in recipient:
            continue
        action = values.get("action", "").strip().lower()
        status = (values.get("status", "") or "").strip().split(" ")[0]
        if status:
            statuses.append(status)
        if values.get("diagnostic-code"):
            diagnostics.append(values["diagnostic-code"].split(";", 1)[-1].strip())
        if action.startswith("fail") or (not action and status.startswith("5")):
            failed.append(recipient)
        elif action.startswith("delay"):
            delayed.append(recipient)
        else:
            delivered.append(recipient)
    diagnostic = " ".join(diagnostics)[:1000]
    if failed:
        recipients, kind = _clean(failed), "failed"
    elif delayed:
        recipients, kind = _clean(delayed), "delayed"
    elif delivered:
        recipients, kind = _clean(delivered), "delivered"
    else:
        recipients = _recipients_from_text(parsed) or _original_recipients(msg, parsed)
        kind = "failed"
    if not recipients:
        return None
    status = next((s for s in statuses if s[:1] in "45"), statuses[0] if statuses else None)
    return Bounce(kind, recipients, _original_message_id(msg, parsed), status,
                  diagnostic or _diagnostic(parsed.text, recipients))


def _dsn_blocks(part: Message) -> list[list[tuple[str, str]]]:
    """The per-message and per-recipient field blocks of a delivery-status part."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [_fields_of(block) for block in payload]
    text = payload if isinstance(payload, str) else ""
    if part.get("Content-Transfer-Encoding", "").lower() in ("base64", "quoted-printable"):
        raw = part.get_payload(decode=True) or b""
        text = raw.decode("utf-8", "replace")
    blocks = []
    for chunk in re.split(r"\r?\n\s*\r?\n", text):
        fields = _field_lines(chunk)
        if fields:
            blocks.append(fields)
    return blocks


def _fields_of(block) -> list[tuple[str, str]]:
    if block is None:
        return []
    if isinstance(block, Message):
        if block.is_multipart() or not block.keys():
            payload = block.get_payload()
            if isinstance(payload, list):
                return [f for b in payload for f in _fields_of(b)]
            return _field_lines(payload if isinstance(payload, str) else "")
        return [(k.lower(), _s(v).strip()) for k, v in block.items()] + _field_lines(
            block.get_payload() if isinstance(block.get_payload(), str) else "")
    return []


def _field_lines(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for line in re.sub(r"\r?\n[ \t]+", " ", text or "").splitlines():
        if ":" in line:
            key, _, value = line.partition(":")
            if re.fullmatch(r"[A-Za-z0-9-]+", key.strip()):
                out.append((key.strip().lower(), value.strip()))
    return out


def _original_message_id(msg: Message, parsed: "ParsedMessage") -> str | None:
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
    match = re.search(r"<[^<>\s]+>", _s(value))
    return match.group(0) if match else None


def _original_recipients(msg: Message, parsed: "ParsedMessage") -> list[str]:
    for part in msg.walk():
        if part.get_content_type() in ("message/rfc822", "message/global"):
            payload = part.get_payload()
            inner = payload[0] if isinstance(payload, list) and payload else None
            if isinstance(inner, Message):
                found = _clean(_ADDR.findall(_s(inner.get("To", ""))))
                if found:
                    return found
        elif part.get_content_type() == "text/rfc822-headers":
            text = (part.get_payload(decode=True) or b"").decode("utf-8", "replace")
            match = re.search(r"^To:(.*(?:\n[ \t].*)*)", text, re.IGNORECASE | re.MULTILINE)
            if match:
                found = _clean(_ADDR.findall(match.group(1)))
                if found:
                    return found
    match = re.search(r"^\s*To:(.*)$", parsed.text[:200_000], re.IGNORECASE | re.MULTILINE)
    if match:
        return _clean(_ADDR.findall(match.group(1)))[:5]
    return []


def _own_addresses(parsed: "ParsedMessage") -> set[str]:
    own = {parsed.from_addr.lower()}
    own.update(a.lower() for _, a in parsed.to + parsed.cc + parsed.reply_to)
    return own


def _recipients_from_text(parsed: "ParsedMessage") -> list[str]:
    """Addresses on lines that read like a failure (an SMTP code, "user unknown", ...), before the original."""
    text = parsed.text[:50_000]
    # Stop at the returned original message's headers.
    cut = re.search(r"^\s*(-{2,}.*(original|returned|headers).*|Received:|Return-Path:)", text,
                    re.IGNORECASE | re.MULTILINE)
    head = text[:cut.start()] if cut and cut.start() > 40 else text
    own = _own_addresses(parsed)
    candidates: list[str] = []
    lines = head.splitlines()
    for i, line in enumerate(lines):
        found = [a for a in _clean(_ADDR.findall(line)) if a not in own and "mailer-daemon" not in a]
        if not found:
            continue
        context = " ".join(lines[max(0, i - 2): i + 3])
        if re.search(r"\b[45]\d\d\b|[45]\.\d\.\d|unknown|not exist|no such|invalid|rejected|failed|"
                     r"deliver|could not|unable|quota|full|refused|denied|expired|delay|blocked|"
                     r"recipient|permanent|not found|disabled|inactive|mailbox|user", context, re.IGNORECASE):
            candidates.extend(found)
    if not candidates:
        candidates = [a for a in _clean(_ADDR.findall(head)) if a not in own and not _is_daemon(a)]
    return list(dict.fromkeys(candidates))[:20]


def _is_daemon(address: str) -> bool:
    local = address.split("@", 1)[0]
    return local in _DAEMON_LOCALS or "mailer-daemon" in local


def _status_in(text: str) -> str | None:
    match = _STATUS.search(text[:20_000] or "")
    return match.group(1) if match else None


def _diagnostic(text: str, recipients: list[str]) -> str:
    """A short excerpt of the report that explains the failure, for the agent."""
    text = text[:20_000]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    picked = [line for line in lines if _STATUS.search(line) or _SMTP_CODE.search(line + " ")
              or any(r in line.lower() for r in recipients)]
    excerpt = " ".join(picked[:6]) or " ".join(lines[:6])
    return excerpt[:1000]
