"""Issue 7 end to end, through real parts: SMTP ingress, Redis and RQ workers, the flow engine with a
trained intent model, routing by capacity, and a real SMTP server as the relay. A mail about a refund
is classified, routed to Billing, assigned to the least-loaded agent and acknowledged once; the
customer's answer to the acknowledgement threads back and is not acknowledged again."""
from __future__ import annotations

import smtplib
from email import message_from_bytes, policy

from rq import SimpleWorker
from rq.serializers import JSONSerializer
from sqlalchemy import select

import jobs
from app.auth.services import ensure_queue
from app.extensions import db as _db
from app.flows import intent_examples
from app.demo.flows import DEMO_INTENTS
from app.models.inbox import Conversation, Message
from app.queues import get_queue, redis_connection
from tests.factories import make_user
from tests.flow_factories import make_address, make_flow
from tests.mail.test_ingress import running
from tests.mua import customer_reply
from tests.servers import SMTPServer

CUSTOMER = "Rita Refund <rita@example.com>"
REFUND = (f"From: {CUSTOMER}\r\nTo: support@mail.pigeonhole.test\r\nSubject: Refund for my order\r\n"
          "Message-ID: <refund-1@example.com>\r\nDate: Fri, 27 Nov 2026 10:00:00 +0000\r\n\r\n"
          "Hello, I was charged twice for order 5521. I would like a refund of the second payment.\r\n").encode()


def _work(app) -> None:
    """A real RQ worker (in this process) drains ingest, flows and send."""
    jobs.use_app(app)
    connection = redis_connection()
    SimpleWorker([get_queue(q, connection) for q in ("ingest", "flows", "send")], connection=connection,
                 serializer=JSONSerializer).work(burst=True)


def _send(port: int, raw: bytes, sender: str = "rita@example.com") -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.sendmail(sender, ["support@mail.pigeonhole.test"], raw)


def test_refund_mail_is_classified_routed_assigned_and_acknowledged_once(app, db, tmp_path):
    for name, (description, examples) in DEMO_INTENTS.items():
        intent_examples.save_intent(None, name, description, "\n".join(examples))
    busy, free = make_user("agent", name="Busy Bea"), make_user("agent", name="Free Fred")
    billing = ensure_queue("Billing", members=[busy, free])
    billing.ack_enabled, billing.ack_subject = True, "We received your message"
    billing.ack_body_html, billing.ack_interval_minutes = "<p>Hello {{ customer_name }}, we are on it.</p>", 60
    db.session.commit()
    flow = make_flow([{"name": "Billing", "match": "all",
                       "conditions": [{"type": "intent", "value": "billing", "min_confidence": 0.3}],
                       "actions": [{"type": "set_queue", "queue_id": billing.id},
                                   {"type": "assign", "mode": "least_loaded"}]}])
    address = make_address("support@mail.pigeonhole.test", flow=flow, forwarded_from="support@acme.test")
    other = make_address("other@mail.pigeonhole.test")
    db.session.add(Conversation(address_id=other.id, contact_id=_contact(db).id, token="busy-bea-1",
                                subject="earlier", queue_id=billing.id, assignee_id=busy.id))
    db.session.commit()

    relay = SMTPServer(tmp_path / "relay")
    app.config["SMTP_RELAY_URL"] = f"smtp://127.0.0.1:{relay.port}?tls=none"
    try:
        with running(app) as ingress:
            _send(ingress.port, REFUND)
            _work(app)
            db.session.expire_all()
            conversation = db.session.scalar(select(Conversation).where(Conversation.address_id == address.id))
            assert conversation.intent == "billing" and conversation.intent_confidence >= 0.3
            assert conversation.queue_id == billing.id and conversation.assignee_id == free.id
            assert len(relay.messages) == 1, "exactly one acknowledgement"
            ack = message_from_bytes(relay.messages[0]["data"], policy=policy.default)
            assert ack["Auto-Submitted"] == "auto-replied" and ack["In-Reply-To"] == "<refund-1@example.com>"
            assert ack["Reply-To"] == "support@acme.test" and "Hello Rita Refund, we are on it." in ack.get_body(
                ("plain",)).get_content()
            assert sorted(relay.messages[0]["rcpt_tos"]) == ["rita@example.com", "support@acme.test"]

            # The customer's client answers the acknowledgement (keeping only In-Reply-To).
            answer = customer_reply(relay.messages[0]["data"], keep="in-reply-to", sender=CUSTOMER,
                                    body="Thanks. It was order 5521, paid on Monday.")
            _send(ingress.port, answer)
            _work(app)
    finally:
        relay.stop()
    db.session.expire_all()
    messages = db.session.scalars(select(Message).where(Message.conversation_id == conversation.id,
                                                        Message.direction == "in")).all()
    assert len(messages) == 2, "the answer threads into the same conversation"
    assert len(relay.messages) == 1, "not acknowledged twice within the interval"
    assert db.session.get(Conversation, conversation.id).assignee_id == free.id  # sticky to Fred


def _contact(db):
    from app.models.inbox import Contact

    contact = Contact(email="someone@example.com", name="Someone")
    _db.session.add(contact)
    _db.session.flush()
    return contact
