"""Automation skips suppressed addresses, end to end through real parts: SMTP ingress, RQ workers, a flow
with an automatic reply and a queue acknowledgement, a real SMTP relay. The automatic reply to Carol
bounces (a Postfix 5.1.1 DSN through the ingress); her next mail gets neither an automatic reply nor an
acknowledgement, and the flow run log says why."""
from __future__ import annotations

import smtplib

from rq import SimpleWorker
from rq.serializers import JSONSerializer
from sqlalchemy import select

import jobs
from app.auth.services import ensure_queue
from app.models.flows import FlowRun
from app.models.inbox import Message
from app.models.suppression import Suppression
from app.queues import get_queue, redis_connection
from tests.factories import make_user
from tests.flow_factories import make_address, make_flow, make_response
from tests.mail.test_ingress import running
from tests.servers import SMTPServer
from tests.suppression_fixtures import dsn

SUPPORT = "support@mail.pigeonhole.test"


def _mail(subject: str, msgid: str) -> bytes:
    return (f"From: Carol Customer <carol@example.com>\r\nTo: {SUPPORT}\r\nSubject: {subject}\r\n"
            f"Message-ID: <{msgid}@example.com>\r\nDate: Fri, 27 Nov 2026 10:00:00 +0000\r\n\r\n"
            "Hello, where is my parcel?\r\n").encode()


def _work(app) -> None:
    jobs.use_app(app)
    connection = redis_connection()
    SimpleWorker([get_queue(q, connection) for q in ("ingest", "flows", "send")], connection=connection,
                 serializer=JSONSerializer).work(burst=True)


def _send(port: int, raw: bytes, sender: str) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        assert smtp.sendmail(sender, [SUPPORT], raw) == {}


def test_automatic_mail_skips_a_suppressed_address_and_the_run_log_says_why(app, db, tmp_path):
    queue = ensure_queue("Shipping", members=[make_user("agent")])
    queue.ack_enabled, queue.ack_subject, queue.ack_interval_minutes = True, "We got your mail", 0
    queue.ack_body_html = "<p>Hello {{ customer_name }}, we are on it.</p>"
    db.session.commit()
    response = make_response("Parcels", "<p>Parcels take two days, {{ customer_name }}.</p>")
    flow = make_flow([{"name": "Parcels", "conditions": [{"type": "subject", "op": "contains", "value": "parcel"}],
                       "actions": [{"type": "set_queue", "queue_id": queue.id},
                                   {"type": "auto_reply", "response_id": response.id}]}])
    make_address(SUPPORT, flow=flow, forwarded_from="support@acme.test")

    relay = SMTPServer(tmp_path / "relay")
    app.config["SMTP_RELAY_URL"] = f"smtp://127.0.0.1:{relay.port}?tls=none"
    try:
        with running(app) as ingress:
            _send(ingress.port, _mail("Where is my parcel?", "first-1"), "carol@example.com")
            _work(app)
            assert len(relay.messages) == 1, "the automatic reply went out"
            auto = db.session.scalar(select(Message).where(Message.automatic == "auto_reply"))
            assert auto.delivery_status == "sent"

            _send(ingress.port, dsn("dsn-postfix-5.1.1.eml", auto.message_id), "")
            _work(app)
            db.session.expire_all()
            assert db.session.scalar(select(Suppression)).suppressed

            _send(ingress.port, _mail("My parcel again", "second-1"), "carol@example.com")
            _work(app)
    finally:
        relay.stop()
    assert len(relay.messages) == 1, "nothing more went to the suppressed address"
    db.session.expire_all()
    second = db.session.scalar(select(Message).where(Message.message_id == "<second-1@example.com>"))
    run = db.session.scalar(select(FlowRun).where(FlowRun.message_id == second.id))
    results = {a["action"]: a["result"] for a in run.actions}
    assert results["automatic reply"].startswith("not sent: carol@example.com is on the suppression list (Mail to "
                                                 "carol@example.com bounced on ")
    assert results["automatic reply"].endswith("mailbox does not exist (5.1.1))")
    assert results["acknowledge"].startswith("acknowledgement not sent: carol@example.com is on the suppression list")
    assert db.session.scalar(select(Message).where(Message.conversation_id == second.conversation_id,
                                                   Message.direction == "out")) is None
