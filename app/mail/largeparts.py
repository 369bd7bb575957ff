"""Large base64 bodies decoded straight from the raw bytes, without the stdlib parser's copies.

The stdlib parser reads a message line by line: it keeps every line as a string,
joins them into the part's payload, and `get_payload(decode=True)` encodes that
string back to bytes and joins its lines once more before decoding. A 25 MB
attachment so costs several times its size at once. Instead:

1. `lift(raw)`, before parsing, finds the long runs of base64-looking lines (at
   least `RUN_MIN_BYTES`) and replaces each by one placeholder line, so the parser
   only ever sees a small message;
2. `Lifted.resolve(msg)`, right after parsing, visits the parts whose payload
   holds a placeholder. A base64 leaf (not inside an attached message) gets its
   bytes decoded chunk by chunk from the raw message with `binascii`, kept on the
   part for `decoded(part)`. Anything else (a text part with a long run of
   letters, an attached `.eml`, base64 that is not clean) gets its original text
   back, so the parse is exactly what the stdlib alone would have given.

The decoded bytes are the ones `email`'s own base64 decoding gives (tested
against it); only base64 streams the stdlib decodes without guessing are decoded
here (alphabet characters, then at most two `=` at the very end; anything else
outside the alphabet, such as line breaks and junk, is skipped exactly as the
stdlib skips it). Other streams go back to the stdlib.
"""
from __future__ import annotations

import binascii
import re
import secrets
from dataclasses import dataclass, field
from email.message import Message
from io import BytesIO

#: Only messages and runs at least this large are lifted (smaller ones cost the stdlib little).
RUN_MIN_BYTES = 1 << 20
#: Raw bytes decoded per step (a multiple of 4 after filtering is carried over).
CHUNK = 1 << 20

_RUN = re.compile(rb"(?:^|(?<=\n))(?:[A-Za-z0-9+/=]{4,998}[ \t]*\r?\n)++")  # possessive: no backtracking stack
_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
_NOT_ALPHABET = bytes(b for b in range(256) if b not in _ALPHABET)
_DECODED = "_pigeonhole_decoded"  # attribute of a resolved part: its decoded bytes


@dataclass
class Lifted:
    """The raw message with its large runs replaced by placeholders, and where each run was."""

    raw: bytes
    original: bytes = field(repr=False)
    token: str = ""
    runs: list[tuple[int, int, int]] = field(default_factory=list)  # (start, end, terminator length)

    def resolve(self, msg: Message) -> None:
        """Give every part holding a placeholder its bytes: decoded (base64 leaf) or its original text."""
        placeholder = re.compile(re.escape(self.token) + r"(\d+)")
        stack: list[tuple[Message, bool]] = [(msg, False)]
        while stack:
            part, in_message = stack.pop()
            for name in ("preamble", "epilogue"):
                value = getattr(part, name, None)
                if isinstance(value, str) and self.token in value:
                    setattr(part, name, self._restore(value, placeholder))
            payload = part._payload  # noqa: SLF001 - read as the parser left it, without decoding
            if isinstance(payload, list):
                nested = in_message or part.get_content_maintype() == "message"
                stack.extend((child, nested) for child in payload if isinstance(child, Message))
                continue
            if not isinstance(payload, str) or self.token not in payload:
                continue
            data = None
            if not in_message and str(part.get("content-transfer-encoding", "")).lower() == "base64":
                data = decode_base64(self._pieces(payload, placeholder))
            if data is None:
                part._payload = self._restore(payload, placeholder)  # noqa: SLF001
            else:
                setattr(part, _DECODED, data)

    def _run_text(self, index: int) -> str:
        start, end, eol = self.runs[index]
        return self.original[start:end - eol].decode("ascii")

    def _restore(self, text: str, placeholder: re.Pattern) -> str:
        return placeholder.sub(lambda m: self._run_text(int(m.group(1))), text)

    def _pieces(self, payload: str, placeholder: re.Pattern):
        """The part's body as the stdlib would hold it, in chunks: its own text and the runs from `original`."""
        view = memoryview(self.original)
        pos = 0
        for m in placeholder.finditer(payload):
            yield payload[pos:m.start()].encode("ascii", "surrogateescape")
            start, end, _eol = self.runs[int(m.group(1))]
            for at in range(start, end, CHUNK):
                yield view[at:min(at + CHUNK, end)]
            pos = m.end()
        yield payload[pos:].encode("ascii", "surrogateescape")


def lift(raw: bytes) -> Lifted | None:
    """`raw` with its runs of base64-looking lines of `RUN_MIN_BYTES` or more lifted out; None when there is none."""
    if len(raw) < RUN_MIN_BYTES:
        return None
    runs = [(m.start(), m.end()) for m in _RUN.finditer(raw) if m.end() - m.start() >= RUN_MIN_BYTES]
    if not runs:
        return None
    token = f"PIGEONHOLE-LIFTED-{secrets.token_hex(8)}-"
    while token.encode() in raw:  # practically never; a placeholder must not be in the message already
        token = f"PIGEONHOLE-LIFTED-{secrets.token_hex(8)}-"
    out, pos, spans = [], 0, []
    for index, (start, end) in enumerate(runs):
        eol = 2 if raw[end - 2:end] == b"\r\n" else 1
        out += [raw[pos:start], f"{token}{index}".encode(), raw[end - eol:end]]
        spans.append((start, end, eol))
        pos = end
    out.append(raw[pos:])
    return Lifted(b"".join(out), raw, token, spans)


def decoded(part: Message) -> bytes | None:
    """The bytes `resolve` decoded for this part, or None (then the stdlib's `get_payload(decode=True)` applies)."""
    return getattr(part, _DECODED, None)


def decode_base64(pieces) -> bytes | None:
    """Decode base64 given in pieces, as `email` decodes a part's body; None when the stream is not clean.

    Clean: after dropping every byte outside the base64 alphabet, alphabet
    characters followed by at most two `=`, and not one character too many for a
    quantum. The stdlib's answer for such a stream is the plain decoding of its
    characters (padded as needed), which is what this returns.
    """
    out = BytesIO()  # getvalue() hands over its buffer: the decoded bytes exist once
    carry = b""
    padding = 0
    for piece in pieces:
        chars = bytes(piece).translate(None, _NOT_ALPHABET)
        if not chars:
            continue
        if padding:  # only "=" may follow "="
            if chars.strip(b"="):
                return None
            padding += len(chars)
            continue
        cut = chars.find(b"=")
        if cut >= 0:
            if chars[cut:].strip(b"="):
                return None
            padding = len(chars) - cut
            chars = chars[:cut]
        chars = carry + chars
        whole = len(chars) - len(chars) % 4
        out.write(binascii.a2b_base64(chars[:whole]))
        carry = chars[whole:]
    if len(carry) == 1 or (padding and not (len(carry) in (2, 3) and len(carry) + padding <= 4)):
        return None
    if carry:
        out.write(binascii.a2b_base64(carry + b"=" * (4 - len(carry))))
    return out.getvalue()
