"""The reports' facts of a conversation follow what happens: ingest, routing, replies, status, reopen; and the
backfill computes the same row from the messages."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from app.blobs import blob_store
from app.flows.runner import run_flow
from app.inbox.actions import assign, set_status
from app.mail.tokens import make_message_id
from app.models.inbox import Conversation
from app.models.reports import ConversationFacts
from app.runtime import facts
from app.runtime.backfill import backfill
from app.runtime.ingest import RawItem, ingest
from app.runtime.outbound.compose import queue_message
from tests.factories import make_queue, make_user
from tests.mail.conftest import make_address, message


def run(address, raw: bytes):
    item = RawItem(blob_store().put(raw), len(raw), "cli", "test", raw=raw)
    return ingest(address.id, [item])[0]


@pytest.fixture
def support(app, db):
    return make_address("support@mail.pigeonhole.test")


def row(db, conversation_id) -> ConversationFacts:
    db.session.expire_all()
    return db.session.get(ConversationFacts, conversation_id)


def test_facts_follow_ingest_routing_reply_resolve_and_reopen(support, db):
    result = run(support, message())
    cid = result.conversation_id
    first = row(db, cid)
    assert first is not None and first.messages_in == 1 and first.status == "open"
    assert first.first_customer_message_at == first.created_at and first.first_response_at is None

    queue = make_queue("Returns")
    agent = make_user("agent", name="Alex Agent")
    queue.members.append(agent)
    db.session.commit()
    conversation = db.session.get(Conversation, cid)
    conversation.queue_id = queue.id
    run_flow(cid)  # routing: the facts copy the queue as the flow left it
    db.session.commit()
    assign(make_user("supervisor"), cid, agent.id)
    db.session.commit()
    assert (row(db, cid).queue_id, row(db, cid).agent_id) == (queue.id, agent.id)

    reply = queue_message(cid, to=["carla@example.com"], subject="Re: order", body_html="<p>Sent today</p>",
                          author_id=agent.id)
    db.session.commit()
    queue_message(cid, to=["carla@example.com"], subject="ack", body_html="<p>Got it</p>", automatic=True)
    db.session.commit()
    got = row(db, cid)
    assert got.first_response_at == reply.created_at and got.reply_count == 1  # automatic mail is no response

    set_status(agent, cid, "resolved")
    db.session.commit()
    resolved = row(db, cid)
    assert resolved.status == "resolved" and resolved.resolved_at is not None
    assert resolved.resolution_seconds == round((resolved.resolved_at - resolved.created_at).total_seconds())

    again = run(support, message(subject="Re: Where is my order?",
                                 **{"In-Reply-To": make_message_id(conversation.token, "mail.pigeonhole.test")}))
    assert again.conversation_id == cid
    reopened = row(db, cid)
    assert reopened.status == "open" and reopened.resolved_at is None and reopened.reopened_count == 1
    assert reopened.messages_in == 2 and reopened.last_customer_message_at > reopened.first_customer_message_at


def test_backfill_builds_the_same_row_from_the_messages(support, db):
    result = run(support, message())
    cid = result.conversation_id
    agent = make_user("agent")
    reply = queue_message(cid, to=["carla@example.com"], subject="Re", body_html="<p>x</p>", author_id=agent.id)
    db.session.commit()
    live = row(db, cid)
    expected = (live.first_customer_message_at, live.first_response_at, live.reply_count, live.messages_in,
                live.agent_id)
    db.session.delete(live)
    db.session.commit()
    assert backfill() == 1
    rebuilt = row(db, cid)
    assert (rebuilt.first_customer_message_at, rebuilt.first_response_at, rebuilt.reply_count,
            rebuilt.messages_in, rebuilt.agent_id) == expected
    assert rebuilt.first_response_at == reply.created_at
    assert rebuilt.first_response_seconds == round((rebuilt.first_response_at
                                                    - rebuilt.first_customer_message_at).total_seconds())
    assert rebuilt.first_response_at - rebuilt.first_customer_message_at < timedelta(minutes=1)
    assert db.session.scalars(select(ConversationFacts)).all() == [rebuilt]


def test_flask_reports_backfill_fills_the_facts_of_older_conversations(app, db):
    from tests.factories import make_conversation, make_message

    older = make_conversation(status="resolved")
    make_message(older)
    db.session.execute(ConversationFacts.__table__.delete())
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["reports", "backfill"])
    assert result.exit_code == 0 and "1 conversations" in result.output
    filled = row(db, older.id)
    assert filled.status == "resolved" and filled.resolved_at is not None and filled.messages_in == 1


def test_a_conversation_an_agent_started_has_no_first_response(support, db):
    from tests.factories import make_conversation, make_message

    agent = make_user("agent")
    started = make_conversation(address=support, assignee=agent)
    make_message(started, direction="out", author=agent)
    facts.rebuild(db.session.get(Conversation, started.id))
    db.session.commit()
    queue_message(started.id, to=["carla@example.com"], subject="Re", body_html="<p>more</p>", author_id=agent.id)
    db.session.commit()
    got = row(db, started.id)
    assert got.reply_count == 2 and got.first_response_at is None and got.first_response_seconds is None
