"""Raw mail bytes to a `ParsedMessage`: headers, bodies, attachments, classification.

`parse_message(raw)` never raises. Real mail is broken in every way a parser can
imagine, and Python's `policy.default` raises late (reading a header, calling
`get_content()` on a part whose broken boundary left a multipart type on a leaf,
an unknown charset, header-registry bugs). So we parse with the tolerant
`compat32` policy (which is also about 3.5 times faster) and decode everything
ourselves, piece by piece, each with a fallback. The pieces have rooms of their own:

* headers (`app.mail.headers`): read raw (8-bit bytes intact), RFC 2047 encoded words decoded per
  chunk, addresses by `email.utils.getaddresses` with a regular-expression fallback; a header block
  broken in the middle is repaired when the lines after the break are still headers; without a
  usable From the sender comes from Sender, Reply-To or the envelope (`sender_source`);
* charsets (`app.mail.charsets.decode_text`): the declared one, its superset (gb2312 → gb18030,
  iso-8859-1 → windows-1252, ...), UTF-8, the message's charset, windows-1252 for Latin text,
  `charset-normalizer`, replacement; the winner is noted in `defects`;
* parts: walked iteratively with depth and count limits (a 3,000-part nesting
  must not blow the stack); a multipart whose boundary parameter is folded or lacks
  its `;`, or whose delimiters are folded or followed by text, is split again; one closed
  without parts shows nothing, one with no delimiter at all is the text (or, beside other
  text, an unnamed file); `multipart/alternative` is read as its last version of each type;
  `message/rfc822` parts become `.eml` attachments; `winmail.dat` (TNEF) is
  unpacked (`app.mail.tnef`, with `tnefparse`) when it can be (its files, else its body);
* large base64 bodies (`app.mail.largeparts`): lifted out of the raw message
  before the stdlib parser sees it and decoded from the raw bytes in chunks, so a
  25 MB attachment is held about once, not several times.

Every fallback taken is recorded in `ParsedMessage.defects`. When even the
top-level parse fails, the result has `error` set and whatever headers could be
read; the ingest service stores such a message with its raw bytes and the error.

The visible part of a reply, without its quoted history, is `app.mail.quotes`'s.

Classification (`auto_reply`, `bulk`, `mailing_list`, `bounce`) follows RFC 3834
and the usual vendor headers; bounce and delivery-report detection lives in
`app.mail.bounce`.
"""
from __future__ import annotations

import mimetypes
import re
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes
from email.generator import BytesGenerator
from email.errors import MissingHeaderBodySeparatorDefect
from email.message import Message
from email.policy import compat32
from io import BytesIO


from app.mail.bounce import Bounce, detect_report
from app.mail.charsets import decode_text
from app.mail.headers import (
    address_in, decode_header_value, header_addresses, header_date, header_param, msgid, msgids, raw_value,
    raw_values, recover_headers, repair_header_block, safe_filename, unescape,
)
from app.mail.html import html_to_text, sanitize_html
from app.mail.lines import lf_for_bare_cr
from app.mail.largeparts import decoded, lift
from app.mail.quotes import visible_reply
from app.mail.subjects import is_automatic_subject
from app.mail.tnef import read_tnef

#: Bodies longer than this are cut (the raw message keeps everything).
MAX_BODY_CHARS = 2_000_000
MAX_DEPTH = 40
MAX_PARTS = 1000


@dataclass
class ParsedAttachment:
    filename: str
    content_type: str
    size: int
    content_id: str | None
    inline: bool
    data: bytes = field(repr=False)
    named: bool = True  # False when the file name was made up here (no name in the message)

    def describe(self) -> dict:
        return {"filename": self.filename, "content_type": self.content_type, "size": self.size,
                "content_id": self.content_id, "inline": self.inline}


@dataclass
class ParsedMessage:
    message_id: str | None = None
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    subject: str = ""
    date: datetime | None = None
    #: Who to answer: From's first address, else (see `sender_source`) Sender, Reply-To or Return-Path.
    from_name: str = ""
    from_addr: str = ""
    #: None when `from_addr` is From's; else where it was taken from: "sender", "reply-to", "return-path".
    sender_source: str | None = None
    to: list[tuple[str, str]] = field(default_factory=list)
    cc: list[tuple[str, str]] = field(default_factory=list)
    reply_to: list[tuple[str, str]] = field(default_factory=list)
    #: The automation headers as they came (lower-case names): auto-submitted, precedence, list-id, ...
    automation: dict[str, str] = field(default_factory=dict)
    text: str = ""
    html: str | None = None  # sanitised
    visible_text: str = ""
    attachments: list[ParsedAttachment] = field(default_factory=list)
    auto_reply: bool = False
    bulk: bool = False
    mailing_list: str | None = None
    bounce: Bounce | None = None
    #: The Message-ID an automatic message says it is about, besides In-Reply-To (an MDN's Original-Message-ID)
    answers: str | None = None
    suppress_auto_response: bool = False  # X-Auto-Response-Suppress / null sender / MAILER-DAEMON
    #: Every fallback taken and defect met, one line each ("subject: declared gb2312, read as gb18030").
    defects: list[str] = field(default_factory=list)
    error: str | None = None
    #: The charset the body declares: how raw 8-bit headers and file names are read when not UTF-8.
    header_charset: str | None = field(default=None, repr=False)

    @property
    def parse_notes(self) -> str | None:
        """`defects` as stored (`Message.parse_notes`): one per line, None when there are none."""
        return "\n".join(self.defects) or None

    @property
    def classification(self) -> str | None:
        """What kind of mail this is, for storage: None for a person's mail."""
        if self.bounce is not None:
            return "feedback" if self.bounce.kind == "feedback" else "bounce"
        if self.auto_reply:
            return "auto_reply"
        if self.mailing_list:
            return "list"
        if self.bulk:
            return "bulk"
        return None

    @property
    def no_auto_reply(self) -> bool:
        """True when an automatic answer must never be sent to this mail (loops, noise)."""
        return bool(self.classification) or self.suppress_auto_response

    @property
    def from_header(self) -> str:
        return _format_address(self.from_name, self.from_addr)

    def addresses(self, name: str) -> str:
        """`to`, `cc` or `reply_to` as one header-like string ("Name <a@b>, c@d")."""
        return ", ".join(_format_address(n, a) for n, a in getattr(self, name))


def _format_address(name: str, addr: str) -> str:
    if name and addr:
        return f'"{name}" <{addr}>' if any(c in name for c in ',;<>"@') else f"{name} <{addr}>"
    return addr or name


# --- decoding helpers -----------------------------------------------------------------------

# --- the parse --------------------------------------------------------------------------------

def parse_message(raw: bytes, *, envelope_from: str | None = None, max_attachments: int = 100) -> ParsedMessage:
    """Parse raw RFC 5322 bytes. Never raises: failures land in `error` and `defects`."""
    raw = lf_for_bare_cr(raw)  # CR-only mail reads as LF mail does (app.mail.lines says why, and what stays)
    result = ParsedMessage()
    try:
        msg = _parse(raw)
        if not msg.keys():
            msg = recover_headers(raw, msg, result.defects)
        elif any(isinstance(d, MissingHeaderBodySeparatorDefect) for d in msg.defects):
            msg = repair_header_block(raw, msg, result.defects)
    except Exception as exc:  # noqa: BLE001 - the compat32 parser practically never raises; be sure
        result.error = f"the message could not be parsed: {exc.__class__.__name__}: {exc}"[:500]
        return result
    try:
        _read_headers(msg, result, envelope_from)
    except Exception as exc:  # noqa: BLE001
        result.defects.append(f"headers partly unreadable ({exc.__class__.__name__}: {exc})"[:300])
    try:
        _read_body(msg, result, max_attachments, raw)
    except Exception as exc:  # noqa: BLE001
        result.error = f"the body could not be read: {exc.__class__.__name__}: {exc}"[:500]
    try:
        _classify(msg, result, envelope_from)
    except Exception as exc:  # noqa: BLE001
        result.defects.append(f"classification failed ({exc.__class__.__name__}: {exc})"[:300])
    if not result.from_addr and not result.error:
        result.defects.append("no sender address")
    return result


#: Where a sender is looked for when From has no usable address, in order (the envelope comes last).
SENDER_FALLBACKS = (("Sender", "sender"), ("Reply-To", "reply-to"))


def _read_headers(msg: Message, result: ParsedMessage, envelope_from: str | None = None) -> None:
    d = result.defects
    for defect in getattr(msg, "defects", [])[:10]:
        d.append(f"header: {defect.__class__.__name__}")
    hint = result.header_charset = _charset_hint(msg)
    result.subject = decode_header_value(raw_value(msg, "Subject"), d, field="subject", hint=hint)[:2000]
    result.to = header_addresses(msg, "To", d, hint)
    result.cc = header_addresses(msg, "Cc", d, hint)
    result.reply_to = header_addresses(msg, "Reply-To", d, hint)
    _read_sender(msg, result, envelope_from, hint)
    result.date = header_date(raw_value(msg, "Date"), d)
    result.message_id = msgid(raw_value(msg, "Message-ID"))
    result.in_reply_to = msgid(raw_value(msg, "In-Reply-To"))
    result.references = msgids(" ".join(raw_values(msg, "References")))
    for name in ("Auto-Submitted", "Precedence", "X-Autoreply", "X-Autorespond", "X-Autoresponder",
                 "X-AutoReply-From", "X-Mail-Autoreply", "X-Auto-Response-Suppress", "List-Id", "List-Post",
                 "List-Unsubscribe", "Mailing-List", "X-Autogenerated", "X-POST-MessageClass", "Return-Path",
                 "X-Failed-Recipients", "Feedback-ID"):
        value = raw_value(msg, name)
        if value is not None:
            result.automation[name.lower()] = decode_header_value(value, hint=hint)[:500]


def _read_sender(msg: Message, result: ParsedMessage, envelope_from: str | None, hint: str | None) -> None:
    """From; without a usable address in it, Sender, Reply-To, then the envelope sender or Return-Path
    (what a mature helpdesk answers), noting where the sender was taken from."""
    d = result.defects
    found = header_addresses(msg, "From", d, hint)
    source = None
    for name, label in SENDER_FALLBACKS:
        if found:
            break
        found = result.reply_to if name == "Reply-To" else header_addresses(msg, name, d, hint)
        source = label
    if not found:
        address = address_in(envelope_from) or address_in(raw_value(msg, "Return-Path"))
        found, source = ([("", address)], "return-path") if address else ([], None)
    if not found:
        return
    result.from_name, result.from_addr = found[0]
    result.sender_source = source
    if source is not None:
        d.append(f"no usable From; sender taken from {dict(SENDER_LABELS)[source]}")


#: How the workspace names each `sender_source` ("Sender taken from Reply-To").
SENDER_LABELS = (("sender", "Sender"), ("reply-to", "Reply-To"), ("return-path", "Return-Path"))


def _charset_hint(msg: Message) -> str | None:
    """The charset the message's text declares (its first few parts): raw 8-bit headers are
    most often written in it (Thunderbird reads them so too)."""
    parts = [msg]
    for _ in range(8):
        if not parts:
            break
        part = parts.pop(0)
        charset = part.get_param("charset") if not part.is_multipart() else None
        if isinstance(charset, tuple):
            charset = charset[2]
        if isinstance(charset, str) and charset.strip():
            return charset.strip()
        if part.is_multipart():
            payload = part.get_payload()
            parts.extend(p for p in payload[:4] if isinstance(p, Message))
    return None


class _Walk:
    def __init__(self, result: ParsedMessage, max_attachments: int) -> None:
        self.result = result
        self.max_attachments = max_attachments
        self.texts: list[str] = []
        self.htmls: list[str] = []
        self.parts = 0
        self.dropped = 0
        #: (type, text) of multiparts without any delimiter of their boundary (see `_read_body`).
        self.unsplit: list[tuple[str, str]] = []
        #: The message's line ending: parts the stdlib parsed into messages are written back with it.
        self.linesep = "\n"
        self.raw = b""  # the message as parsed: where a close delimiter the stdlib consumed is still seen

    def attach(self, att: ParsedAttachment) -> None:
        if len(self.result.attachments) >= self.max_attachments:
            self.dropped += 1
            return
        self.result.attachments.append(att)


def _read_body(msg: Message, result: ParsedMessage, max_attachments: int, raw: bytes = b"") -> None:
    walk = _Walk(result, max_attachments)
    walk.raw = raw
    walk.linesep = "\r\n" if b"\r\n" in raw[:8192] else "\n"
    stack: list[tuple[Message, int]] = [(msg, 0)]
    while stack:
        part, depth = stack.pop()
        walk.parts += 1
        if walk.parts > MAX_PARTS:
            result.defects.append(f"more than {MAX_PARTS} MIME parts; the rest is only in the raw message")
            break
        try:
            children = _leaf_or_children(part, depth, walk)
        except Exception as exc:  # noqa: BLE001 - one broken part must not lose the others
            result.defects.append(f"unreadable part ({exc.__class__.__name__}: {exc})"[:300])
            continue
        if children:
            stack.extend((child, depth + 1) for child in reversed(children))
    if walk.dropped:
        result.defects.append(f"{walk.dropped} attachments over the limit of {max_attachments} not extracted")
    _place_unsplit(walk)

    text = "\n\n".join(t.strip("\r\n") for t in walk.texts if t.strip())
    raw_html = "\n".join(walk.htmls)
    if len(raw_html) > MAX_BODY_CHARS:
        result.defects.append("HTML body truncated")
        raw_html = raw_html[:MAX_BODY_CHARS]
    if raw_html.strip():
        try:
            result.html = sanitize_html(raw_html)
        except Exception as exc:  # noqa: BLE001
            result.defects.append(f"HTML could not be sanitised ({exc.__class__.__name__}); dropped")
            result.html = None
    if not text.strip() and result.html:
        try:
            text = html_to_text(result.html)
        except Exception as exc:  # noqa: BLE001
            result.defects.append(f"HTML could not be converted to text ({exc.__class__.__name__})")
    if len(text) > MAX_BODY_CHARS:
        result.defects.append("text body truncated")
        text = text[:MAX_BODY_CHARS]
    result.text = text.replace("\r\n", "\n").replace("\x00", "")
    result.visible_text = visible_reply(result.text)


def _leaf_or_children(part: Message, depth: int, walk: _Walk) -> list[Message] | None:
    """Handle a leaf (body text or attachment); return the children of a container."""
    result = walk.result
    ctype = (part.get_content_type() or "text/plain").lower()
    maintype = ctype.split("/", 1)[0]
    payload = part.get_payload()

    if maintype == "multipart":
        if isinstance(payload, list):
            if depth >= MAX_DEPTH:
                result.defects.append(f"MIME nesting deeper than {MAX_DEPTH}; inner parts not extracted")
                return None
            return _best_alternatives(payload) if ctype == "multipart/alternative" else payload
        children = _split_multipart(part, payload, result.defects)
        if children:
            return children
        if _closed_without_parts(part, walk.raw):
            # A proper close delimiter and no part before it: what precedes it is the preamble, which
            # RFC 2046 5.1.1 says to ignore (the raw message keeps it).
            result.defects.append(f"{ctype} with no parts; its preamble is not shown")
            return None
        # No delimiter of its boundary at all: its content is shown (or kept as a file) after the walk.
        walk.unsplit.append((ctype, _text_of(part, result)))
        return None

    if ctype in ("message/rfc822", "message/global"):
        inner = payload[0] if isinstance(payload, list) and payload else None
        data = _message_bytes(inner, walk.linesep) if isinstance(inner, Message) else _raw_payload(part)
        subject = decode_header_value(inner.get("Subject")) if isinstance(inner, Message) else ""
        name = _attachment_name(part, result)
        named = name is not None
        if not named:
            name = (safe_filename(subject)[:100] or "message") + ".eml"
        walk.attach(ParsedAttachment(name, "message/rfc822", len(data), _content_id(part), False, data, named))
        return None

    if ctype in ("message/delivery-status", "message/feedback-report", "message/disposition-notification",
                 "text/rfc822-headers"):
        # Read by the bounce detector (from the Message); kept as a file only when the sender named it.
        name = _attachment_name(part, result)
        if name is not None:
            blocks = part.get_payload()  # a delivery-status is parsed into one Message per field block
            data = (b"".join(_message_bytes(b, walk.linesep) for b in blocks) if isinstance(blocks, list)
                    else _raw_payload(part))
            walk.attach(ParsedAttachment(name, ctype, len(data), _content_id(part), False, data))
        return None

    disposition = (part.get_content_disposition() or "").lower()
    filename = _attachment_name(part, result)
    if ctype in ("text/plain", "text/html") and disposition != "attachment" and not filename:
        (walk.htmls if ctype == "text/html" else walk.texts).append(_text_of(part, result))
        return None

    if maintype == "message" and isinstance(payload, list):
        # message/external-body, message/partial, ...: the stdlib parsed the body as a message; its bytes
        # (external-body's phantom header block, partial's fragment) are the part's content.
        data = b"".join(_message_bytes(inner, walk.linesep) for inner in payload if isinstance(inner, Message))
        if data.endswith((b"\n\n", b"\r\n\r\n")) and not any(isinstance(p, Message) and p.get_payload() for p in payload):
            # Headers only (external-body's usual form): the line break after them belongs to the delimiter
            # (RFC 2046 5.1.1); the generator writes a header/body separator the part did not have.
            data = data[:-2] + b"\n" if not data.endswith(b"\r\n\r\n") else data[:-2]
    else:
        data = _raw_payload(part)
    if ctype in ("application/ms-tnef", "application/vnd.ms-tnef") or (filename or "").lower() == "winmail.dat":
        if _unpack_tnef(data, walk):
            return None
    content_id = _content_id(part)
    inline = disposition == "inline" or (not disposition and content_id is not None)
    named = filename is not None
    if not filename:
        ext = mimetypes.guess_extension(ctype) or ".bin"
        filename = f"attachment-{len(result.attachments) + 1}{ext}"
    walk.attach(ParsedAttachment(filename, ctype[:200], len(data), content_id, inline, data, named))
    return None


def _place_unsplit(walk: _Walk) -> None:
    """A multipart with no delimiter of its boundary is all preamble to a strict reader. Nothing lost: when
    the message has no other text it is the text; beside other text it is kept as a file (unnamed)."""
    result = walk.result
    has_other = any(t.strip() for t in walk.texts) or any(h.strip() for h in walk.htmls)
    for ctype, text in walk.unsplit:
        if not text.strip():
            continue
        if has_other:
            result.defects.append(f"{ctype} without readable parts; kept as a file")
            data = text.encode("utf-8")
            walk.attach(ParsedAttachment(f"attachment-{len(result.attachments) + 1}.txt", "text/plain", len(data),
                                         None, False, data, named=False))
        else:
            result.defects.append(f"{ctype} without readable parts; read as text")
            walk.texts.append(text)


def _closed_without_parts(part: Message, raw: bytes) -> bool:
    """The message holds the close delimiter of the part's boundary, which the stdlib found no part before
    (it consumes that line: the part's payload is what preceded it)."""
    boundary = part.get_boundary()
    if not boundary:
        return False
    mark = re.escape(boundary.encode("utf-8", "surrogateescape"))
    return re.search(rb"^--" + mark + rb"--[ \t]*\r?$", raw, re.MULTILINE) is not None


def _is_body_leaf(part, subtype: str) -> bool:
    return (isinstance(part, Message) and part.get_content_type() == f"text/{subtype}"
            and (part.get_content_disposition() or "").lower() != "attachment"
            and part.get_param("name") is None and part.get_param("filename", header="Content-Disposition") is None)


def _best_alternatives(children: list) -> list:
    """multipart/alternative's parts are one content in several forms, the last the sender's preferred
    (RFC 2046 5.1.4): of several text/plain (or text/html) versions only the last non-blank one is read,
    as mail clients show one version, not all of them in a row. Other parts are kept as they are."""
    drop: set[int] = set()
    for subtype in ("plain", "html"):
        leaves = [i for i, child in enumerate(children) if _is_body_leaf(child, subtype)]
        if len(leaves) > 1:
            filled = [i for i in leaves if str(children[i].get_payload()).strip()]
            keep = (filled or leaves)[-1]
            drop.update(i for i in leaves if i != keep)
    return [child for i, child in enumerate(children) if i not in drop]


_BOUNDARY_PARAM = re.compile(r'boundary\s*=\s*(?:"([^"]+)"|([^\s;"]+))', re.IGNORECASE)
_MEDIA_TYPE = re.compile(r"\s*(multipart/[\w.+-]+)", re.IGNORECASE)
_FOLD = re.compile(r"\r?\n(?=[ \t])")


def _split_multipart(part: Message, payload, defects: list[str]) -> list[Message] | None:
    """The parts of a multipart the stdlib could not split, when its boundary can still be read.

    Two forms real mail has: a boundary parameter folded inside its quotes (`boundary="foo` CRLF ` bar"`,
    which unfolds to "foo bar") and one without the `;` before it (`multipart/mixed` CRLF TAB `boundary=x`).
    The body is parsed again under a clean Content-Type only when a delimiter line of that boundary is in it.
    """
    if not isinstance(payload, str):
        return None
    header = str(part.get("Content-Type", ""))
    media = _MEDIA_TYPE.match(header)
    found = _BOUNDARY_PARAM.search(header)
    declared = part.get_boundary()
    candidates = [declared] if declared else []
    if found:
        candidates.append(found.group(1) or found.group(2))
    try:
        body = payload.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:
        body = payload.encode("utf-8", "surrogateescape")
    media_type = media.group(1) if media else "multipart/mixed"
    for boundary in dict.fromkeys(_FOLD.sub("", c) for c in candidates):
        if not boundary or '"' in boundary or "\n" in boundary or boundary == declared:
            continue
        if not re.search(rb"^--" + re.escape(boundary.encode("utf-8", "surrogateescape")), body, re.MULTILINE):
            continue
        children = _reparse(media_type, boundary, body)
        if children:
            defects.append("malformed multipart boundary parameter; parts recovered")
            return children
    if declared and "\n" in declared:
        # The delimiter lines are folded just like the parameter ("--foo " LF "  bar"): unfold them too.
        folded = declared.encode("utf-8", "surrogateescape")
        if b"--" + folded in body:
            boundary = _FOLD.sub("", declared)
            children = _reparse(media_type, boundary, body.replace(
                b"--" + folded, b"--" + boundary.encode("utf-8", "surrogateescape")))
            if children:
                defects.append("multipart delimiters folded like the boundary parameter; parts recovered")
                return children
    if declared and "\n" not in declared:
        # RFC 2046 5.1.1's note: the boundary need only begin the line. "--b  text" is a delimiter and
        # "--b-- text" the close, the words after the blank ignored (a boundary character right after "--b"
        # would make it another boundary's delimiter, so only a blank counts).
        mark = re.escape(declared.encode("utf-8", "surrogateescape"))
        junk = re.compile(rb"^(--" + mark + rb"(?:--)?)[ \t]+\S[^\r\n]*", re.MULTILINE)
        if junk.search(body):
            children = _reparse(media_type, declared, junk.sub(rb"\1", body))
            if children:
                defects.append("multipart delimiters followed by text; parts recovered")
                return children
    return None


def _reparse(media_type: str, boundary: str, body: bytes) -> list[Message] | None:
    """The parts of `body` read under a clean Content-Type with `boundary`, or None."""
    head = f'Content-Type: {media_type}; boundary="{boundary}"\n\n'
    reparsed = message_from_bytes(head.encode("utf-8", "surrogateescape") + body, policy=compat32)
    children = reparsed.get_payload()
    return children if reparsed.is_multipart() and children else None


def _attachment_name(part: Message, result: ParsedMessage) -> str | None:
    """The file name the sender gave (Content-Disposition's filename, else Content-Type's name), or None."""
    for header, param in (("Content-Disposition", "filename"), ("Content-Type", "name")):
        name = header_param(part, header, param, result.defects, hint=result.header_charset)
        name = safe_filename(name) if name is not None else None
        if name:
            return name
    return None


def _content_id(part: Message) -> str | None:
    value = part.get("Content-ID")
    if not value:
        return None
    value = unescape(str(value)).strip()
    return value.strip("<>").strip()[:500] or None


#: A delimiter line straight followed by the close delimiter of the same boundary: an empty part.
_EMPTY_LAST_PART = re.compile(rb"^(--[^\r\n]{1,200}?)[ \t]*(\r?\n)(?=\1--[ \t]*\r?$)", re.MULTILINE)


def _empty_parts_apart(raw: bytes) -> bytes:
    """"--b" then "--b--" is an empty part (no headers, no body) before the close; the stdlib misses that
    close delimiter and reads the epilogue as the part's body. A blank line between them says the same
    thing in a form it reads (RFC 2046 5.1.1: the part is empty either way)."""
    return _EMPTY_LAST_PART.sub(rb"\1\2\2", raw) if b"--" in raw else raw


def _parse(raw: bytes) -> Message:
    """The compat32 parse, with large base64 bodies kept out of the parser (`app.mail.largeparts`)."""
    try:
        lifted = lift(raw)
        if lifted is not None:
            msg = message_from_bytes(_empty_parts_apart(lifted.raw), policy=compat32)
            lifted.resolve(msg)
            return msg
    except Exception:  # noqa: BLE001 - the plain parse below gives the same answer, only with more memory
        pass
    return message_from_bytes(_empty_parts_apart(raw), policy=compat32)


def _raw_payload(part: Message) -> bytes:
    data = decoded(part)  # a large base64 body, decoded from the raw bytes before the stdlib could copy it
    if data is not None:
        return data
    cte = part.get("Content-Transfer-Encoding")
    if isinstance(cte, str) and cte != cte.strip():
        # "base64 " or "quoted-printable\r": the stdlib compares the raw value and would not decode at all.
        part.replace_header("Content-Transfer-Encoding", cte.strip())
    try:
        data = part.get_payload(decode=True)
    except Exception:  # noqa: BLE001
        data = None
    if data is None:
        payload = part.get_payload()
        if isinstance(payload, str):
            return payload.encode("utf-8", "surrogateescape")
        return b""
    return data


_META_CHARSET = re.compile(rb"<meta[^>]{0,200}?charset=[\"']?([A-Za-z0-9_.:-]{1,40})", re.IGNORECASE)


def _text_of(part: Message, result: ParsedMessage) -> str:
    data = _raw_payload(part)
    charset = part.get_param("charset")
    if isinstance(charset, tuple):  # RFC 2231 charset parameter
        charset = charset[2]
    # Declared, its superset, UTF-8, windows-1252 for Latin text, a detector: the note says which won.
    # HTML without a MIME charset says its own in <meta> (what a browser would read it in).
    hint = None
    if not charset and part.get_content_subtype() == "html":
        meta = _META_CHARSET.search(data[:4096])
        hint = meta.group(1).decode("ascii") if meta else None
    text, note = decode_text(data, str(charset) if charset else None, hint=hint)
    if note:
        result.defects.append(f"body: {note}")
    if len(text) > MAX_BODY_CHARS:
        result.defects.append("body part truncated")
        text = text[:MAX_BODY_CHARS]
    return text


def _message_bytes(inner: Message, linesep: str = "\n") -> bytes:
    out = BytesIO()
    try:
        BytesGenerator(out, mangle_from_=False, policy=compat32).flatten(inner, linesep=linesep)
        return out.getvalue()
    except Exception:  # noqa: BLE001
        try:
            return inner.as_string().encode("utf-8", "surrogateescape")
        except Exception:  # noqa: BLE001
            return b""


def _unpack_tnef(data: bytes, walk: _Walk) -> bool:
    """winmail.dat (TNEF) in place of itself: its files, and its message body (Outlook's HTML or plain text
    where the message has none of its own, else kept as an unnamed file; an RTF-only body as `body.rtf`).
    False (keep winmail.dat as it came) when `tnefparse` cannot read it."""
    result = walk.result
    try:
        content = read_tnef(data)
    except Exception as exc:  # noqa: BLE001 - tnefparse raises on many real files
        result.defects.append(f"winmail.dat could not be unpacked ({exc.__class__.__name__}); kept as is")
        return False
    for name, ctype, body in content.files:
        walk.attach(ParsedAttachment(name, ctype, len(body), None, False, body))
    for text, shown, name, ctype in ((content.html, walk.htmls, "body.html", "text/html"),
                                     (content.plain, walk.texts, "body.txt", "text/plain")):
        if not text:
            continue
        if not any(t.strip() for t in shown):
            shown.append(text)
        else:
            encoded = text.encode("utf-8")
            walk.attach(ParsedAttachment(name, ctype, len(encoded), None, False, encoded, named=False))
    if content.rtf:
        walk.attach(ParsedAttachment("body.rtf", "application/rtf", len(content.rtf), None, False, content.rtf,
                                     named=False))
    if not (content.files or content.html or content.plain or content.rtf):
        result.defects.append("winmail.dat holds no files and no body (only message properties); "
                              "it stays in the raw message")
    return True


# --- classification -------------------------------------------------------------------------------

def _classify(msg: Message, result: ParsedMessage, envelope_from: str | None) -> None:
    a = result.automation
    auto_submitted = a.get("auto-submitted", "").split(";")[0].strip().lower()
    precedence = a.get("precedence", "").strip().lower()
    if auto_submitted and auto_submitted != "no":
        result.auto_reply = True
    if any(k in a for k in ("x-autoreply", "x-autorespond", "x-autoresponder", "x-autoreply-from",
                            "x-mail-autoreply")):
        result.auto_reply = True
    if precedence == "auto_reply" or a.get("x-autogenerated", "").lower() == "reply":
        result.auto_reply = True
    if "autoresponder" in a.get("x-post-messageclass", "").lower():
        result.auto_reply = True
    if is_automatic_subject(result.subject):  # automatic replies without RFC 3834 headers (older Exchange)
        result.auto_reply = True
    if precedence in ("bulk", "junk", "list"):
        result.bulk = True
    if "list-unsubscribe" in a:
        result.bulk = True
    if "list-id" in a or "list-post" in a or "mailing-list" in a:
        result.mailing_list = a.get("list-id") or a.get("list-post") or a.get("mailing-list")

    result.bounce = detect_report(msg, result, envelope_from)
    if result.bounce is not None and result.bounce.kind == "mdn":
        result.answers = result.bounce.original_message_id  # threads it when it has no In-Reply-To
        result.bounce = None
        result.auto_reply = True  # a read receipt is an automatic message, not a delivery report

    local = result.from_addr.split("@", 1)[0].lower()
    suppress = a.get("x-auto-response-suppress", "").lower()
    if (local in ("mailer-daemon", "postmaster", "mailerdaemon", "mail-daemon")
            or any(word in suppress for word in ("all", "oof", "autoreply"))
            or (envelope_from is not None and envelope_from.strip("<> ") == "")
            or a.get("return-path", "").strip() == "<>"):
        result.suppress_auto_response = True
