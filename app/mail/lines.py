"""Line endings: CR-only mail (exported from old Mac clients, some MTAs' spools) is read as LF mail before the parse.

Python's parser already reads a bare CR as a line break for the message's structure (header
lines, boundaries), but leaves it in every payload, and what reads the payloads splits on LF:
`email.iterators.body_line_iterator` (GNU Mailman's bounce detectors), `quopri` (soft line
breaks), the `^`/`$` of a MULTILINE regular expression. So a CR-only delivery report lost its
returned Message-ID, its status and often its recipients, and a quoted-printable body its
lines. `lf_for_bare_cr` makes the breaks the parser sees LFs, once, for everything downstream.

What it leaves alone, and why:

* LF and CRLF mail (nearly all of it; CRLF is what IMAP and SMTP deliver) comes back as the
  same object, not copied: the parser and the readers cope with both. The first line break
  decides, which costs two `find`s instead of a scan of the whole message; a message whose
  first line ends in LF or CRLF but that has bare CRs further down keeps them (its structure is
  still read right);
* a body declared `Content-Transfer-Encoding: binary` (RFC 3030) is the only place where a CR
  may be data rather than a line break (RFC 2045 2.7-2.8 forbid bare CRs in 7bit and 8bit
  text, and base64 and quoted-printable carry their data in ASCII), so it is copied byte for
  byte, exactly as the stdlib parser would hand it on.

The raw message is stored as received; this only changes what the parse reads.
"""
from __future__ import annotations

import re

_BINARY = re.compile(rb"^content-transfer-encoding:[ \t]*binary[ \t]*$", re.IGNORECASE | re.MULTILINE)
#: One line and its ending (the ending is empty only at the end of the message).
_LINE = re.compile(rb"([^\r\n]*)(\r\n|\r|\n|)")
_BOUNDARY = re.compile(rb"""\bboundary[ \t]*=[ \t]*(?:"([^"\r\n]+)"|([^;\s]+))""", re.IGNORECASE)
_MESSAGE_TYPE = re.compile(rb"^content-type:[ \t]*message/(?:rfc822|global)\b", re.IGNORECASE | re.MULTILINE)


def lf_for_bare_cr(raw: bytes) -> bytes:
    """`raw` with LF line breaks when its first line ends in a bare CR (binary bodies kept); else `raw` itself."""
    first_cr = raw.find(b"\r")
    if first_cr < 0 or raw[first_cr + 1:first_cr + 2] == b"\n" or raw.find(b"\n", 0, first_cr) >= 0:
        return raw  # LF or CRLF mail
    normalised = _lf(raw)
    # Two `find`s spare most messages the regular expression's slower scan of every line.
    if (b"inary" not in normalised and b"INARY" not in normalised) or _BINARY.search(normalised) is None:
        return normalised
    return _outside_binary_bodies(raw)


def _lf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def _outside_binary_bodies(raw: bytes) -> bytes:
    """Header blocks line by line (for boundaries and encodings), bodies up to the next boundary in one piece."""
    out: list[bytes] = []
    boundaries: list[bytes] = []
    header: list[bytes] = []
    in_header, binary = True, False
    pos, end = 0, len(raw)
    while pos < end:
        if in_header:
            match = _LINE.match(raw, pos)
            line, pos = match.group(1), match.end()
            out.append(line + b"\n" if match.group(2) else line)
            header.append(line)
            if line:
                continue
            block = b"\n".join(header)  # the blank line: the body follows
            boundaries.extend(a or b for a, b in _BOUNDARY.findall(block) if (a or b) not in boundaries)
            binary = _BINARY.search(block) is not None
            # A returned message's own header block follows its part's.
            in_header, header = _MESSAGE_TYPE.search(block) is not None and not binary, []
            continue
        cut = _next_boundary(raw, pos, boundaries)
        out.append(raw[pos:cut] if binary else _lf(raw[pos:cut]))  # a binary body: every byte as it came
        if cut == end:
            break
        match = _LINE.match(raw, cut)
        out.append(match.group(1) + (b"\n" if match.group(2) else b""))
        pos = match.end()
        # After the closing boundary comes the epilogue, after any other a part's header block.
        in_header, binary = not match.group(1).rstrip(b" \t").endswith(b"--"), False
    return b"".join(out)


def _next_boundary(raw: bytes, pos: int, boundaries: list[bytes]) -> int:
    """Where the next boundary line starts (at `pos` or after a line break), or the end of `raw`."""
    cut = len(raw)
    for boundary in boundaries:
        at = raw.find(b"--" + boundary, pos, cut)
        while at >= 0:
            after = raw[at + 2 + len(boundary):at + 4 + len(boundary)].removeprefix(b"--")[:1]
            if (at == pos or raw[at - 1] in b"\r\n") and after in (b"", b"\r", b"\n", b" ", b"\t"):
                cut = at
                break
            at = raw.find(b"--" + boundary, at + 1, cut)
    return cut
