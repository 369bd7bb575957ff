"""Header fields to text: encoded words, raw 8-bit bytes, addresses, ids, dates, file names.

Each function never raises; what it had to guess goes into the `defects` list it is
given, named by the field ("subject: declared gb2312, read as gb18030"). Values are read
raw (`raw_values`): compat32's `get()` has already replaced raw 8-bit bytes by U+FFFD;
the bytes go through `app.mail.charsets.decode_text`'s chain instead.

`recover_headers` retries a header block the parser could not read at all;
`repair_header_block` one it stopped reading at a broken line in the middle.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from email import message_from_bytes
from email.header import decode_header
from email.errors import MissingHeaderBodySeparatorDefect
from email.message import Message
from email.policy import compat32
from email.utils import getaddresses, parsedate_to_datetime

from app.mail.charsets import decode_text

_MSGID = re.compile(r"<[^<>\s]+>")
_ATEXT = r"[\w.!#$%&'*+/=?^`{|}~-]"
_ADDR = re.compile(_ATEXT + r"+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
#: The first addr-spec of a token with more than one "@" ("develop!nextmime@ebony@sblab.att.com", an old
#: UUCP/relay route): local-part "@" domain by RFC 5322's grammar, the domain a dot-atom with or without dots.
_FIRST_ADDR_SPEC = re.compile(r"(?<![\w.!#$%&'*+/=?^`{|}~@-])" + _ATEXT + r"+@[\w-]+(?:\.[\w-]+)*(?=@)", re.UNICODE)
_BARE_ID = re.compile(r"[^<>\s@]+@[^<>\s@]+")

#: References kept per message (the newest).
MAX_REFERENCES = 100


def raw_values(msg: Message, name: str) -> list[str]:
    """A header's values as they came, raw 8-bit bytes as surrogates.

    compat32's `get()` turns a header with 8-bit bytes into an `unknown-8bit` Header whose
    text has U+FFFD where every such byte was; the stored value still has the bytes.
    """
    name = name.lower()
    return [v if isinstance(v, str) else str(v) for k, v in msg.raw_items() if k.lower() == name]


def raw_value(msg: Message, name: str) -> str | None:
    values = raw_values(msg, name)
    return values[0] if values else None


def has_8bit(value: str) -> bool:
    return any("\udc80" <= c <= "\udcff" for c in value)


def unescape(value: str, defects: list[str] | None = None, field: str = "header", hint: str | None = None) -> str:
    """A header str from the bytes parser may carry raw 8-bit bytes as surrogates: read them
    through the charset chain (UTF-8, the message's charset, windows-1252, a detector)."""
    if not has_8bit(value):
        return value
    text, note = decode_text(value.encode("utf-8", "surrogateescape"), None, hint=hint)
    if note and defects is not None:
        defects.append(f"{field}: raw 8-bit, {note}")
    return text


def decode_header_value(value, defects: list[str] | None = None, *, field: str = "header",
                        hint: str | None = None, fold: bool = True) -> str:
    """An RFC 2047 header (or raw 8-bit) to text, never raising.

    `field` names it in the notes on fallbacks taken ("subject: declared gb2312, read as
    gb18030"); `fold=False` keeps the whitespace as sent (file names), only unfolding lines.
    """
    if value is None:
        return ""
    if not isinstance(value, str):  # email.header.Header
        try:
            value = str(value)
        except Exception:  # noqa: BLE001
            return ""
    value = unescape(value, defects, field, hint)
    finish = collapse if fold else unfold
    if "=?" not in value:
        return finish(value)
    try:
        chunks = decode_header(value)
    except Exception as exc:  # noqa: BLE001 - malformed encoded words
        if defects is not None:
            defects.append(f"{field}: undecodable header encoding ({exc.__class__.__name__})")
        return finish(value)
    out = []
    for chunk, charset in chunks:
        if isinstance(chunk, str):
            out.append(chunk)
        elif charset is None:  # the text between encoded words, as decode_header encoded it
            out.append(chunk.decode("raw-unicode-escape", "replace"))
        else:
            text, note = decode_text(chunk, charset)
            if note and defects is not None:
                defects.append(f"{field}: {note}")
            out.append(text)
    return finish("".join(out))


def collapse(text: str) -> str:
    """Unfold a header: newlines and runs of whitespace become one space; NULs go."""
    return re.sub(r"\s+", " ", text.replace("\x00", "")).strip()


def unfold(text: str) -> str:
    """RFC 5322 unfolding only: line breaks go, every other space stays (file names are the sender's)."""
    return re.sub(r"\r\n|\r|\n", "", text.replace("\x00", ""))


def header_addresses(msg: Message, name: str, defects: list[str], hint: str | None = None) -> list[tuple[str, str]]:
    """A header's addresses as (display name, address); only entries with an "@" count."""
    values = [unescape(v, defects, name.lower(), hint) for v in raw_values(msg, name)]
    if not values:
        return []
    out: list[tuple[str, str]] = []
    try:
        pairs = getaddresses(values)
    except Exception:  # noqa: BLE001
        pairs = []
    for raw_name, addr in pairs:
        addr = addr.strip()
        if "@" not in addr or addr.startswith("@") or addr.endswith("@"):
            continue  # no address, or one whose local part or domain went missing (a second "@")
        out.append((decode_header_value(raw_name, defects, field=name.lower()), addr))
    if not out:
        # A header getaddresses refuses (unbalanced quotes, encoded words around the address, two "@").
        text = " ".join(decode_header_value(v) for v in values)
        found = _FIRST_ADDR_SPEC.findall(text) or _ADDR.findall(text)
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
    repaired_raw = b"".join(lines) + sep + body
    retry = message_from_bytes(repaired_raw, policy=compat32)
    if retry.keys():
        defects.append("malformed header block; headers recovered")
        if any(isinstance(d, MissingHeaderBodySeparatorDefect) for d in retry.defects):
            return repair_header_block(repaired_raw, retry, defects)
        return retry
    return msg


def header_param(part: Message, header: str, param: str, defects: list[str], *, field: str = "attachment name",
                 hint: str | None = None) -> str | None:
    """A parameter of Content-Disposition/Content-Type as the sender meant it, or None when absent.

    RFC 2231 continuations are joined as sent (no space added or lost); an RFC 2231 charset,
    raw 8-bit bytes and RFC 2047 words inside the quotes are read through the charset chain.
    The stdlib reads the first two with `errors="replace"` (and 8-bit bytes as U+FFFD), so
    the raw header is decoded first and handed to its parameter parser as text.
    """
    raw = raw_value(part, header)
    if raw is None:
        return None
    source = part
    if has_8bit(raw):
        source = Message()
        source[header] = unescape(raw, defects, field, hint)
    try:
        value = source.get_param(param, None, header)
    except Exception:  # noqa: BLE001 - broken RFC 2231 parameters
        defects.append(f"{field}: unreadable {header} parameters")
        return None
    if value is None:
        return None
    if isinstance(value, tuple):  # RFC 2231: (charset, language, text whose chars are the bytes)
        charset, _language, text = value
        if source is part:  # else raw 8-bit bytes, already read as text above
            try:
                text, note = decode_text(text.encode("latin-1"), charset or None, hint=hint)
                if note:
                    defects.append(f"{field}: {note}")
            except UnicodeEncodeError:
                pass
        value = text
    return decode_header_value(str(value), defects, field=field, hint=hint, fold=False)


def address_in(value: str | None) -> str | None:
    """The address of a Return-Path or envelope sender ("<a@b>", "a@b"); None for "<>" or junk."""
    if not value:
        return None
    found = _ADDR.search(unescape(str(value)))
    return found.group(0) if found else None


# --- a header block broken in the middle ----------------------------------------------------------

_LINE = re.compile(rb"[^\r\n]*(?:\r\n|\r|\n|$)")
_FIELD = re.compile(rb"^[\x21-\x39\x3b-\x7e]+:")
#: A field whose name has 8-bit bytes ("Invalìd-Header: ..."): no field by RFC 5322 (ftext is ASCII), but a
#: header line all the same; the stdlib ends the header block there.
_FIELD_8BIT = re.compile(rb"^[\x21-\x39\x3b-\x7e]*[\x80-\xff][\x21-\x39\x3b-\xff]*[ \t]*:")
_KNOWN_FIELD = re.compile(
    rb"^(from|to|cc|bcc|subject|date|message-id|mime-version|content-[a-z-]+|received|reply-to|sender|"
    rb"return-path|in-reply-to|references|delivered-to|x-[\x21-\x39\x3b-\x7e]+|list-[a-z-]+|auto-submitted|"
    rb"precedence|thread-[a-z]+|importance|organization|user-agent|dkim-signature|authentication-results|"
    rb"arc-[a-z-]+|received-spf|comments|keywords|resent-[a-z-]+|disposition-notification-to)[ \t]*:",
    re.IGNORECASE)
#: Headers whose value is text: a broken line after one is most likely its lost continuation.
_FOLD_INTO = re.compile(rb"^(subject|comments|keywords|thread-topic|x-[\x21-\x39\x3b-\x7e]+)[ \t]*:",
                        re.IGNORECASE)
#: Fields a message has once (RFC 5322 3.6): seen again after a broken line, they are not the message's.
_ONCE_ONLY = {b"from", b"sender", b"to", b"cc", b"subject", b"date", b"message-id", b"in-reply-to", b"references",
              b"reply-to", b"mime-version", b"content-type", b"content-transfer-encoding", b"content-disposition"}


def _field_name(line: bytes) -> bytes:
    return line.split(b":", 1)[0].strip().lower()


#: How far a header block is searched, and how many broken lines are repaired in it.
MAX_HEADER_BYTES = 256 * 1024
MAX_BROKEN_LINES = 10


def repair_header_block(raw: bytes, msg: Message, defects: list[str]) -> Message:
    """The parser met a line that is no header (MissingHeaderBodySeparatorDefect) and took the rest
    for the body: when the lines after it are still headers up to a blank line, fold the broken line
    into the text header before it (a lost continuation) or skip it, and parse again.

    Called only when the parser reported the defect: a proper blank line followed by "Word: text"
    lines is a body, never headers. The defect stays on record in `defects`.
    """
    lines = []
    pos = 0
    while pos < len(raw) and pos < MAX_HEADER_BYTES:
        line = _LINE.match(raw, pos).group(0)
        if not line:
            break
        if not line.strip(b"\r\n"):
            break  # the blank line: the header block ends here
        lines.append(line)
        pos += len(line)
    else:
        if pos < len(raw):
            return msg  # no end of the header block in sight
    kept: list[bytes] = []
    notes: list[str] = []
    last_field = b""
    for number, line in enumerate(lines, 1):
        if _FIELD.match(line) or line[:1] in (b" ", b"\t") or (number == 1 and line.startswith(b"From ")):
            kept.append(line)
            last_field = line if _FIELD.match(line) else last_field
            continue
        after = lines[number:]
        eight_bit = _FIELD_8BIT.match(line) is not None
        if len(notes) >= MAX_BROKEN_LINES or line.startswith(b"--") or not _still_headers(after, kept, eight_bit):
            return msg  # the body really starts here (no blank line before it): the parser was right
        loose = _LOOSE_HEADER.match(line)
        if eight_bit:
            notes.append(f"line {number} is a field with 8-bit bytes in its name; skipped")
        elif loose:
            kept.append(_LOOSE_HEADER.sub(rb"\1:", line, count=1))
            notes.append(f"line {number} had a space before its colon; read as a header")
        elif _FOLD_INTO.match(last_field):
            kept.append(b" " + line.lstrip())
            name = last_field.split(b":", 1)[0].decode("ascii", "replace")
            notes.append(f"line {number} is no header; folded into {name}")
        else:
            notes.append(f"line {number} is no header; skipped")
    if not notes:
        return msg
    try:
        repaired = message_from_bytes(b"".join(kept) + raw[pos:], policy=compat32)
    except Exception:  # noqa: BLE001 - keep what the first parse had
        return msg
    if not repaired.keys():
        return msg
    defects.append("header: MissingHeaderBodySeparatorDefect (" + "; ".join(notes) + "); header block recovered")
    return repaired


def _still_headers(lines: list[bytes], before: list[bytes], header_shaped: bool = False) -> bool:
    """The lines after a broken one are the message's headers: the first is a field, one is a known
    field, few are broken, and none repeats a once-only field seen before the broken line (then they
    are a MIME part's or a quoted message's headers, and the body began at the broken line).

    `header_shaped`: the broken line is itself "Name: value" (with 8-bit bytes in the name); then the
    lines after it need no known field, only all be fields up to the blank line."""
    fields = [line for line in lines if line[:1] not in (b" ", b"\t")]
    if not fields or not (_FIELD.match(fields[0]) or _LOOSE_HEADER.match(fields[0]) or _FIELD_8BIT.match(fields[0])):
        return False
    if header_shaped:
        if not all(_FIELD.match(line) or _LOOSE_HEADER.match(line) or _FIELD_8BIT.match(line) for line in fields):
            return False
    elif not any(_KNOWN_FIELD.match(line) for line in fields):
        return False
    seen = {_field_name(line) for line in before} & _ONCE_ONLY
    if any(_field_name(line) in seen for line in fields):
        return False
    broken = [line for line in fields if not _FIELD.match(line)]
    return len(broken) <= MAX_BROKEN_LINES and len(broken) * 3 <= len(fields)
