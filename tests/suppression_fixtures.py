"""Suppressing an address the way production does: a Postfix DSN (tests/data/mail/dsn-postfix-*.eml)
about one of our outgoing messages, through the real ingest service."""
from __future__ import annotations

import itertools
from pathlib import Path

from app.blobs import blob_store
from app.extensions import db
from app.runtime.ingest import RawItem, ingest

DATA = Path(__file__).resolve().parent / "data" / "mail"
_seq = itertools.count(1)


def dsn(name: str, original_message_id: str, recipient: str = "carol@example.com") -> bytes:
    """The fixture DSN about our message `original_message_id` to `recipient`, with a Message-ID of its own."""
    raw = (DATA / name).read_bytes()
    return (raw.replace(b"<ORIGINAL-MESSAGE-ID@mail.pigeonhole.test>", original_message_id.encode())
            .replace(b"DSNSEQ", str(next(_seq)).encode()).replace(b"carol@example.com", recipient.encode()))


def bounce(conversation, recipient: str, name: str = "dsn-postfix-5.1.1.eml"):
    """One of our messages in `conversation`, sent to `recipient`, and the DSN that comes back for it."""
    from app.models.inbox import Message

    n = next(_seq)
    out = Message(conversation_id=conversation.id, address_id=conversation.address_id, direction="out",
                  message_id=f"<ph.sent{n}.x@mail.pigeonhole.test>", to_addrs=recipient, subject="Re: parcel",
                  text="It left.", delivery_status="sent")
    db.session.add(out)
    db.session.commit()
    raw = dsn(name, out.message_id, recipient)
    result = ingest(conversation.address_id, [RawItem(blob_store().put(raw), len(raw), "cli", "test", raw=raw)])[0]
    assert result.status == "bounce", result
    return out
