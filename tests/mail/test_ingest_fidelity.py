"""Mail with no usable From, through the real ingest service: answered like any customer mail,
with where the sender was taken from and the parser's notes stored on the message."""
from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from app.blobs import blob_store
from app.models.inbound import InboundRaw
from app.models.inbox import Conversation, Message
from app.queues import get_queue
from app.runtime.ingest import RawItem, ingest
from tests.mail.conftest import make_address

DATA = Path(__file__).resolve().parents[1] / "data" / "mail"


@pytest.fixture
def support(app, db):
    return make_address("support@mail.pigeonhole.test")


def run(address, name: str, **kw):
    raw = (DATA / name).read_bytes()
    return ingest(address.id, [RawItem(blob_store().put(raw), len(raw), "cli", name, raw=raw, **kw)])[0]


def test_a_message_without_from_but_with_reply_to_becomes_a_normal_conversation(support, db):
    result = run(support, "no-from-reply-to.eml")
    assert result.status == "created" and result.error is None
    conversation = db.session.get(Conversation, result.conversation_id)
    assert conversation.status == "open" and conversation.contact.email == "dana@example.org"
    assert conversation.contact.name == "Dana Doe"
    message = db.session.get(Message, result.message_row_id)
    assert message.sender_source == "reply-to" and message.parse_error is None
    assert message.from_addr == "Dana Doe <dana@example.org>"
    assert "no usable From; sender taken from Reply-To" in message.parse_notes.splitlines()
    assert [j.args for j in get_queue("flows").jobs] == [[conversation.id, message.id]]  # answered like any mail


def test_the_envelope_sender_is_the_last_fallback(support, db):
    result = run(support, "no-from-return-path.eml", envelope_from="<dana@example.org>")
    message = db.session.get(Message, result.message_row_id)
    assert result.status == "created" and message.sender_source == "return-path"
    assert db.session.get(Conversation, result.conversation_id).contact.email == "dana@example.org"


def test_only_mail_with_no_address_at_all_is_stored_with_an_error(support, db):
    result = run(support, "no-address-at-all.eml")
    assert result.status == "stored_with_error" and result.conversation_id is None
    message = db.session.get(Message, result.message_row_id)
    assert message.sender_source is None and message.parse_error.startswith("no sender address")
    assert db.session.scalars(select(InboundRaw)).one().status == "stored_with_error"


def test_a_message_from_from_has_no_source_and_its_charset_notes_are_kept(support, db):
    result = run(support, "header-raw-latin1.eml")
    message = db.session.get(Message, result.message_row_id)
    assert message.sender_source is None and message.subject == "Problème facture n° 1234 – urgent"
    assert message.parse_notes and "subject: raw 8-bit" in message.parse_notes
