"""winmail.dat (TNEF, Outlook's own wrapping) read with `tnefparse`: its files and its message body.

`read_tnef()` gives what the stream holds, decoded and named; where it goes in the parsed message
(files beside the others, the body shown or kept as a file) is `app.mail.parse`'s choice.
"""
from __future__ import annotations

import mimetypes
from dataclasses import dataclass, field

from tnefparse import TNEF

from app.mail.charsets import decode_bytes, decode_text
from app.mail.headers import safe_filename


@dataclass
class TnefContent:
    files: list[tuple[str, str, bytes]] = field(default_factory=list)  # (name, content type, bytes)
    html: str = ""
    plain: str = ""
    rtf: bytes | None = None  # the decompressed RTF body, only when there is no HTML or plain one


def read_tnef(data: bytes) -> TnefContent:
    """The files and body of a TNEF stream; raises whatever `tnefparse` raises on a stream it cannot read."""
    tnef = TNEF(data)
    content = TnefContent()
    for att in tnef.attachments:
        name = att.long_filename() or att.name or "attachment"
        if isinstance(name, bytes):
            name = decode_bytes(name, None)
        name = safe_filename(str(name).rstrip("\x00")) or "attachment"
        body = att.data if isinstance(att.data, bytes) else bytes(att.data or b"")
        content.files.append((name, mimetypes.guess_type(name)[0] or "application/octet-stream", body))
    content.html, content.plain = _text(tnef.htmlbody), _text(tnef.body)
    if getattr(tnef, "_rtfbody", None) and not (content.html or content.plain):
        rtf = tnef.rtfbody
        content.rtf = rtf if isinstance(rtf, bytes) and rtf else None
    return content


def _text(value) -> str:
    """A TNEF body property as text (tnefparse gives str, or bytes without a codepage), NULs gone."""
    if isinstance(value, bytes):
        value = decode_text(value, None)[0]
    return value.replace("\x00", "").strip() if isinstance(value, str) else ""
