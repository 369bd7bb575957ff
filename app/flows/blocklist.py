"""The Email Blocklist of an address: senders and domains whose mail runs no flow and gets no automatic mail.

An entry is a full address (``someone@example.com``) or a domain, which covers its
subdomains too (``example.com`` blocks ``mail.example.com``). A blocked sender's mail
is still stored and visible; `app.flows.runner` neither automates nor assigns it, and
`app.flows.safety` refuses automatic mail to it.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from sqlalchemy import select

from app.extensions import db
from app.mail.addresses import InvalidAddress, check_address
from app.models.flows import BlocklistEntry

MAX_BLOCKLIST_CSV = 1_000_000  # bytes


def normalise_block(value: str) -> str:
    """A sender address or domain, lower-cased. Raises `ValueError` for anything else."""
    raw = (value or "").strip()
    value = raw.lower().lstrip("@")
    if value.startswith("*."):
        value = value[2:]
    try:
        if not value or len(value) > 320 or value.count("@") > 1:
            raise InvalidAddress(value)
        probe = value if "@" in value else f"postmaster@{value}"
        checked = check_address(probe).normalized.lower()
    except InvalidAddress:
        raise ValueError(f"“{raw}” is not an email address or a domain.") from None
    return checked if "@" in value else checked.rpartition("@")[2]


def entries(address_id: int) -> list[BlocklistEntry]:
    """The address's blocklist, by value."""
    return list(db.session.scalars(select(BlocklistEntry).where(BlocklistEntry.address_id == address_id)
                                   .order_by(BlocklistEntry.value)))


def add_block(address_id: int, value: str, user_id: int | None, source: str = "manual") -> BlocklistEntry:
    """Block a sender or domain on an address. Raises `ValueError` (invalid, or listed already)."""
    value = normalise_block(value)
    if db.session.scalar(select(BlocklistEntry.id).where(BlocklistEntry.address_id == address_id,
                                                         BlocklistEntry.value == value)):
        raise ValueError(f"{value} is on the blocklist already.")
    entry = BlocklistEntry(address_id=address_id, value=value, source=source, created_by_id=user_id)
    db.session.add(entry)
    db.session.flush()
    return entry


def remove_block(address_id: int, entry_id: int) -> None:
    entry = db.session.get(BlocklistEntry, entry_id)
    if entry is None or entry.address_id != address_id:
        raise LookupError(entry_id)
    db.session.delete(entry)


@dataclass
class ImportSummary:
    added: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line, message)


def import_blocklist_csv(address_id: int, data: bytes, user_id: int | None) -> ImportSummary:
    """Add every address or domain of a CSV (first column; a header row is skipped).

    Duplicates (on the list already, or twice in the file) are counted, not added;
    invalid values are reported with their line number. Raises `ValueError` when the
    file is too large or not text.
    """
    if len(data) > MAX_BLOCKLIST_CSV:
        raise ValueError("The file is larger than 1 MB.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError("The file is not UTF-8 text (save it as CSV UTF-8).") from None
    existing = {e.value for e in entries(address_id)}
    summary = ImportSummary()
    try:
        dialect = csv.Sniffer().sniff(text[:2048], delimiters=",;\t") if text.strip() else csv.excel
    except csv.Error:
        dialect = csv.excel
    for lineno, row in enumerate(csv.reader(io.StringIO(text), dialect), 1):
        cell = (row[0] if row else "").strip()
        if not cell or cell.startswith("#"):
            continue
        if lineno == 1 and cell.lower() in {"email", "address", "sender", "domain", "value", "email address"}:
            continue
        try:
            value = normalise_block(cell)
        except ValueError as exc:
            summary.errors.append((lineno, str(exc)))
            continue
        if value in existing:
            summary.duplicates.append(value)
            continue
        existing.add(value)
        db.session.add(BlocklistEntry(address_id=address_id, value=value, source="csv", created_by_id=user_id))
        summary.added.append(value)
    db.session.flush()
    return summary


def is_blocked(address_id: int, sender: str) -> bool:
    sender = (sender or "").strip().lower()
    if not sender:
        return False
    domain = sender.rpartition("@")[2]
    labels = domain.split(".")
    candidates = {sender} | {".".join(labels[i:]) for i in range(len(labels) - 1)}
    return db.session.scalar(select(BlocklistEntry.id).where(
        BlocklistEntry.address_id == address_id, BlocklistEntry.value.in_(candidates)).limit(1)) is not None
