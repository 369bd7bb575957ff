"""Header fields to text: encoded words, raw 8-bit bytes, addresses, ids, dates, file names.

Each function never raises; what it had to guess goes into the `defects` list it is
given. `recover_headers` retries a header block the parser could not read at all.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from email import message_from_bytes
from email.header import decode_header
from email.message import Message
from email.policy import compat32
from email.utils import getaddresses, parsedate_to_datetime

from app.mail.charsets import decode_bytes

_MSGID = re.compile(r"<[^<>\s]+>")
_ADDR = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
_BARE_ID = re.compile(r"[^<>\s@]+@[^<>\s@]+")

#: References kept per message (the newest).
MAX_REFERENCES = 100


def unescape(value: str) -> str:
    """A header str from the bytes parser may carry raw 8-bit bytes as surrogates."""
    if any("\udc80" <= c <= "\udcff" for c in value):
        return decode_bytes(value.encode("utf-8", "surrogateescape"), None)
    return value


def decode_header_value(value, defects: list[str] | None = None) -> str:
    """An RFC 2047 header (or raw 8-bit) to text, never raising."""
    if value is None:
        return ""
    if not isinstance(value, str):  # email.header.Header
        try:
            value = str(value)
        except Exception:  # noqa: BLE001
            return ""
    if "=?" not in value:
        return collapse(unescape(value))
    try:
        chunks = decode_header(value)
    except Exception as exc:  # noqa: BLE001 - malformed encoded words
        if defects is not None:
            defects.append(f"undecodable header encoding ({exc.__class__.__name__})")
        return collapse(unescape(value))
    out = []
    for chunk, charset in chunks:
        if isinstance(chunk, bytes):
            if charset is None:
                out.append(unescape(chunk.decode("ascii", "surrogateescape")))
            else:
                out.append(decode_bytes(chunk, charset, defects))
        else:
            out.append(unescape(chunk))
    return collapse("".join(out))


def collapse(text: str) -> str:
    """Unfold a header: newlines and runs of whitespace become one space; NULs go."""
    return re.sub(r"\s+", " ", text.replace("\x00", "")).strip()


def header_addresses(msg: Message, name: str, defects: list[str]) -> list[tuple[str, str]]:
    values = [unescape(str(v)) for v in (msg.get_all(name) or []) if v is not None]
    if not values:
        return []
    out: list[tuple[str, str]] = []
    try:
        pairs = getaddresses(values)
    except Exception:  # noqa: BLE001
        pairs = []
    for raw_name, addr in pairs:
        addr = addr.strip()
        if "@" not in addr:
            continue
        out.append((decode_header_value(raw_name, defects), addr))
    if not out:
        # A header getaddresses refuses (unbalanced quotes, encoded words around the address).
        found = _ADDR.findall(" ".join(decode_header_value(v) for v in values))
        if found:
            defects.append(f"malformed {name} header; addresses recovered by pattern")
        out = [("", a) for a in dict.fromkeys(found)]
    return out


def msgid(value: str | None) -> str | None:
    if not value:
        return None
    value = unescape(str(value))
    match = _MSGID.search(value)
    if match:
        return match.group(0)[:995]
    bare = _BARE_ID.search(value)
    return f"<{bare.group(0)}>"[:995] if bare else None


def msgids(value: str | None) -> list[str]:
    if not value:
        return []
    found = _MSGID.findall(unescape(str(value)))
    if not found:
        one = msgid(value)
        found = [one] if one else []
    return list(dict.fromkeys(found))[-MAX_REFERENCES:]


def header_date(value: str | None, defects: list[str]) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(unescape(str(value)))
    except Exception:  # noqa: BLE001
        defects.append("unreadable Date header")
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def safe_filename(name: str) -> str:
    name = re.sub(r"[\x00-\x1f\x7f]", "", name).replace("\\", "/").split("/")[-1].strip().strip(".") or ""
    return name[:200]


_LOOSE_HEADER = re.compile(rb"^([A-Za-z0-9-]+)[ \t]+:", re.MULTILINE)


def recover_headers(raw: bytes, msg: Message, defects: list[str]) -> Message:
    """No header was recognised: retry with "Name :" fields repaired, leading junk lines skipped."""
    head, sep, body = raw.partition(b"\n\n") if b"\r\n\r\n" not in raw[:65536] else raw.partition(b"\r\n\r\n")
    repaired = _LOOSE_HEADER.sub(rb"\1:", head)
    lines = repaired.splitlines(keepends=True)
    while lines and not re.match(rb"^[A-Za-z0-9-]+:", lines[0]):
        lines.pop(0)
    if not lines:
        return msg
    retry = message_from_bytes(b"".join(lines) + sep + body, policy=compat32)
    if retry.keys():
        defects.append("malformed header block; headers recovered")
        return retry
    return msg
