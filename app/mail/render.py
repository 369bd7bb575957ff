"""One renderer for every outgoing message: the channel-setup Preview and the real send.

`render_message(sender, draft)` builds the complete MIME message:

* body: the address's Email Template Design (header and footer, placeholders
  filled) around the agent's HTML and their signature, then the quoted history in a collapsed
  `<blockquote>`; an HTML part and a plain-text part derived from it;
* inline images by `cid:` and attachments (non-ASCII file names by RFC 2231);
* headers: our Message-ID (carrying the conversation token), Date, From with the
  display name (RFC 2047 when not ASCII), To/Cc exactly as chosen, In-Reply-To and
  References (capped), `Auto-Submitted: auto-replied` on automatic mail; for a
  platform-domain address the contact-center address ("Forwarded from") goes into
  Bcc and Reply-To.

The Bcc header is never written into the message: `envelope_recipients()` gives
the SMTP RCPT list (To + Cc + Bcc) for the sender. `render_parts()` gives just the
(html, text) pair, which is what the Preview shows.

Placeholders in header and footer are written `{{ name }}`; `PLACEHOLDERS` lists the
known ones and `check_template()` refuses any other, so a typo is caught at save
time instead of reaching a customer.
"""
from __future__ import annotations

import html as _html
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import format_datetime, getaddresses
from typing import Protocol

from app.mail import mime
from app.mail.html import html_to_text, sanitize_html

PLACEHOLDERS = {
    "display_name": "the address's Display Name",
    "address": "the email address",
    "customer_name": "the recipient's name (the customer; in a forward, whom it goes to)",
    "agent_name": "the agent's name",
    "conversation_reference": "the conversation's reference",
}
_PLACEHOLDER = re.compile(r"\{\{\s*([^{}\s]*)\s*\}\}")
MAX_REFERENCES = 10


class TemplateError(ValueError):
    """The header or footer names placeholders we do not know."""

    def __init__(self, unknown: list[str]) -> None:
        self.unknown = unknown
        known = ", ".join("{{ %s }}" % k for k in PLACEHOLDERS)
        super().__init__(f"Unknown placeholder{'s' if len(unknown) > 1 else ''}: "
                         f"{', '.join('{{ %s }}' % u for u in unknown)}. Known placeholders: {known}.")


class Sender(Protocol):
    """What rendering needs of an address: `PublishedAddress` has it, and so does a draft preview."""

    address: str
    display_name: str
    forwarded_from: str | None
    template_enabled: bool
    header_html: str
    footer_html: str

    @property
    def is_platform(self) -> bool: ...


@dataclass
class OutgoingAttachment:
    filename: str
    content_type: str
    data: bytes
    content_id: str | None = None  # set: an inline image referenced as cid:<content_id>


@dataclass
class QuotedMessage:
    sender: str
    date: datetime | None
    html: str  # already sanitised
    text: str | None = None  # its plain text when known (a stored message has it); else derived from `html`


@dataclass
class Draft:
    """Everything an agent (or automation) decided about one outgoing message."""

    to: list[str]
    subject: str
    body_html: str
    cc: list[str] = field(default_factory=list)
    bcc: list[str] = field(default_factory=list)
    quoted: QuotedMessage | None = None
    attachments: list[OutgoingAttachment] = field(default_factory=list)
    message_id: str | None = None
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    automatic: bool = False
    placeholders: dict[str, str] = field(default_factory=dict)
    date: datetime | None = None
    signature_html: str = ""  # the agent's signature (their profile), under the body, above the footer


def check_template(html: str) -> None:
    """Raise `TemplateError` if `html` uses a placeholder that is not in `PLACEHOLDERS`."""
    unknown = sorted({name for name in _PLACEHOLDER.findall(html or "") if name not in PLACEHOLDERS})
    if unknown:
        raise TemplateError(unknown)


_FILLED = re.compile(r"((?:[ \t\u00a0]|&nbsp;|&#160;)*)" + _PLACEHOLDER.pattern)


def fill_placeholders(html: str, values: dict[str, str]) -> str:
    """Replace `{{ name }}` with the HTML-escaped value (unknown names become empty).

    An empty value takes the spaces before it along, so a greeting collapses cleanly:
    "Hello {{ customer_name }}," becomes "Hello," when the recipient's name is not known.
    """
    def fill(match: re.Match) -> str:
        value = values.get(match.group(2), "") or ""
        return match.group(1) + _html.escape(value) if value else ""

    return _FILLED.sub(fill, html or "")


def placeholder_values(sender: Sender, draft: Draft) -> dict[str, str]:
    values = {"display_name": sender.display_name or "", "address": sender.address}
    values.update({k: v for k, v in draft.placeholders.items() if k in PLACEHOLDERS})
    return values


def render_parts(sender: Sender, draft: Draft) -> tuple[str, str]:
    """The (html, text) body of the message: header, body, footer, quoted history."""
    values = placeholder_values(sender, draft)
    pieces = []
    # The plain text keeps a blank line between header, body (with the signature) and footer, whatever
    # their HTML is (a header of bare text would otherwise run into the body's first line).
    text_groups: list[list[str]] = []
    if sender.template_enabled and sender.header_html:
        pieces.append(f'<div class="ph-header">{sanitize_html(fill_placeholders(sender.header_html, values))}</div>')
        text_groups.append(pieces[-1:])
    pieces.append(f'<div class="ph-body">{sanitize_html(draft.body_html)}</div>')
    body_group = pieces[-1:]
    if draft.signature_html:
        pieces.append(f'<div class="ph-signature">{sanitize_html(draft.signature_html)}</div>')
        body_group = pieces[-2:]
    text_groups.append(body_group)
    if sender.template_enabled and sender.footer_html:
        pieces.append(f'<div class="ph-footer">{sanitize_html(fill_placeholders(sender.footer_html, values))}</div>')
        text_groups.append(pieces[-1:])
    quoted_html = quoted_text = ""
    if draft.quoted is not None:
        q = draft.quoted
        when = q.date.strftime("%a, %d %b %Y %H:%M") if q.date else ""
        intro = f"On {when}, {q.sender} wrote:" if when else f"{q.sender} wrote:"
        quoted_html = (f'<div class="ph-quote"><p>{_html.escape(intro)}</p>'
                       f'<blockquote type="cite" style="margin:0 0 0 .8ex;border-left:1px solid #ccc;'
                       f'padding-left:1ex">{sanitize_html(q.html)}</blockquote></div>')
        quoted_text = "\n" + intro + "\n" + "".join(
            "> " + line + "\n" if line else ">\n"
            for line in (q.text if q.text is not None else html_to_text(q.html)).rstrip("\n").split("\n"))
    inner = "".join(pieces) + quoted_html
    html_doc = ('<!DOCTYPE html><html><head><meta charset="utf-8"></head>'
                f'<body>{inner}</body></html>')
    text = "\n".join(t for t in (html_to_text("".join(group)) for group in text_groups) if t) + quoted_text
    return html_doc, text


def public_address(sender: Sender) -> str:
    """The address customers should write to: for a platform address, the contact-center mailbox that
    forwards to it ("Forwarded from"), so a saved contact card keeps the forwarding and Reply-To arrangement;
    for a custom-domain address (or a platform one without it), the address itself."""
    if sender.is_platform and sender.forwarded_from:
        return sender.forwarded_from
    return sender.address


def recipients_for(sender: Sender, draft: Draft) -> tuple[list[str], list[str], list[str], str | None]:
    """(to, cc, bcc, reply_to) after the platform rule: the forwarded-from address in Bcc and Reply-To."""
    bcc = list(draft.bcc)
    reply_to = None
    if sender.is_platform and sender.forwarded_from:
        reply_to = sender.forwarded_from
        if sender.forwarded_from.lower() not in {a.lower() for _, a in getaddresses(bcc)}:
            bcc.append(sender.forwarded_from)
    return list(draft.to), list(draft.cc), bcc, reply_to


def envelope_recipients(sender: Sender, draft: Draft) -> list[str]:
    """The SMTP RCPT TO list: To + Cc + Bcc, each once."""
    to, cc, bcc, _ = recipients_for(sender, draft)
    seen, out = set(), []
    for _, addr in getaddresses(to + cc + bcc):
        if addr and addr.lower() not in seen:
            seen.add(addr.lower())
            out.append(addr)
    return out


def capped_references(references: list[str]) -> list[str]:
    """The first reference (thread root) and the newest ones, at most `MAX_REFERENCES`."""
    refs = [r for r in references if r]
    if len(refs) <= MAX_REFERENCES:
        return refs
    return [refs[0]] + refs[-(MAX_REFERENCES - 1):]


@dataclass(frozen=True)
class RenderedMessage:
    """The bytes to send, and what the conversation shows of them."""

    raw: bytes
    html: str
    text: str
    from_header: str  # decoded, e.g. "Acme Support <support@acme.test>"

    def as_bytes(self) -> bytes:
        return self.raw


def render_message(sender: Sender, draft: Draft) -> RenderedMessage:
    """The complete message, ready for SMTP (Bcc not in the headers; see `envelope_recipients`).

    The bytes come from `app.mail.mime`, a writer made for this one shape of message.
    """
    html_body, text_body = render_parts(sender, draft)
    to, cc, _bcc, reply_to = recipients_for(sender, draft)

    display_name = sender.display_name or ""
    from_header = mime.display_address(display_name, sender.address)
    headers = [mime.fold("From", mime.format_address(display_name, sender.address))]
    if to:
        headers.append(mime.address_header("To", to))
    if cc:
        headers.append(mime.address_header("Cc", cc))
    if reply_to:
        headers.append(mime.address_header("Reply-To", [reply_to]))
    headers.append(mime.unstructured_header("Subject", draft.subject))
    headers.append(mime.token_header("Date", format_datetime(draft.date or datetime.now(timezone.utc))))
    if draft.message_id:
        headers.append(mime.token_header("Message-ID", draft.message_id))
    if draft.in_reply_to:
        headers.append(mime.token_header("In-Reply-To", draft.in_reply_to))
    refs = capped_references(draft.references)
    if refs:
        headers.append(mime.token_header("References", " ".join(refs)))
    if draft.automatic:
        headers.append("Auto-Submitted: auto-replied")
        headers.append("X-Auto-Response-Suppress: All")
    files = [mime.Part(a.filename, a.content_type, a.data, a.content_id) for a in draft.attachments]
    raw = mime.build_message(headers, text_body, html_body, files)
    return RenderedMessage(raw=raw, html=html_body, text=text_body, from_header=from_header)
