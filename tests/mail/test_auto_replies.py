"""Automatic replies (out-of-office, vacation responders, read receipts) through the real ingest service.

An automatic reply joins the conversation it answers (our Message-IDs, the conversation token,
the customer's chain, then the same contact's subject inside the window), is marked as such,
never reopens the conversation, never runs the flow and does not count as the customer's reply
(the conversation's last activity and unread marker stay). One that matches nothing is stored
apart: a message row with its raw bytes, no conversation, `InboundRaw.status == "auto_reply"`.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.blobs import blob_store
from app.inbox.conversation import conversation_detail
from app.inbox.lists import list_inbox, mark_seen
from app.models.inbound import InboundRaw
from app.models.inbox import Contact, Conversation, Message
from app.queues import get_queue
from app.runtime.ingest import RawItem, ingest
from tests.factories import make_user
from tests.mail.conftest import make_address, message

DATA = Path(__file__).resolve().parent.parent / "data" / "mail"
TOKEN = "Rf2dblChrgTk9xQ4mZ7w"  # the conversation token in the fixtures' In-Reply-To/References
OUR_REPLY = f"<ph.{TOKEN}.a8Kq1Lz0@mail.pigeonhole.test>"
EARLIER = datetime.now(timezone.utc) - timedelta(hours=3)


def run(address, raw: bytes):
    item = RawItem(blob_store().put(raw), len(raw), "cli", "test", raw=raw)
    return ingest(address.id, [item])[0]


def fixture(name: str) -> bytes:
    return (DATA / name).read_bytes()


def flow_message_ids() -> list[int]:
    return [j.args[1] for j in get_queue("flows").jobs]


@pytest.fixture
def support(app, db):
    return make_address("support@mail.pigeonhole.test")


@pytest.fixture
def refund(support, db):
    """Carla's "Refund for double charge" and our reply to it (Message-ID `OUR_REPLY`), three hours ago."""
    created = run(support, message(subject="Refund for double charge", msgid="<carla-refund-1@example.com>"))
    conversation = db.session.get(Conversation, created.conversation_id)
    conversation.token = TOKEN
    conversation.status = "pending"  # waiting for the customer
    conversation.last_message_at = EARLIER
    db.session.get(Message, created.message_row_id).created_at = EARLIER - timedelta(minutes=5)
    db.session.add(Message(conversation_id=conversation.id, address_id=support.id, direction="out",
                           message_id=OUR_REPLY, subject="Re: Refund for double charge", text="Refunded.",
                           delivery_status="sent", created_at=EARLIER))
    db.session.commit()
    return conversation


def assert_joined_quietly(db, result, conversation, status="pending"):
    """Threaded into `conversation`, marked automatic, nothing else about the conversation changed."""
    db.session.refresh(conversation)
    assert (result.status, result.conversation_id) == ("threaded", conversation.id)
    assert conversation.status == status
    assert conversation.last_message_at == EARLIER  # no bump: not the customer's reply
    stored = db.session.get(Message, result.message_row_id)
    assert stored.classification == "auto_reply" and stored.no_auto_reply is True
    assert result.flow is False and result.message_row_id not in flow_message_ids()
    assert db.session.scalar(select(func.count()).select_from(Conversation)) == 1


def test_an_out_of_office_answering_our_reply_joins_its_conversation(refund, support, db):
    result = run(support, fixture("ooo-in-reply-to.eml"))
    assert_joined_quietly(db, result, refund)
    assert db.session.get(InboundRaw, result.raw_id).status == "threaded"


def test_an_out_of_office_with_only_references_joins_by_the_token(refund, support, db):
    db.session.execute(Message.__table__.delete().where(Message.direction == "out"))  # our row is gone
    db.session.commit()
    assert_joined_quietly(db, run(support, fixture("ooo-references-only.eml")), refund)


def test_an_out_of_office_with_only_the_subject_joins_the_same_customers_conversation(refund, support, db):
    assert_joined_quietly(db, run(support, fixture("ooo-subject-only-de.eml")), refund)


@pytest.mark.parametrize("prefix", [
    "Automatic reply: Re:", "Automatische Antwort: AW:", "Réponse automatique : RE :", "Respuesta automática: RE:",
    "Risposta automatica: R:", "Automatisch antwoord: Antw:", "Autosvar: SV:", "Automatyczna odpowiedź: Odp:",
    "自动回复: 回复:", "自动回复：Re：", "自動応答: Re:", "Out of Office: RE:", "Abwesend: AW:", "AutoReply: Re:",
    "Auto: Re:", "Resposta automática: RES:", "Automaattinen vastaus: VS:", "Automatisk svar: SV:",
    "Out of Office AutoReply: Re:", "Abwesenheitsnotiz: AW:",
])
def test_translated_out_of_office_subjects_thread_without_any_header(refund, support, db, prefix):
    raw = message(subject=f"{prefix} Refund for double charge", body="I am away until Monday.")
    assert_joined_quietly(db, run(support, raw), refund)


def test_the_subject_rule_stays_with_the_same_customer_and_the_window(refund, support, db, app):
    other = run(support, message(subject="Automatic reply: Re: Refund for double charge",
                                 sender="Dave <dave@example.com>", Auto_Submitted="auto-replied"))
    assert other.status == "auto_reply" and other.conversation_id is None
    refund.last_message_at = datetime.now(timezone.utc) - timedelta(days=app.config["THREAD_WINDOW_DAYS"] + 1)
    db.session.commit()
    late = run(support, message(subject="Automatic reply: Re: Refund for double charge",
                                Auto_Submitted="auto-replied"))
    assert late.status == "auto_reply" and late.conversation_id is None


@pytest.mark.parametrize("status", ["resolved", "closed"])
def test_an_out_of_office_never_reopens_a_finished_conversation(refund, support, db, status):
    refund.status = status
    db.session.commit()
    assert_joined_quietly(db, run(support, fixture("ooo-in-reply-to.eml")), refund, status=status)
    reply = run(support, message(subject="Re: Refund for double charge", In_Reply_To=OUR_REPLY))
    db.session.refresh(refund)
    assert reply.status == "threaded" and refund.status == "open"  # the customer's own reply does
    assert reply.message_row_id in flow_message_ids()


def test_an_automatic_reply_that_matches_nothing_is_kept_apart(support, db):
    raw = fixture("ooo-unmatched.eml")
    result = run(support, raw)
    assert result.status == "auto_reply" and result.conversation_id is None and result.flow is False
    stored = db.session.get(Message, result.message_row_id)
    assert stored.conversation_id is None and stored.classification == "auto_reply" and stored.no_auto_reply
    assert stored.subject == "Out of Office: Your April statement"
    assert blob_store().get(stored.raw_sha256) == raw
    row = db.session.get(InboundRaw, result.raw_id)
    assert row.status == "auto_reply" and row.message_row_id == stored.id and row.error is None
    assert db.session.scalar(select(func.count()).select_from(Conversation)) == 0
    assert db.session.scalar(select(Contact).where(Contact.email == "pat@partner.example")) is None
    assert flow_message_ids() == []
    assert run(support, raw).status == "duplicate"  # kept once


def test_the_cli_fixture_autoreply_matches_nothing(support, db):
    result = run(support, fixture("autoreply.eml"))
    assert result.status == "auto_reply" and result.conversation_id is None


def test_a_read_receipt_joins_the_conversation_of_the_message_it_reports_on(refund, support, db):
    refund.subject = "Billing question"  # only the receipt's Original-Message-ID can find it
    db.session.commit()
    assert_joined_quietly(db, run(support, fixture("mdn-read-receipt.eml")), refund)


def test_a_read_receipt_for_an_unknown_message_is_kept_apart(support, db):
    result = run(support, fixture("mdn-read-receipt.eml"))
    assert result.status == "auto_reply" and result.conversation_id is None
    assert db.session.get(Message, result.message_row_id).classification == "auto_reply"


def test_an_out_of_office_neither_marks_the_row_unread_nor_becomes_its_snippet(refund, support, db):
    agent = make_user("supervisor")
    mark_seen(agent.id, refund.id)
    db.session.commit()
    run(support, fixture("ooo-in-reply-to.eml"))
    refund.status = "open"
    db.session.commit()
    row = list_inbox(agent.id, "all", "open").rows[0]
    assert row.conversation.id == refund.id
    assert row.unread is False
    assert "out of the office" not in row.snippet and "Refunded." in row.snippet
    detail = conversation_detail(agent.id, refund.id)
    assert [m.automatic_reply for m in detail.messages] == [False, False, True]
    assert detail.waiting_since is None and not detail.unseen  # we answered last; the customer is not waiting


# --- what agents and admins see -------------------------------------------------------------------

def test_the_conversation_page_labels_the_automatic_reply(refund, support, db, client, login_as):
    login_as("supervisor")
    run(support, message(subject="Re: Refund for double charge", In_Reply_To=OUR_REPLY, body="Thanks a lot!"))
    run(support, fixture("ooo-in-reply-to.eml"))
    html = client.get(f"/inbox/c/{refund.id}").get_data(as_text=True)
    assert html.count('class="tile tile-') == 4
    assert html.count(">Automatic reply</span>") == 1  # the out-of-office tile only, in words
    ooo = html[html.index("tile-auto-reply"):]
    assert "Carla Customer" in ooo[:600] and 'aria-label="Automatic reply from' in html


def test_the_open_view_does_not_list_an_unmatched_automatic_reply(support, db, client, login_as):
    login_as("supervisor")
    run(support, message(subject="Where is my order?"))
    run(support, fixture("ooo-unmatched.eml"))
    html = client.get("/inbox/?view=all&status=open").get_data(as_text=True)
    assert "Where is my order?" in html
    assert "Your April statement" not in html and "pat@partner.example" not in html
    everything = client.get("/inbox/?view=all&status=").get_data(as_text=True)
    assert "Your April statement" not in everything


def test_ops_lists_automatic_replies_that_matched_nothing(support, db, client, login_as):
    login_as("admin")
    result = run(support, fixture("ooo-unmatched.eml"))
    html = client.get("/ops/inbound/").get_data(as_text=True)
    assert "Automatic replies not matched to a conversation" in html
    section = html[html.index('id="inbound-auto-replies"'):]
    assert "Pat Partner &lt;pat@partner.example&gt;" in section and "Out of Office: Your April statement" in section
    assert f"/ops/inbound/{result.raw_id}/raw" in section
    raw = client.get(f"/ops/inbound/{result.raw_id}/raw")
    assert raw.status_code == 200 and raw.data == fixture("ooo-unmatched.eml")


def test_reply_answers_the_customer_not_the_out_of_office_that_came_after(refund, support, db):
    """Reply (the composer), a reply queued without a parent, and automation's trigger all take the
    customer's message, never the out-of-office that joined the conversation after it."""
    from app.flows.automatic import latest_inbound
    from app.inbox.drafts import start_draft
    from app.runtime.outbound.compose import _thread

    customer = db.session.scalar(select(Message.id).where(Message.conversation_id == refund.id,
                                                          Message.direction == "in"))
    result = run(support, fixture("ooo-in-reply-to.eml"))
    assert result.conversation_id == refund.id
    agent = make_user("supervisor")
    draft = start_draft(agent, refund.id, "reply")
    assert draft.reply_to_message_id == customer
    assert _thread(refund.id).default_parent_id == customer
    assert latest_inbound(refund.id).id == customer
