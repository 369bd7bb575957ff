"""What the detectors share about a report's prose and its sender.

* `status_in`, `diagnostic`: the first RFC 3463 status code, and a short excerpt for the agent;
* `recipients_from_text`: the addresses the text names near a failure;
* `BOUNCE_SUBJECT`, `DAEMON_LOCALS`, `null_reverse_path`: what makes a sender or a subject look like a report.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

from app.mail.bounce._fields import ADDR, clean

if TYPE_CHECKING:  # only for annotations: app.mail.parse imports this package
    from app.mail.parse import ParsedMessage

BOUNCE_SUBJECT = re.compile(
    r"(undeliver|undelivered|delivery status notification|returned mail|return(ed)? to sender|"
    r"mail delivery (failed|failure|system|subsystem)|delivery (has )?failed|failure notice|delivery failure|"
    r"non[- ]?delivery|could not be delivered|not delivered|nondeliverable|unzustellbar|non remis|"
    r"no se puede entregar|mail system error|could not send message|delivery notification|"
    r"message delivery|rejected|bounced?|fehlgeschlagen|zustellung|delivery problem|unable to deliver|"
    r"mail failure|permanent error|warning: message|delayed mail|delivery delay|remise|returned)",
    re.IGNORECASE,
)
DAEMON_LOCALS = {"mailer-daemon", "postmaster", "mailerdaemon", "mail-daemon", "mdaemon", "mailer",
                 "mail.daemon", "maildelivery", "mail-delivery", "bounce", "bounces", "nobody", "root",
                 "mail", "smtp", "mailadmin", "mail-router", "mmdf"}
STATUS = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
SMTP_CODE = re.compile(r"\b([45]\d\d)[\s-]")


def null_reverse_path(parsed: ParsedMessage, envelope_from: str | None) -> bool:
    """Sent with MAIL FROM:<>, as delivery reports are (RFC 5321 4.5.5): the envelope or Return-Path says so."""
    return (envelope_from is not None and envelope_from.strip("<> ") == "") \
        or parsed.automation.get("return-path", "").strip() == "<>"


def is_daemon(address: str) -> bool:
    local = address.split("@", 1)[0]
    return local in DAEMON_LOCALS or "mailer-daemon" in local


def status_in(text: str) -> str | None:
    match = STATUS.search(text[:20_000] or "")
    return match.group(1) if match else None


def diagnostic(text: str, recipients: list[str]) -> str:
    """A short excerpt of the report that explains the failure, for the agent."""
    text = text[:20_000]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    picked = [line for line in lines if STATUS.search(line) or SMTP_CODE.search(line + " ")
              or any(r in line.lower() for r in recipients)]
    excerpt = " ".join(picked[:6]) or " ".join(lines[:6])
    return excerpt[:1000]


def _own_addresses(parsed: ParsedMessage) -> set[str]:
    own = {parsed.from_addr.lower()}
    own.update(a.lower() for _, a in parsed.to + parsed.cc + parsed.reply_to)
    return own


def recipients_from_text(parsed: ParsedMessage) -> list[str]:
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
        found = [a for a in clean(ADDR.findall(line)) if a not in own and "mailer-daemon" not in a]
        if not found:
            continue
        context = " ".join(lines[max(0, i - 2): i + 3])
        if re.search(r"\b[45]\d\d\b|[45]\.\d\.\d|unknown|not exist|no such|invalid|rejected|failed|"
                     r"deliver|could not|unable|quota|full|refused|denied|expired|delay|blocked|"
                     r"recipient|permanent|not found|disabled|inactive|mailbox|user", context, re.IGNORECASE):
            candidates.extend(found)
    if not candidates:
        candidates = [a for a in clean(ADDR.findall(head)) if a not in own and not is_daemon(a)]
    return list(dict.fromkeys(candidates))[:20]
