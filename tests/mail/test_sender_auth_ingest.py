"""Sender authentication end to end, through real parts: mail sent over SMTP to the real ingress, its
SPF/DKIM/DMARC checked by the ingest job against a real DNS server on loopback (tests/dns_server.py),
the verdict stored with the message and routed on by a flow; polled mail read from a real Dovecot,
believed only from a trusted Authentication-Results header; a DNS that does not answer loses nothing."""
from __future__ import annotations

import smtplib

import pytest
from rq import SimpleWorker
from rq.serializers import JSONSerializer
from sqlalchemy import select

import jobs
from app.extensions import db
from app.auth.services import ensure_queue
from app.mail.dkim import generate_private_key, record_value, sign
from app.models.inbound import InboundRaw
from app.models.inbox import Conversation, Message
from app.queues import get_queue, redis_connection
from app.runtime.poll import poll_address
from tests.dns_server import LoopbackDNS
from tests.flow_factories import make_address, make_flow
from tests.mail.test_ingress import running, wait_for_jobs
from tests.mail.test_mailboxes import append, imap_address

SUPPORT = "support@mail.pigeonhole.test"
KEY = generate_private_key()


@pytest.fixture(scope="module")
def dns():
    server = LoopbackDNS()
    server.txt("bank.test", "v=spf1 ip4:127.0.0.1 -all")
    server.txt("_dmarc.bank.test", "v=DMARC1; p=reject")
    server.txt("s1._domainkey.bank.test", record_value(KEY))
    server.txt("evil.test", "v=spf1 ip4:192.0.2.66 -all")
    server.txt("_dmarc.slow.test", "v=DMARC1; p=reject")
    server.silence("slow.test")
    yield server
    server.stop()


@pytest.fixture
def dns_app(app, dns):
    app.config.update(DNS_RESOLVER=dns.address, DNS_TIMEOUT_SECONDS=0.5)
    return app


def mail(sender: str, subject: str, msgid: str, to: str = SUPPORT) -> bytes:
    return (f"From: Bank Support <{sender}>\r\nTo: {to}\r\nSubject: {subject}\r\n"
            f"Date: Mon, 1 Jun 2026 10:00:00 +0000\r\nMessage-ID: <{msgid}>\r\n\r\n"
            "Please confirm your account details.\r\n").encode()


def _send(port: int, raw: bytes, envelope_from: str, helo: str) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10, local_hostname=helo) as smtp:
        smtp.sendmail(envelope_from, [SUPPORT], raw)


def _work(app) -> None:
    """Once the ingress announced every stored message (another thread, after the 250), a real RQ worker drains
    ingest and flows."""
    db.session.expire_all()
    wait_for_jobs([f"ingest-raw-{i}" for i in db.session.scalars(
        select(InboundRaw.id).where(InboundRaw.status == "pending"))])
    jobs.use_app(app)
    connection = redis_connection()
    SimpleWorker([get_queue(q, connection) for q in ("ingest", "flows")], connection=connection,
                 serializer=JSONSerializer).work(burst=True)


def _inbound(db, msgid: str) -> Message:
    db.session.expire_all()
    return db.session.scalars(select(Message).where(Message.message_id == f"<{msgid}>")).one()


def test_ingress_mail_is_checked_in_the_worker_and_routed_by_sender_authentication(dns_app, db):
    ensure_queue("General")  # the default queue (first by name) takes what no rule routes
    held = ensure_queue("Held for review")
    db.session.commit()
    flow = make_flow([{"name": "Hold forged mail", "match": "all",
                       "conditions": [{"type": "sender_auth", "value": "fail"}],
                       "actions": [{"type": "set_queue", "queue_id": held.id}, {"type": "add_tags", "tags": ["forged"]}]}])
    make_address(SUPPORT, flow=flow)
    genuine = sign(mail("alerts@bank.test", "Your statement", "genuine-1@bank.test"), "s1", "bank.test", KEY)
    spoofed = mail("alerts@bank.test", "Urgent: confirm your account", "spoof-1@evil.test")
    with running(dns_app) as ingress:
        _send(ingress.port, genuine, "bounces@bank.test", "mx.bank.test")
        _send(ingress.port, spoofed, "x@evil.test", "evil.test")
        rows = db.session.scalars(select(InboundRaw).order_by(InboundRaw.id)).all()
        # What the ingress stored for the worker: the client and its HELO (no verdict yet: no lookups in SMTP)
        assert [(r.client_ip, r.helo, r.envelope_from) for r in rows] == [
            ("127.0.0.1", "mx.bank.test", "bounces@bank.test"), ("127.0.0.1", "evil.test", "x@evil.test")]
        _work(dns_app)

    good = _inbound(db, "genuine-1@bank.test")
    assert (good.auth_spf, good.auth_spf_domain, good.auth_dkim, good.auth_dkim_domain, good.auth_dmarc,
            good.auth_from_domain) == ("pass", "bank.test", "pass", "bank.test", "pass", "bank.test")
    forged = _inbound(db, "spoof-1@evil.test")
    assert (forged.auth_spf, forged.auth_spf_domain, forged.auth_dkim, forged.auth_dmarc) == \
        ("fail", "evil.test", "none", "fail")
    assert "p=reject" in forged.auth_reason
    # The flow holds the forged one only
    assert db.session.get(Conversation, forged.conversation_id).queue_id == held.id
    assert "forged" in (db.session.get(Conversation, forged.conversation_id).tags or [])
    assert db.session.get(Conversation, good.conversation_id).queue_id != held.id


def test_a_dns_that_does_not_answer_stores_temperror_and_loses_nothing(dns_app, db):
    make_address(SUPPORT)
    with running(dns_app) as ingress:
        _send(ingress.port, mail("someone@slow.test", "Slow DNS", "slow-1@slow.test"), "someone@slow.test", "slow.test")
        _work(dns_app)
    message = _inbound(db, "slow-1@slow.test")
    assert message.auth_spf == "temperror" and message.auth_dmarc == "temperror"
    assert message.conversation_id is not None and message.subject == "Slow DNS"
    assert db.session.scalars(select(InboundRaw)).one().status == "created"


GOOGLE = ("Authentication-Results: mx.google.com;\r\n dkim=none (no signature);\r\n"
          " spf=softfail (google.com: domain of transitioning x@evil.test does not designate 192.0.2.9)"
          " smtp.mailfrom=x@evil.test;\r\n dmarc=fail (p=REJECT sp=REJECT dis=REJECT) header.from=bank.test\r\n")


def test_polled_mail_believes_only_a_trusted_authentication_results_header(app, db, dovecot, mailbox_user, tls_app):
    login, password = mailbox_user
    tls_app.config["MAILBOX_BACKFILL"] = "7"  # the first poll takes the last week's mail
    address = imap_address(dovecot, login, password)
    trusted = GOOGLE.encode() + mail("alerts@bank.test", "Trusted header", "polled-1@x", to=login)
    forged = GOOGLE.replace("mx.google.com", "mx.evil.test").replace("dmarc=fail", "dmarc=pass").encode() \
        + mail("alerts@bank.test", "Untrusted header", "polled-2@x", to=login)
    append(dovecot, login, password, [trusted, forged])
    assert poll_address(address.id).statuses == {"created": 2}
    one = _inbound(db, "polled-1@x")
    assert (one.auth_spf, one.auth_spf_domain, one.auth_dkim, one.auth_dmarc, one.auth_from_domain) == \
        ("softfail", "evil.test", "none", "fail", "bank.test")
    assert "mx.google.com" in one.auth_reason
    two = _inbound(db, "polled-2@x")
    assert (two.auth_spf, two.auth_dkim, two.auth_dmarc) == ("none", "none", "none")
    assert "trusted" in two.auth_reason


def test_lookalike_of_our_own_domain_is_flagged(dns_app, db):
    make_address(SUPPORT)
    make_address("help@acme.test")  # a custom domain of ours
    with running(dns_app) as ingress:
        _send(ingress.port, mail("billing@acrne.test", "Invoice", "look-1@x"), "billing@acrne.test", "acrne.test")
        _work(dns_app)
    message = _inbound(db, "look-1@x")
    assert message.auth_lookalike == "acme.test" and message.auth_from_domain == "acrne.test"
