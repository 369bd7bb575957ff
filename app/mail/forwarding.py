"""Forwarded mail, read from its headers: who forwarded it, and a provider's forwarding-confirmation mail.

A platform address receives the contact center's mail by forwarding (DESIGN.md, "The two
domain modes"). Two questions about one message, answered from its bytes alone:

* `forwarded_for(headers, ...)`: the contact-center address the message was forwarded from,
  if the headers show one. Forwarders leave different traces: Gmail adds
  `X-Forwarded-For: <source> <target>` and `Delivered-To: <source>`; Microsoft 365 inbox rules
  add `X-MS-Exchange-Inbox-Rules-Loop: <source>`; a redirect may add `Resent-From`; a plain
  server-side forward (an alias) keeps the original `To:` and adds nothing, so the address the
  admin named ("Forwarded from") found among the recipients counts too.
* `recognise_confirmation(...)`: a provider's "confirm that you want to forward" mail. Gmail (and
  Google Workspace) sends one from `forwarding-noreply@google.com` with the subject
  "(#<code>) Gmail Forwarding Confirmation - Receive Mail from <source>", a link and the code.
  Microsoft 365 and Outlook.com send none. Providers are a table (`PROVIDERS`): one entry each.

The confirmation link is only ever shown to an admin to click; nothing here or above fetches it.
A link is kept only when it is https and on the provider's own host names, so a forged
"confirmation" cannot put someone else's link in front of the admin.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message
from email.utils import getaddresses
from urllib.parse import urlsplit


@dataclass(frozen=True)
class ConfirmationProvider:
    """How one provider's forwarding-confirmation mail looks."""

    key: str
    label: str
    senders: frozenset[str]          # the From addresses it comes from (lower-case)
    subject: re.Pattern              # must match the subject
    link_hosts: tuple[str, ...]      # a link's host must be one of these or end with "." + one of them
    link_path: re.Pattern            # and its path must match this


PROVIDERS: tuple[ConfirmationProvider, ...] = (
    ConfirmationProvider(
        key="gmail", label="Gmail",
        senders=frozenset({"forwarding-noreply@google.com"}),
        subject=re.compile(r"gmail forwarding confirmation", re.I),
        link_hosts=("google.com",),
        link_path=re.compile(r"/mail/(?:u/\d+/)?vf-"),
    ),
)


@dataclass(frozen=True)
class ForwardingConfirmation:
    """A recognised confirmation mail: who asks to forward to us, the link to click, the code to type."""

    provider: str
    provider_label: str
    requested_by: str | None
    link: str | None
    code: str | None


_LINK = re.compile(r"https://[^\s<>\"')\]]+", re.I)
_CODE_LINE = re.compile(r"confirmation code:?\s*(\d{5,20})", re.I)
_CODE_SUBJECT = re.compile(r"\(#\s*(\d{5,20})\)")
_REQUESTED_SUBJECT = re.compile(r"receive mail from\s+(\S+@\S+)", re.I)
_REQUESTED_BODY = re.compile(r"(\S+@\S+)\s+has requested to automatically forward mail", re.I)


def recognise_confirmation(from_addr: str, subject: str, text: str) -> ForwardingConfirmation | None:
    """The provider's forwarding confirmation this mail is, or None (a customer's mail, anything else).

    Recognised by sender and subject together; the link is the first one in `text` (the plain
    text body) on the provider's own https host, the code from the body or the subject.
    """
    sender = (from_addr or "").strip().lower()
    for provider in PROVIDERS:
        if sender not in provider.senders or not provider.subject.search(subject or ""):
            continue
        code = _first(_CODE_LINE, text) or _first(_CODE_SUBJECT, subject)
        requested = _first(_REQUESTED_SUBJECT, subject) or _first(_REQUESTED_BODY, text)
        link = next((url for url in _LINK.findall(text or "") if _provider_link(provider, url)), None)
        return ForwardingConfirmation(provider.key, provider.label,
                                      requested.strip(".,;:<>").lower()[:320] if requested else None,
                                      link[:2000] if link else None, code)
    return None


def _first(pattern: re.Pattern, value: str | None) -> str | None:
    match = pattern.search(value or "")
    return match.group(1) if match else None


def _provider_link(provider: ConfirmationProvider, url: str) -> bool:
    parts = urlsplit(url.rstrip(".,;:"))
    host = (parts.hostname or "").lower()
    return (parts.scheme == "https" and parts.port is None and not parts.username
            and any(host == h or host.endswith("." + h) for h in provider.link_hosts)
            and bool(provider.link_path.match(parts.path)))


#: Headers a forwarder adds that name the address it forwarded from, in the order we trust them.
_TRACE_HEADERS = ("X-Forwarded-For", "X-MS-Exchange-Inbox-Rules-Loop", "Resent-From", "Delivered-To")


def forwarded_for(headers: Message, platform_address: str, expected: str | None = None) -> str | None:
    """The address this message was forwarded from to `platform_address`, or None when nothing shows one.

    `expected` is the contact-center address the admin named: found in a trace header or among
    To/Cc, it is the answer. Otherwise the first other address a forwarder's trace header names.
    Our own address (and addresses on no domain) never count.
    """
    ours = platform_address.strip().lower()
    expected = (expected or "").strip().lower() or None
    traced: list[str] = []
    for name in _TRACE_HEADERS:
        for value in headers.get_all(name) or []:
            traced += [a for a in _addresses(str(value)) if a != ours]
    recipients = [a for name in ("To", "Cc") for value in headers.get_all(name) or [] for a in _addresses(str(value))]
    if expected and (expected in traced or expected in recipients):
        return expected
    return traced[0][:320] if traced else None


#: An address in a header value, for values the standard parser cannot read (it recurses once per
#: empty list member, so a hostile header of thousands of commas exhausts the stack).
_BARE_ADDRESS = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")
#: Characters of a header value looked at, once its runs of spaces and commas are one comma (a forwarder's
#: trace header is short; a hostile one is not read whole).
_VALUE_LIMIT = 4096


def _addresses(value: str) -> list[str]:
    """Addresses in a header value: a list of mailboxes, or (X-Forwarded-For) bare addresses separated by spaces."""
    value = re.sub(r"[\s,]+", ",", value).strip(",")[:_VALUE_LIMIT]
    try:
        found = [addr.strip().lower() for _name, addr in getaddresses([value]) if "@" in addr]
    except (RecursionError, ValueError, IndexError):
        found = [m.lower() for m in _BARE_ADDRESS.findall(value)]
    return [a for a in found if "@" in a and "." in a.rpartition("@")[2]]
