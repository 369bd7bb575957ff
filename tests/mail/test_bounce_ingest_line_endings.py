"""The whole ingest path with a CR-only delivery report: our outgoing message is marked bounced."""
from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.blobs import blob_store
from app.models.inbox import Conversation, Message
from app.runtime.ingest import RawItem, ingest
from tests.mail.conftest import make_address, message

DATA = Path(__file__).resolve().parent.parent / "data" / "mail"


@pytest.mark.parametrize(("name", "ours", "recipient", "status"), [
    ("bounce-dsn-headers.eml", "<ph.dsnheaders00000.c1@mail.pigeonhole.test>", "full@example.org", "5.2.2"),
    ("bounce-exim-text.eml", "<ph.eximtextbounce0.d2@mail.pigeonhole.test>", "nobody@example.com", "5.1.1"),
])
def test_a_cr_only_bounce_marks_our_outgoing_message_bounced(app, db, name, ours, recipient, status):
    support = make_address("support@mail.pigeonhole.test")
    first = message()
    created = ingest(support.id, [RawItem(blob_store().put(first), len(first), "cli", "test", raw=first)])[0]
    out = Message(conversation_id=created.conversation_id, address_id=support.id, direction="out",
                  message_id=ours, delivery_status="sent")
    db.session.add(out)
    db.session.commit()

    raw = (DATA / name).read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r")
    assert b"\n" not in raw
    result = ingest(support.id, [RawItem(blob_store().put(raw), len(raw), "cli", "test", raw=raw)])[0]

    assert result.status == "bounce" and result.conversation_id == created.conversation_id
    db.session.refresh(out)
    assert out.delivery_status == "bounced"
    assert recipient in out.delivery_error and status in out.delivery_error
    report = db.session.get(Message, result.message_row_id)
    assert report.classification == "bounce" and blob_store().get(report.raw_sha256) == raw  # stored as received
    assert db.session.scalar(select(func.count()).select_from(Conversation)) == 1
