"""Who a reply goes to: address lists parsed and validated, and the Reply / Reply All / Forward rules.

Pure functions over strings (no database, no Flask), so the rules are easy to test:

* Reply: to the last customer sender (their Reply-To when they set one, else From).
  Replying to one of our own outgoing messages goes to that message's recipients again.
* Reply All: the sender in To; everyone else the message was addressed to (To and Cc)
  in Cc; our own addresses (the channel addresses and the contact-center mailboxes they
  forward from) removed; each address once, compared case-insensitively.
* Forward: nobody (the agent chooses), subject `Fwd: ...`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from email.headerregistry import Address
from email.utils import getaddresses

from app.mail.addresses import InvalidAddress, check_address


@dataclass
class AddressList:
    """A parsed To/Cc/Bcc field: the good addresses (display form) and one message per bad one."""

    addresses: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def emails(self) -> list[str]:
        return [addr for _, addr in getaddresses(self.addresses)]

    def text(self) -> str:
        return ", ".join(self.addresses)


def _split(value: str) -> list[str]:
    """Split on commas and semicolons outside quotes and angle brackets."""
    parts, buf, quoted, angle = [], [], False, False
    for ch in value or "":
        if ch == '"':
            quoted = not quoted
        elif ch == "<" and not quoted:
            angle = True
        elif ch == ">" and not quoted:
            angle = False
        if ch in ",;\n" and not quoted and not angle:
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
    parts.append("".join(buf))
    return [p.strip() for p in parts if p.strip()]


def parse_addresses(value: str) -> AddressList:
    """Parse what an agent typed into a recipient field. Never raises: bad entries become errors."""
    result = AddressList()
    seen: set[str] = set()
    for item in _split(value):
        pairs = getaddresses([item])
        name, addr = pairs[0] if len(pairs) == 1 else ("", "")
        if not addr or "@" not in addr:
            result.errors.append(f"“{item}” is not a valid email address.")
            continue
        try:
            checked = check_address(addr)
        except InvalidAddress as exc:
            result.errors.append(f"“{item}” is not a valid email address: {exc}")
            continue
        email = checked.normalized
        if email.lower() in seen:
            continue
        seen.add(email.lower())
        result.addresses.append(format_address(name, email))
    return result


def format_address(name: str, email: str) -> str:
    try:
        return str(Address(display_name=name or "", addr_spec=email))
    except (ValueError, IndexError):
        return email


def emails_of(value: str) -> list[str]:
    """The bare addresses of a header-like string ("A <a@x>, b@y")."""
    return [addr for _, addr in getaddresses([value or ""]) if addr]


def _dedupe(values: list[str], exclude: set[str]) -> list[str]:
    out, seen = [], set(exclude)
    for display in values:
        pairs = getaddresses([display])
        if not pairs or not pairs[0][1]:
            continue
        key = pairs[0][1].lower()
        if key in seen:
            continue
        seen.add(key)
        out.append(display)
    return out


def _entries(value: str) -> list[str]:
    return [format_address(name, addr) for name, addr in getaddresses([value or ""]) if addr]


@dataclass
class Replied:
    """What the rules need of the message being answered."""

    direction: str  # "in" or "out"
    from_addr: str
    reply_to: str
    to_addrs: str
    cc_addrs: str
    subject: str


def reply_recipients(message: Replied, own: set[str]) -> tuple[list[str], list[str]]:
    """(to, cc) for "Reply"."""
    own = {o.lower() for o in own}
    if message.direction == "out":
        return _dedupe(_entries(message.to_addrs), own), []
    sender = _entries(message.reply_to) or _entries(message.from_addr)
    return _dedupe(sender, own) or _dedupe(_entries(message.from_addr), set()), []


def reply_all_recipients(message: Replied, own: set[str]) -> tuple[list[str], list[str]]:
    """(to, cc) for "Reply All": sender in To, the other participants in Cc, our addresses removed."""
    own = {o.lower() for o in own}
    if message.direction == "out":
        to = _dedupe(_entries(message.to_addrs), own)
        cc = _dedupe(_entries(message.cc_addrs), own | {e.lower() for e in emails_of(", ".join(to))})
        return to, cc
    to, _ = reply_recipients(message, own)
    taken = own | {e.lower() for e in emails_of(", ".join(to))}
    cc = _dedupe(_entries(message.to_addrs) + _entries(message.cc_addrs), taken)
    return to, cc
