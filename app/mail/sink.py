"""The development SMTP sink (`flask smtp-sink`) and the reading side of its outbox folder.

In the demo, `scripts/run` starts this sink on a free loopback port and points
`SMTP_RELAY_URL` at it, so everything Pigeonhole sends lands here instead of the
Internet. Each message becomes two files in the outbox folder (`OUTBOX_DIR`):

    20261127T112158.123456Z-1a2b3c4d.eml    the bytes exactly as received
    20261127T112158.123456Z-1a2b3c4d.json   the envelope: MAIL FROM, RCPT TO (Bcc included), time

written to a temporary name and renamed, so a reader never sees half a message.
`list_outbox()` and `read_outbox()` read them back for the admins' Outbox page
(`/ops/outbox`). The sink is for development only: it accepts anything from the
loopback interface, authenticates nobody and never delivers.
"""
from __future__ import annotations

import json
import os
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email import message_from_bytes, policy
from email.parser import BytesHeaderParser
from email.utils import getaddresses
from pathlib import Path

from aiosmtpd.controller import Controller

NAME = re.compile(r"^\d{8}T\d{6}\.\d{6}Z-[0-9a-f]{8}$")


def write_message(directory: str | os.PathLike, mail_from: str, rcpt_tos: list[str], data: bytes,
                  received_at: datetime | None = None) -> str:
    """Store one received message (and its envelope); returns its name."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    received_at = received_at or datetime.now(timezone.utc)
    name = f"{received_at.strftime('%Y%m%dT%H%M%S.%fZ')}-{secrets.token_hex(4)}"
    envelope = {"mail_from": mail_from, "rcpt_tos": list(rcpt_tos), "received_at": received_at.isoformat()}
    for suffix, payload in ((".json", json.dumps(envelope).encode()), (".eml", data)):
        tmp = directory / f".tmp-{name}{suffix}"
        tmp.write_bytes(payload)
        os.replace(tmp, directory / f"{name}{suffix}")
    return name


@dataclass
class OutboxEntry:
    """One line of the Outbox list."""

    name: str
    received_at: datetime
    mail_from: str
    rcpt_tos: list[str]
    subject: str
    from_header: str
    to_header: str
    cc_header: str
    size: int

    @property
    def hidden_recipients(self) -> list[str]:
        """Envelope recipients that no header shows: the Bcc."""
        shown = {a.lower() for _, a in getaddresses([self.to_header, self.cc_header])}
        return [r for r in self.rcpt_tos if r.lower() not in shown]


@dataclass
class OutboxPart:
    index: int
    filename: str
    content_type: str
    size: int
    disposition: str


@dataclass
class OutboxMessage:
    """One received message, decoded for display."""

    entry: OutboxEntry
    headers: list[tuple[str, str]]
    text: str | None
    html: str | None
    parts: list[OutboxPart] = field(default_factory=list)


def _path(directory: str | os.PathLike, name: str, suffix: str) -> Path:
    if not NAME.match(name or ""):
        raise FileNotFoundError(name)
    return Path(directory) / f"{name}{suffix}"


def _envelope(directory, name: str) -> dict:
    try:
        return json.loads(_path(directory, name, ".json").read_text())
    except (FileNotFoundError, ValueError):
        return {"mail_from": "", "rcpt_tos": []}


def _entry(directory, name: str, headers) -> OutboxEntry:
    envelope = _envelope(directory, name)
    received = datetime.strptime(name.split("-")[0], "%Y%m%dT%H%M%S.%fZ").replace(tzinfo=timezone.utc)
    return OutboxEntry(
        name=name, received_at=received, mail_from=envelope.get("mail_from", ""),
        rcpt_tos=list(envelope.get("rcpt_tos", [])), subject=str(headers.get("Subject", "") or ""),
        from_header=str(headers.get("From", "") or ""), to_header=str(headers.get("To", "") or ""),
        cc_header=str(headers.get("Cc", "") or ""),
        size=_path(directory, name, ".eml").stat().st_size,
    )


def list_outbox(directory: str | os.PathLike, query: str = "", limit: int = 200) -> list[OutboxEntry]:
    """The newest messages first; `query` keeps those whose subject, From, To or envelope mention it."""
    root = Path(directory)
    if not root.is_dir():
        return []
    names = sorted((p.stem for p in root.glob("*.eml") if NAME.match(p.stem)), reverse=True)
    needle = (query or "").strip().lower()
    parser = BytesHeaderParser(policy=policy.default)
    out = []
    for name in names:
        try:
            with _path(root, name, ".eml").open("rb") as fh:
                headers = parser.parse(fh)
            entry = _entry(root, name, headers)
        except FileNotFoundError:
            continue  # removed while we listed
        if needle:
            haystack = " ".join([entry.subject, entry.from_header, entry.to_header, entry.mail_from,
                                 *entry.rcpt_tos]).lower()
            if needle not in haystack:
                continue
        out.append(entry)
        if len(out) >= limit:
            break
    return out


def _attachments(message) -> list:
    return [p for p in message.walk() if not p.is_multipart() and p.get_filename()]


def read_outbox(directory: str | os.PathLike, name: str) -> OutboxMessage:
    """One message decoded for display. Raises `FileNotFoundError` for an unknown or malformed name."""
    raw = _path(directory, name, ".eml").read_bytes()
    message = message_from_bytes(raw, policy=policy.default)
    text_part = message.get_body(("plain",))
    html_part = message.get_body(("html",))
    parts = []
    for index, part in enumerate(_attachments(message)):
        payload = part.get_payload(decode=True) or b""
        parts.append(OutboxPart(index, part.get_filename(), part.get_content_type(), len(payload),
                                part.get_content_disposition() or "attachment"))
    return OutboxMessage(
        entry=_entry(directory, name, message),
        headers=[(k, str(v)) for k, v in message.items()],
        text=_lines(text_part.get_content()) if text_part is not None else None,
        html=_lines(html_part.get_content()) if html_part is not None else None,
        parts=parts,
    )


def _lines(text: str) -> str:
    return text.replace("\r\n", "\n")


def read_raw(directory: str | os.PathLike, name: str) -> bytes:
    return _path(directory, name, ".eml").read_bytes()


def read_part(directory: str | os.PathLike, name: str, index: int) -> tuple[str, str, bytes]:
    """(filename, content type, bytes) of the index-th attachment. Raises `FileNotFoundError`."""
    message = message_from_bytes(read_raw(directory, name), policy=policy.default)
    parts = _attachments(message)
    if not 0 <= index < len(parts):
        raise FileNotFoundError(f"{name} part {index}")
    part = parts[index]
    return part.get_filename(), part.get_content_type(), part.get_payload(decode=True) or b""


class OutboxHandler:
    """aiosmtpd handler: every message goes to the outbox folder, and the reply names the file."""

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = Path(directory)

    async def handle_DATA(self, server, session, envelope):
        name = write_message(self.directory, envelope.mail_from, envelope.rcpt_tos,
                             envelope.original_content or envelope.content)
        return f"250 2.0.0 OK stored as {name}"


def start_sink(directory: str | os.PathLike, host: str = "127.0.0.1", port: int = 8025):
    """Start the sink in a background thread; returns the aiosmtpd controller (call `.stop()`)."""
    controller = Controller(OutboxHandler(directory), hostname=host, port=port, ready_timeout=10,
                            data_size_limit=50 * 1024 * 1024, decode_data=False)
    controller.start()
    return controller
