"""A small, fast MIME writer for the messages we send.

`app.mail.render` decides *what* a message says; this module writes the bytes.
The stdlib's `EmailMessage` with the SMTP policy parses every header it is given
into a tree and folds it back, which costs more than the rest of a Send; the messages
we send have a fixed shape, so we write them directly (docs/outbound.md has the figures):

* headers are `(name, value)` pairs already made safe by the helpers below:
  `address_header` (display names quoted, or RFC 2047 encoded-words when not
  ASCII), `unstructured_header` (Subject: folded, RFC 2047 when needed) and
  `token_header` (Message-ID, References: folded between tokens); every value
  loses CR and LF, so nothing a user typed can start a header of its own;
* text parts are UTF-8 quoted-printable (`binascii.b2a_qp`, lines of at most 76
  characters, CRLF), so the message is 7-bit whatever the relay supports;
* attachments and inline images are base64, file names in RFC 2231 form
  (`filename*=utf-8''R%C3%A9sum%C3%A9.pdf`, split into numbered sections when
  long) and a plain `name=` only when the name is short ASCII;
* boundaries start with `=_`, which can appear neither in quoted-printable nor
  in base64 text, so no part can contain one.

The structure::

    multipart/mixed                     (only with attachments)
      multipart/alternative
        text/plain
        multipart/related               (only with inline images)
          text/html
          image/... (Content-ID)
      application/... (attachment)

Every output parses back with `email.message_from_bytes(policy=default)` to
the same headers, text and file names (tests/unit/test_mime.py).
"""
from __future__ import annotations

import base64
import binascii
import re
import secrets
from dataclasses import dataclass
from email.utils import getaddresses
from urllib.parse import quote

CRLF = "\r\n"
MAX_LINE = 78               # the recommended header line length (RFC 5322 2.1.1)
_WORD_BYTES = 42            # UTF-8 bytes per encoded-word: 56 base64 chars, 68 with =?utf-8?b?...?=
_SPECIALS = re.compile(r'[()<>\[\]:;@\\,."]')
_MIME_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")
_CONTENT_ID = re.compile(r"[^A-Za-z0-9!#$%&'*+\-/=?^_`{|}~.@]")


@dataclass(frozen=True)
class Part:
    """A file to attach: inline (an image the HTML shows by `cid:`) when `content_id` is set."""

    filename: str
    content_type: str
    data: bytes
    content_id: str | None = None


def _one_line(value: str) -> str:
    """No CR, LF or other control characters inside a header value."""
    return re.sub(r"[\x00-\x08\x0a-\x1f\x7f]+", " ", value or "").strip()


def _encoded_words(text: str) -> list[str]:
    """RFC 2047 B-encoded words of `text`, each at most 75 characters, split on character boundaries."""
    words, chunk, size = [], [], 0
    for char in text:
        n = len(char.encode("utf-8"))
        if size + n > _WORD_BYTES and chunk:
            words.append(chunk)
            chunk, size = [], 0
        chunk.append(char)
        size += n
    if chunk:
        words.append(chunk)
    return ["=?utf-8?b?" + base64.b64encode("".join(w).encode("utf-8")).decode("ascii") + "?=" for w in words]


def fold(name: str, value: str) -> str:
    """`Name: value`, folded (CRLF inserted before a space) where a line would pass 78 characters.

    Folding only ever goes before an existing space, so unfolding gives the value back
    exactly; callers make sure the value has spaces where a fold is legal (between
    mailboxes, encoded-words, tokens and words) and none inside an `<addr>` or an
    encoded-word.
    """
    line, lines = name + ":", []
    for word in value.split(" "):
        if word and len(line) + 1 + len(word) > MAX_LINE and len(line) > len(name) + 1:
            lines.append(line)
            line = ""
        line += " " + word
    lines.append(line)
    return CRLF.join(lines)


def _phrase(name: str) -> str:
    """A display name as it may appear before `<addr>`: as is, quoted, or encoded-words."""
    name = _one_line(name)
    if not name:
        return ""
    if not name.isascii() or "=?" in name:  # "=?" would be read as an encoded-word even in quotes
        return " ".join(_encoded_words(name))
    if _SPECIALS.search(name):
        return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return name


def format_address(name: str, addr: str) -> str:
    """One mailbox for a header: `Name <addr>`, `"Doe, Jane" <addr>` or `=?utf-8?b?...?= <addr>`."""
    addr = _one_line(addr)
    phrase = _phrase(name)
    return f"{phrase} <{addr}>" if phrase else addr


_DISPLAY_SPECIALS = frozenset('()<>@,:;."[]\\')


def display_address(name: str, addr: str) -> str:
    """`Name <addr>` for display and storage, as `str(email.headerregistry.Address(...))` writes it
    (the name quoted when it has specials, non-ASCII kept), without parsing `addr` again: for
    addresses already known to be valid (a published address, a stored contact)."""
    if not name:
        return addr
    if not _DISPLAY_SPECIALS.isdisjoint(name):
        name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{name} <{addr}>"


def address_header(name: str, values: list[str]) -> str:
    """`To:`/`Cc:`/`From:`/`Reply-To:` from address texts (`Name <a@b>`, several per text allowed)."""
    mailboxes = [format_address(n, a) for n, a in getaddresses([_one_line(v) for v in values]) if a]
    return fold(name, ", ".join(mailboxes))


def unstructured_header(name: str, value: str) -> str:
    """A free-text header (Subject): folded at spaces; encoded-words when not ASCII or a word is too long."""
    value = _one_line(value)
    if value.isascii() and "=?" not in value and all(len(w) < MAX_LINE - len(name) - 2 for w in value.split(" ")):
        return fold(name, value)
    return fold(name, " ".join(_encoded_words(value)))


def token_header(name: str, value: str) -> str:
    """A header of ASCII tokens (Message-ID, In-Reply-To, References, Date): folded between tokens."""
    return fold(name, " ".join(_one_line(value).encode("ascii", "replace").decode("ascii").split()))


def _mime_type(value: str) -> str:
    value = (value or "").split(";")[0].strip().lower()
    return value if _MIME_TYPE.match(value) else "application/octet-stream"


def _filename_params(param: str, filename: str) -> list[str]:
    """`filename` as MIME parameters: plain when short ASCII, else RFC 2231 (in numbered sections when long)."""
    filename = _one_line(filename).replace("/", "_").replace("\\", "_") or "attachment"
    if filename.isascii() and len(filename) <= 60 and '"' not in filename:
        return [f'{param}="{filename}"']
    encoded = quote(filename, safe="!#$&+-.^_`|~")
    if len(encoded) <= 50:
        return [f"{param}*=utf-8''{encoded}"]
    sections, current = [], ""
    for match in re.finditer(r"%[0-9A-F]{2}|.", encoded):
        if len(current) + len(match.group()) > 50:
            sections.append(current)
            current = ""
        current += match.group()
    sections.append(current)
    return [f"{param}*{i}*={'utf-8' + chr(39) * 2 if i == 0 else ''}{s}" for i, s in enumerate(sections)]


def _param_header(name: str, value: str, params: list[str]) -> str:
    # A quoted ASCII file name may hold spaces: fold only between the parameters.
    head = name + ": " + value
    lines = [head]
    for param in params:
        if len(lines[-1]) + 2 + len(param) > MAX_LINE:
            lines[-1] += ";"
            lines.append(" " + param)
        else:
            lines[-1] += "; " + param
    return CRLF.join(lines)


def _boundary() -> str:
    return "=_ph" + secrets.token_hex(12)


def _text_part(subtype: str, text: str) -> str:
    body = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")
    if not body.endswith("\r\n"):
        body += "\r\n"
    encoded = binascii.b2a_qp(body.encode("utf-8"), quotetabs=False, istext=True, header=False).decode("ascii")
    return (f'Content-Type: text/{subtype}; charset="utf-8"{CRLF}'
            f"Content-Transfer-Encoding: quoted-printable{CRLF}{CRLF}{encoded}")


def _file_part(part: Part) -> str:
    mime_type = _mime_type(part.content_type)
    type_params = ['charset="utf-8"'] if mime_type.startswith("text/") else []
    type_params += _filename_params("name", part.filename)
    disposition = "inline" if part.content_id else "attachment"
    lines = [_param_header("Content-Type", mime_type, type_params),
             _param_header("Content-Disposition", disposition, _filename_params("filename", part.filename)),
             "Content-Transfer-Encoding: base64"]
    if part.content_id:
        lines.append(f"Content-ID: <{_CONTENT_ID.sub('', part.content_id)}>")
    body = base64.encodebytes(part.data).decode("ascii").replace("\n", CRLF)
    return CRLF.join(lines) + CRLF + CRLF + body


def _multipart(subtype: str, parts: list[str]) -> str:
    boundary = _boundary()
    out = [f'Content-Type: multipart/{subtype}; boundary="{boundary}"{CRLF}{CRLF}']
    for part in parts:
        # The CRLF before a delimiter belongs to the delimiter (RFC 2046 5.1.1), not to the part.
        out.append(f"--{boundary}{CRLF}{part}{CRLF}")
    out.append(f"--{boundary}--{CRLF}")
    return "".join(out)


def build_message(headers: list[str], text: str, html: str, files: list[Part] = ()) -> bytes:
    """The whole message: `headers` (lines made by the helpers above), then the MIME body."""
    inline = [f for f in files if f.content_id]
    attached = [f for f in files if not f.content_id]
    html_part = _text_part("html", html)
    if inline:
        html_part = _multipart("related", [html_part] + [_file_part(f) for f in inline])
    body = _multipart("alternative", [_text_part("plain", text), html_part])
    if attached:
        body = _multipart("mixed", [body] + [_file_part(f) for f in attached])
    head = CRLF.join(headers + ["MIME-Version: 1.0"])
    return (head + CRLF + body).encode("ascii")
