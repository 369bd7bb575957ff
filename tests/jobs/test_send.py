"""Outbound mail against real SMTP servers: what arrives, retries, failures, connection reuse, refusals."""
from __future__ import annotations

import time
from email import message_from_bytes, policy
from pathlib import Path

import pytest
import vobject
from sqlalchemy import func, select, update

from app.crypto import encrypt_secret
from app.runtime.outbound import (
    WAITING_KEY, WAITING_TTL_SECONDS, CannotSend, NotRetryable, deliver_message, enqueue_due_messages, enqueue_send,
    mark_bounced, queue_message, retry_message, send_job_id, send_reply,
)
from app.mail.render import OutgoingAttachment
from app.mail.tokens import tokens_in
from app.models.inbox import Message
from app.queues import get_queue
from tests.factories import make_sending_address, make_sending_conversation, make_user
from tests.servers import SMTPServer, free_port

RELAY_USER, RELAY_PASSWORD = "relay-user", "relay-pässword"


@pytest.fixture
def servers():
    started = []
    yield started
    for server in started:
        server.stop()


@pytest.fixture
def relay(app, tmp_path, servers):
    """Start the platform relay (plain SMTP by default) and point SMTP_RELAY_URL at it."""

    def start(tls=None, users=None, **kw):
        server = SMTPServer(tmp_path / f"relay{len(servers)}", tls=tls, users=users, **kw)
        servers.append(server)
        login = f"{users and RELAY_USER}:{users and RELAY_PASSWORD.replace('ä', '%C3%A4')}@" if users else ""
        scheme, query = ("smtps", "") if tls == "implicit" else ("smtp", "" if tls == "starttls" else "?tls=none")
        app.config["SMTP_RELAY_URL"] = f"{scheme}://{login}127.0.0.1:{server.port}{query}"
        app.config["MAIL_TLS_CA_FILE"] = str(server.cert)
        return server

    return start


def _parse(raw: bytes):
    return message_from_bytes(raw, policy=policy.default)


def _fresh(db, message_id) -> Message:
    db.session.expire_all()
    return db.session.get(Message, message_id)


def _reply(db, conversation, author=None, **kw) -> Message:
    message = send_reply(conversation.id, author.id if author else None, kw.pop("body", "<p>It ships today.</p>"), **kw)
    db.session.commit()
    return message


# --- what arrives --------------------------------------------------------------------------------

def test_platform_reply_arrives_with_the_right_headers_parts_card_and_names(app, db, relay):
    server = relay(tls="starttls", users={RELAY_USER: RELAY_PASSWORD})
    address = make_sending_address(
        display_name="Acme Kundenservice Müller", forwarded_from="support@acme.test", send_vcard=True,
        template_enabled=True, header_html="<p>Hallo {{ customer_name }},</p>",
        footer_html="<p>Grüße, {{ agent_name }} — {{ display_name }} ({{ conversation_reference }})</p>")
    conversation = make_sending_conversation(address, email="zoe@example.com", name="Zoë Ünal", subject="Wo ist mein Päckchen?")
    inbound = conversation.messages[0]
    agent = make_user("agent", name="Jürgen Agent")
    pdf = OutgoingAttachment("Rechnung für März.pdf", "application/pdf", b"%PDF-1.4 test")
    logo = OutgoingAttachment("logo.png", "image/png", b"\x89PNG\r\n\x1a\n", content_id="logo1")
    first = _reply(db, conversation, agent, cc=["Dan Dörr <dan@example.com>"], bcc=["boss@acme.test"],
                   attachments=[pdf, logo], body='<p>Ihr Paket wird heute verschickt.</p><img src="cid:logo1" alt="">')
    assert first.delivery_status == "queued" and first.reply_to == "support@acme.test"

    assert deliver_message(first.id)["sent"] == 1
    sent = _fresh(db, first.id)
    assert (sent.delivery_status, sent.smtp_code, sent.delivery_attempts) == ("sent", 250, 1)
    assert "OK queued" in sent.smtp_reply and sent.sent_at is not None and sent.claim_token is None

    got = server.messages[0]
    assert got["mail_from"] == address.address and got["login"] == RELAY_USER
    assert got["rcpt_tos"] == ["zoe@example.com", "dan@example.com", "boss@acme.test", "support@acme.test"]
    mail = _parse(got["data"])
    assert mail["From"].addresses[0].display_name == "Acme Kundenservice Müller"
    assert mail["From"].addresses[0].addr_spec == address.address
    assert mail["To"].addresses[0].display_name == "Zoë Ünal"
    assert mail["Cc"].addresses[0].display_name == "Dan Dörr"
    assert mail["Bcc"] is None and b"boss@acme.test" not in got["data"]
    assert mail["Reply-To"] == "support@acme.test"
    assert mail["Subject"] == "Re: Wo ist mein Päckchen?"
    assert mail["In-Reply-To"] == inbound.message_id and mail["References"] == inbound.message_id
    assert tokens_in(mail["Message-ID"]) == [conversation.token] and mail["Message-ID"] == sent.message_id
    assert mail["Date"] is not None and mail["Auto-Submitted"] is None
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    for part in (text, html):
        assert "Hallo Zoë Ünal," in part and "Ihr Paket wird heute verschickt." in part
        assert f"Grüße, Jürgen Agent — Acme Kundenservice Müller (#{conversation.id})" in part
        assert "Where is my parcel?" in part  # the quoted history
    assert text.index("Hallo") < text.index("Ihr Paket") < text.index("Grüße") < text.index("Where is my parcel?")
    files = {p.get_filename(): p for p in mail.walk() if p.get_filename()}
    assert set(files) == {"Rechnung für März.pdf", "logo.png", "Acme Kundenservice Müller.vcf"}
    assert files["Rechnung für März.pdf"].get_content() == b"%PDF-1.4 test"
    assert files["logo.png"]["Content-ID"] == "<logo1>" and files["logo.png"].get_content_disposition() == "inline"
    assert 'src="cid:logo1"' in html
    card_part = files["Acme Kundenservice Müller.vcf"]
    assert card_part.get_content_type() == "text/vcard"
    card = vobject.readOne(card_part.get_content())
    # The address customers should write to: the contact-center mailbox, not the platform address.
    assert (card.fn.value, card.email.value) == ("Acme Kundenservice Müller", "support@acme.test")
    assert {(a.filename, a.inline, a.content_id) for a in sent.attachments} == {
        ("Rechnung für März.pdf", False, None), ("logo.png", True, "logo1"), ("Acme Kundenservice Müller.vcf", False, None)}

    second = _reply(db, conversation, agent, body="<p>Tracking: 123</p>")
    assert deliver_message(second.id)["sent"] == 1
    again = _parse(server.messages[1]["data"])
    assert not [p for p in again.walk() if p.get_content_type() == "text/vcard"]  # introduced already
    assert again["In-Reply-To"] == inbound.message_id


def test_custom_address_sends_through_its_own_server_with_implicit_tls_and_its_login(app, db, servers, tmp_path):
    server = SMTPServer(tmp_path, tls="implicit", users={"help@acme.test": "s3cret"})
    servers.append(server)
    app.config["MAIL_TLS_CA_FILE"] = str(server.cert)
    address = make_sending_address("help@acme.test", platform=False, outgoing_host="127.0.0.1", outgoing_port=server.port,
                           outgoing_security="ssl", password_encrypted=encrypt_secret("s3cret"),
                           forwarded_from="ignored@acme.test", send_vcard=True)
    conversation = make_sending_conversation(address)
    message = _reply(db, conversation, automatic=True)
    assert deliver_message(message.id)["sent"] == 1
    got = server.messages[0]
    assert got["login"] == "help@acme.test" and got["rcpt_tos"] == [conversation.contact.email]
    mail = _parse(got["data"])
    assert mail["Reply-To"] is None and mail["Auto-Submitted"] == "auto-replied"
    assert [p.get_content_type() for p in mail.walk() if p.get_filename()] == ["text/vcard"]
    card = vobject.readOne(next(p for p in mail.walk() if p.get_filename()).get_content())
    assert card.email.value == "help@acme.test"  # a custom address's card carries the address itself
    # Our Message-ID is on the address's own domain, and still carries the conversation token.
    assert mail["Message-ID"].endswith("@acme.test>") and tokens_in(mail["Message-ID"]) == [conversation.token]


def test_custom_address_with_starttls(app, db, servers, tmp_path):
    server = SMTPServer(tmp_path, tls="starttls", users={"help@acme.test": "s3cret"})
    servers.append(server)
    app.config["MAIL_TLS_CA_FILE"] = str(server.cert)
    address = make_sending_address("help@acme.test", platform=False, outgoing_host="127.0.0.1", outgoing_port=server.port,
                           outgoing_security="starttls", username="help@acme.test",
                           password_encrypted=encrypt_secret("s3cret"))
    message = _reply(db, make_sending_conversation(address))
    assert deliver_message(message.id)["sent"] == 1 and len(server.messages) == 1


# --- refusals: nothing queued ----------------------------------------------------------------------

def test_addresses_that_cannot_send_are_refused_and_nothing_is_queued(app, db, relay):
    from datetime import datetime, timezone

    from app.publish.services import publish_addresses

    relay()
    cases = []
    inbound_only = make_sending_address(usage="inbound")
    cases.append((inbound_only, "is inbound-only"))
    disabled = make_sending_address(enabled=False)
    cases.append((disabled, "is disabled"))
    archived = make_sending_address()
    archived.archived_at = datetime.now(timezone.utc)
    cases.append((archived, "is archived"))
    cases.append((make_sending_address(publish=False), "has not been published yet"))
    custom = make_sending_address(platform=False)
    cases.append((custom, r"has no outgoing \(SMTP\) server"))
    db.session.commit()
    for address, words in cases:
        conversation = make_sending_conversation(address)
        with pytest.raises(CannotSend, match=words):
            send_reply(conversation.id, None, "<p>x</p>")
        db.session.rollback()

    ok = make_sending_address()
    conversation = make_sending_conversation(ok)
    with pytest.raises(CannotSend, match="“carol” is not an email address"):
        send_reply(conversation.id, None, "<p>x</p>", to=["carol"])
    with pytest.raises(CannotSend, match="at least one recipient"):
        send_reply(conversation.id, None, "<p>x</p>", to=[])
    with pytest.raises(CannotSend, match="“jörg@example.com” is not an email address: Internationalized characters "
                                         "before the @-sign are not supported"):
        send_reply(conversation.id, None, "<p>x</p>", to=["Jörg <jörg@example.com>"])
    with pytest.raises(CannotSend, match="“x@printer.local” is not an email address: .*special-use"):
        send_reply(conversation.id, None, "<p>x</p>", to=["x@printer.local"])  # one policy with the composer
    app.config.update(SEND_MAX_RECIPIENTS=3, SEND_MAX_MESSAGE_BYTES=64 * 1024)
    with pytest.raises(CannotSend, match=r"has 4 recipients; one message may have at most 3 \(To, Cc and Bcc"):
        send_reply(conversation.id, None, "<p>x</p>", cc=["a@example.com", "b@example.com"], bcc=["c@example.com"])
    big = OutgoingAttachment("scan.pdf", "application/pdf", b"%PDF" + b"\x00" * 60_000)
    with pytest.raises(CannotSend, match=r"This message is \d\d(\.\d)? KB .* the limit is 64 KB\. Remove an attachment"):
        send_reply(conversation.id, None, "<p>x</p>", attachments=[big])
    app.config.update(SEND_MAX_RECIPIENTS=50, SEND_MAX_MESSAGE_BYTES=35 * 1024 * 1024)
    idn = send_reply(conversation.id, None, "<p>x</p>", to=["Jörg <joerg@bücher.example>"])
    assert idn.to_addrs == "Jörg <joerg@xn--bcher-kva.example>"
    db.session.rollback()
    app.config["SMTP_RELAY_URL"] = ""
    with pytest.raises(CannotSend, match="SMTP_RELAY_URL"):
        send_reply(conversation.id, None, "<p>x</p>")
    db.session.rollback()
    assert db.session.scalar(select(func.count()).where(Message.direction == "out")) == 0
    assert get_queue("send").count == 0

    # a draft that is disabled but not yet published still sends (the runtime reads the published version)
    ok.enabled = False
    db.session.commit()
    app.config["SMTP_RELAY_URL"] = "smtp://127.0.0.1:1?tls=none"
    assert send_reply(conversation.id, None, "<p>x</p>").delivery_status == "queued"
    publish_addresses([ok.id], None, "disable")
    db.session.commit()
    with pytest.raises(CannotSend, match="is disabled"):
        send_reply(conversation.id, None, "<p>x</p>")


def test_an_address_disabled_after_queueing_fails_at_send_time_with_the_reason(app, db, relay):
    from app.publish.services import publish_addresses

    server = relay()
    address = make_sending_address()
    message = _reply(db, make_sending_conversation(address))
    address.enabled = False
    publish_addresses([address.id], None, "off")
    db.session.commit()
    assert deliver_message(message.id) == {"claimed": 1, "failed": 1}
    failed = _fresh(db, message.id)
    assert failed.delivery_status == "failed" and "is disabled" in failed.delivery_error
    assert server.messages == []


# --- temporary and permanent errors ------------------------------------------------------------------

def test_451_then_250_is_retried_after_the_backoff_and_sent_once(app, db, relay):
    server = relay(script=["451 4.7.1 Greylisted, please try again later"])
    app.config["SEND_RETRY_BASE_SECONDS"] = 0.5
    message = _reply(db, make_sending_conversation(make_sending_address()))
    assert deliver_message(message.id)["retrying"] == 1
    waiting = _fresh(db, message.id)
    assert waiting.delivery_status == "retrying" and waiting.smtp_code == 451
    assert waiting.delivery_error == "451 4.7.1 Greylisted, please try again later"
    assert waiting.next_attempt_at is not None and waiting.claim_token is None
    assert deliver_message(message.id) == {"claimed": 0}  # not due yet
    assert enqueue_due_messages() == 0
    time.sleep(0.6)
    assert enqueue_due_messages() == 1
    assert deliver_message(message.id)["sent"] == 1
    done = _fresh(db, message.id)
    assert (done.delivery_status, done.delivery_attempts, done.smtp_code, done.delivery_error) == ("sent", 2, 250, None)
    assert len(server.messages) == 1


def test_550_fails_with_the_servers_words_and_can_be_retried_by_hand(app, db, relay):
    server = relay(script=["550 5.7.1 Message rejected: policy violation"])
    message = _reply(db, make_sending_conversation(make_sending_address()))
    assert deliver_message(message.id)["failed"] == 1
    failed = _fresh(db, message.id)
    assert (failed.delivery_status, failed.smtp_code) == ("failed", 550)
    assert failed.delivery_error == "550 5.7.1 Message rejected: policy violation"
    assert deliver_message(message.id) == {"claimed": 0} and enqueue_due_messages() == 0

    retry_message(message.id)
    db.session.commit()
    queued = _fresh(db, message.id)
    assert (queued.delivery_status, queued.delivery_attempts, queued.delivery_error) == ("queued", 0, None)
    assert deliver_message(message.id)["sent"] == 1 and len(server.messages) == 1
    with pytest.raises(NotRetryable):
        retry_message(message.id)


def test_a_connection_dropped_mid_data_is_retried(app, db, relay):
    server = relay(script=["drop"])
    app.config["SEND_RETRY_BASE_SECONDS"] = 0
    message = _reply(db, make_sending_conversation(make_sending_address()))
    assert deliver_message(message.id)["retrying"] == 1
    assert "lost while sending" in _fresh(db, message.id).delivery_error
    assert deliver_message(message.id)["sent"] == 1
    assert len(server.messages) == 1 and _fresh(db, message.id).delivery_attempts == 2


def test_temporary_errors_give_up_after_the_last_attempt(app, db, relay):
    relay(script=["451 4.3.0 one", "452 4.3.1 two"])
    app.config.update(SEND_RETRY_BASE_SECONDS=0, SEND_MAX_ATTEMPTS=2)
    message = _reply(db, make_sending_conversation(make_sending_address()))
    deliver_message(message.id)
    assert deliver_message(message.id)["failed"] == 1
    failed = _fresh(db, message.id)
    assert failed.delivery_status == "failed"
    assert failed.delivery_error == "452 4.3.1 two (gave up after 2 attempts)"


def test_the_bytes_live_beside_the_row_and_older_messages_are_read_from_the_blob_store(app, db, relay):
    from app.blobs import blob_store
    from app.runtime.outbound import outgoing_bytes
    from app.models.inbox import OutgoingMime

    server = relay()
    blobs_before = sorted(p.name for p in Path(app.config["BLOB_DIR"]).rglob("*") if p.is_file())
    new = _reply(db, make_sending_conversation(make_sending_address(), email="new@example.com"))
    stored = db.session.get(OutgoingMime, new.id).data
    assert _parse(stored)["Message-ID"] == new.message_id and new.raw_sha256 is None
    # A reply without attachments writes nothing to the blob store: one commit makes it durable.
    assert sorted(p.name for p in Path(app.config["BLOB_DIR"]).rglob("*") if p.is_file()) == blobs_before

    # Queued before migration 0008: the bytes are a blob named by raw_sha256, and no outgoing_mime row.
    old = _reply(db, make_sending_conversation(make_sending_address(), email="old@example.com"))
    raw = db.session.get(OutgoingMime, old.id).data
    db.session.execute(OutgoingMime.__table__.delete().where(OutgoingMime.message_id == old.id))
    db.session.execute(update(Message).where(Message.id == old.id).values(raw_sha256=blob_store().put(raw)))
    db.session.commit()
    assert outgoing_bytes(old.id, _fresh(db, old.id).raw_sha256) == raw

    # Gone from both: it fails with a reason instead of being retried for ever.
    lost = _reply(db, make_sending_conversation(make_sending_address(), email="lost@example.com"))
    db.session.execute(OutgoingMime.__table__.delete().where(OutgoingMime.message_id == lost.id))
    db.session.commit()

    for message in (new, old, lost):
        deliver_message(message.id)
    assert [_fresh(db, m.id).delivery_status for m in (new, old, lost)] == ["sent", "sent", "failed"]
    assert _fresh(db, lost.id).delivery_error == "The rendered message is missing; write it again."
    assert sorted(_parse(m["data"])["Message-ID"] for m in server.messages) == sorted(
        [new.message_id, old.message_id])


def test_big_messages_are_read_one_at_a_time_and_sent_byte_for_byte(app, db, relay, monkeypatch):
    from app.models.inbox import OutgoingMime
    from app.runtime.outbound import deliver

    server = relay()
    monkeypatch.setattr(deliver, "BATCH_BYTES_INLINE", 1500)  # between the two messages' sizes
    address = make_sending_address()
    small = _reply(db, make_sending_conversation(address))
    big = _reply(db, make_sending_conversation(address), attachments=[
        OutgoingAttachment("scan.bin", "application/octet-stream", bytes(range(256)) * 40)])
    sizes = {m.id: len(db.session.get(OutgoingMime, m.id).data) for m in (small, big)}
    assert sizes[small.id] < 1500 < sizes[big.id]
    assert deliver_message(small.id)["sent"] == 2
    received = {_parse(m["data"])["Message-ID"]: m["data"] for m in server.messages}
    for message in (small, big):
        assert received[message.message_id] == db.session.get(OutgoingMime, message.id).data


def test_backoff_grows_and_is_capped(app):
    from app.runtime.outbound import backoff_seconds

    app.config.update(SEND_RETRY_BASE_SECONDS=60, SEND_RETRY_MAX_SECONDS=3600)
    with app.app_context():
        delays = [backoff_seconds(n) for n in range(1, 10)]
    assert 54 <= delays[0] <= 66 and 108 <= delays[1] <= 132 and 216 <= delays[2] <= 264
    assert all(3240 <= d <= 3960 for d in delays[6:])


def test_an_unreachable_server_defers_every_message_of_the_batch(app, db):
    app.config["SMTP_RELAY_URL"] = f"smtp://127.0.0.1:{free_port()}?tls=none"
    address = make_sending_address()
    messages = [_reply(db, make_sending_conversation(address)) for _ in range(3)]
    counts = deliver_message(messages[0].id)
    assert counts["claimed"] == 3 and counts["retrying"] == 3
    for m in messages:
        m = _fresh(db, m.id)
        assert m.delivery_status == "retrying" and m.delivery_error.startswith("Cannot connect to 127.0.0.1")


# --- connection reuse, jobs and the sweep ------------------------------------------------------------

def test_messages_for_one_server_share_one_connection_and_their_jobs_leave_the_queue(app, db, relay, servers, tmp_path):
    server = relay()
    other_server = SMTPServer(tmp_path / "other")
    servers.append(other_server)
    platform_a, platform_b = make_sending_address(), make_sending_address()
    custom = make_sending_address(platform=False, outgoing_host="127.0.0.1", outgoing_port=other_server.port,
                          outgoing_security="none")
    messages = [_reply(db, make_sending_conversation(a)) for a in (platform_a, platform_b, platform_a, custom)]
    for m in messages:
        enqueue_send(m.id)
    assert enqueue_send(messages[0].id) is None  # already queued
    queue = get_queue("send")
    assert queue.count == 4

    counts = deliver_message(messages[0].id)
    assert counts["sent"] == 3 and counts["connections"] == 1
    assert len(server.messages) == 3 and len({m["peer"] for m in server.messages}) == 1
    assert {m["mail_from"] for m in server.messages} == {platform_a.address, platform_b.address}
    assert queue.job_ids == [send_job_id(messages[0].id), send_job_id(messages[3].id)]
    assert _fresh(db, messages[3].id).delivery_status == "queued" and other_server.messages == []


def test_the_sweep_enqueues_due_work_and_expired_leases_only(app, db, relay):
    from datetime import datetime, timedelta, timezone

    relay()
    address = make_sending_address()
    due, later, held, abandoned, sent = (_reply(db, make_sending_conversation(address)) for _ in range(5))
    now = datetime.now(timezone.utc)
    later.next_attempt_at = now + timedelta(minutes=5)
    later.delivery_status = "retrying"
    held.delivery_status, held.claim_token, held.claimed_until = "sending", "x", now + timedelta(minutes=5)
    abandoned.delivery_status, abandoned.claim_token, abandoned.claimed_until = "sending", "y", now - timedelta(seconds=1)
    sent.delivery_status = "sent"
    db.session.commit()
    assert enqueue_due_messages() == 2
    assert set(get_queue("send").job_ids) == {send_job_id(due.id), send_job_id(abandoned.id)}
    assert enqueue_due_messages() == 0  # already queued


def _waiting(app, address_id):
    from redis import Redis

    return Redis.from_url(app.config["REDIS_URL"]).get(WAITING_KEY.format(address_id=address_id))


def test_a_burst_of_sends_waits_for_one_job_that_sends_them_all(app, db, relay):
    server = relay()
    address, other = make_sending_address(), make_sending_address()
    messages = [_reply(db, make_sending_conversation(address)) for _ in range(4)]
    jobs = [enqueue_send(m.id, address_id=address.id) for m in messages]
    assert jobs[0] is not None and jobs[1:] == [None, None, None]  # the first one's job takes the others
    assert _waiting(app, address.id) == str(messages[0].id).encode()
    assert get_queue("send").job_ids == [send_job_id(messages[0].id)]
    # The sweep leaves an address with a waiting job alone.
    assert enqueue_due_messages() == 0
    # Another address has a job of its own, even on the same server.
    elsewhere = _reply(db, make_sending_conversation(other))
    assert enqueue_send(elsewhere.id, address_id=other.id) is not None

    counts = deliver_message(messages[0].id)  # what the worker runs
    assert counts["sent"] == 5 and counts["connections"] == 1 and len(server.messages) == 5
    # Started, the job removed its own mark and, taking over the other address's message, that one's mark and job.
    assert _waiting(app, address.id) is None and _waiting(app, other.id) is None
    assert get_queue("send").job_ids == [send_job_id(messages[0].id)]  # deliver_message ran outside the worker
    get_queue("send").empty()

    # A Send after the job started gets a job of its own.
    late = _reply(db, make_sending_conversation(address))
    assert enqueue_send(late.id, address_id=address.id) is not None
    assert get_queue("send").job_ids == [send_job_id(late.id)]


def test_a_lost_waiting_job_is_made_up_for_by_the_sweep_once_its_mark_expires(app, db, relay):
    from redis import Redis

    relay()
    address = make_sending_address()
    first, second = (_reply(db, make_sending_conversation(address)) for _ in range(2))
    enqueue_send(first.id, address_id=address.id)
    assert enqueue_send(second.id, address_id=address.id) is None
    get_queue("send").empty()  # Redis lost the job, not the mark
    ttl = Redis.from_url(app.config["REDIS_URL"]).ttl(WAITING_KEY.format(address_id=address.id))
    assert 0 < ttl <= WAITING_TTL_SECONDS
    assert enqueue_due_messages() == 0
    Redis.from_url(app.config["REDIS_URL"]).delete(WAITING_KEY.format(address_id=address.id))  # expired
    assert enqueue_due_messages() == 2


def test_a_job_whose_message_another_job_sent_still_sends_what_is_due(app, db, relay):
    server = relay()
    address = make_sending_address()
    first, second = (_reply(db, make_sending_conversation(address)) for _ in range(2))
    assert deliver_message(first.id)["sent"] == 2
    third = _reply(db, make_sending_conversation(address))
    # `second`'s job starts late: its own message is gone, and it sends the one that came since.
    assert deliver_message(second.id)["sent"] == 1 and _fresh(db, third.id).delivery_status == "sent"
    assert len(server.messages) == 3


def test_more_than_a_batch_due_gets_a_job_for_the_rest(app, db, relay):
    app.config.update(SEND_BATCH_SIZE=2, SMTP_RELAY_URL=f"smtp://127.0.0.1:{free_port()}?tls=none")  # unreachable
    address = make_sending_address()
    messages = [_reply(db, make_sending_conversation(address)) for _ in range(5)]
    counts = deliver_message(messages[0].id)
    assert counts["claimed"] == 2 and counts["retrying"] == 2  # the server is down: this job stops there
    # ...and the job for the rest (from messages[2], the first that did not fit) waits for another worker.
    assert get_queue("send").job_ids == [send_job_id(messages[2].id)]
    server = relay()
    assert deliver_message(messages[2].id)["sent"] == 3 and len(server.messages) == 3


def test_a_job_lingers_for_sends_that_come_just_after_its_last_batch(app, db, relay):
    import threading

    server = relay()
    app.config["SEND_LINGER_SECONDS"] = 1.5
    address = make_sending_address()
    first = _reply(db, make_sending_conversation(address))
    conversation_id = make_sending_conversation(address).id
    db.session.commit()
    later = {}

    def agent_sends_later():
        time.sleep(0.3)
        with app.app_context():
            later["id"] = send_reply(conversation_id, None, "<p>One more thing.</p>").id
            db.session.commit()
            db.session.remove()

    agent = threading.Thread(target=agent_sends_later)
    agent.start()
    started = time.monotonic()
    counts = deliver_message(first.id)
    agent.join()
    assert counts["sent"] == 2 and counts["connections"] == 1  # the same job, the same connection
    assert len({m["peer"] for m in server.messages}) == 1 and len(server.messages) == 2
    assert _fresh(db, later["id"]).delivery_status == "sent"
    # Nothing more came: it stopped waiting after SEND_LINGER_SECONDS.
    assert 1.5 <= time.monotonic() - started < 5


def test_mark_bounced(app, db, relay):
    relay()
    message = _reply(db, make_sending_conversation(make_sending_address()))
    deliver_message(message.id)
    assert mark_bounced(message.id, "550 5.1.1 User unknown").delivery_status == "bounced"
    db.session.commit()
    assert _fresh(db, message.id).delivery_error == "550 5.1.1 User unknown"
    assert mark_bounced(10**9, "x") is None


def test_queue_message_starts_an_outgoing_thread_that_a_follow_up_continues(app, db, relay):
    relay()
    address = make_sending_address()
    conversation = make_sending_conversation(address, inbound=False, subject="Your order")
    first = queue_message(conversation.id, to=[conversation.contact.email], subject="Your order", body_html="<p>Hi</p>")
    db.session.commit()
    assert first.in_reply_to is None and first.references is None
    follow_up = send_reply(conversation.id, None, "<p>Any news?</p>")
    assert follow_up.in_reply_to == first.message_id and follow_up.subject == "Re: Your order"
    assert follow_up.references == first.message_id


def test_a_job_out_of_time_gives_back_the_messages_it_did_not_try(app, db):
    import asyncio

    from aiosmtpd.controller import Controller

    class SlowHandler:
        async def handle_DATA(self, server, session, envelope):
            await asyncio.sleep(0.7)
            return "250 2.0.0 OK"

    port = free_port()
    controller = Controller(SlowHandler(), hostname="127.0.0.1", port=port)
    controller.start()
    app.config.update(SMTP_RELAY_URL=f"smtp://127.0.0.1:{port}?tls=none", SEND_LEASE_SECONDS=1)  # budget 0.5 s
    try:
        address = make_sending_address()
        messages = [_reply(db, make_sending_conversation(address)) for _ in range(3)]
        counts = deliver_message(messages[0].id)
    finally:
        controller.stop()
    assert counts["claimed"] == 3 and counts["sent"] == 1
    states = [_fresh(db, m.id) for m in messages]
    assert states[0].delivery_status == "sent"
    assert [(m.delivery_status, m.delivery_attempts, m.claim_token) for m in states[1:]] == [("queued", 0, None)] * 2
    assert set(get_queue("send").job_ids) == {send_job_id(messages[1].id), send_job_id(messages[2].id)}


def test_a_message_whose_worker_keeps_dying_fails_instead_of_looping(app, db, relay):
    from datetime import datetime, timedelta, timezone

    server = relay()
    app.config["SEND_MAX_ATTEMPTS"] = 3
    message = _reply(db, make_sending_conversation(make_sending_address()))
    message.delivery_status, message.claim_token = "sending", "dead-worker"
    message.claimed_until = datetime.now(timezone.utc) - timedelta(seconds=1)
    message.delivery_attempts = 3  # three claims, no outcome
    db.session.commit()
    assert deliver_message(message.id)["failed"] == 1
    failed = _fresh(db, message.id)
    assert failed.delivery_status == "failed" and failed.delivery_error.startswith("Gave up after 3 attempts")
    assert server.messages == []


def test_enqueue_replaces_leftover_jobs_but_not_pending_ones(app, db, relay):
    from redis import Redis
    from rq.job import Job

    relay()
    message = _reply(db, make_sending_conversation(make_sending_address()))
    queue = get_queue("send")
    assert enqueue_send(message.id) is not None and enqueue_send(message.id) is None
    Redis.from_url(app.config["REDIS_URL"]).lrem(queue.key, 1, send_job_id(message.id))  # a crash left the hash
    assert queue.count == 0 and Job.exists(send_job_id(message.id), connection=queue.connection)
    assert enqueue_send(message.id) is not None and queue.job_ids == [send_job_id(message.id)]


def test_the_send_job_commits_without_waiting_for_the_disk_and_only_it(app, db, relay):
    """Claims and outcomes: committed without fsync (SQLite NORMAL / PostgreSQL synchronous_commit off);
    every other session, and the connection after the job, keep full durability."""
    from sqlalchemy import text

    from app.runtime.outbound import deliver

    sqlite = db.engine.dialect.name == "sqlite"
    probe = text("PRAGMA synchronous") if sqlite else text("SHOW synchronous_commit")
    full, relaxed = (2, 1) if sqlite else ("on", "off")
    assert db.session.execute(probe).scalar() == full
    db.session.rollback()

    seen = []
    real_claim = deliver.claim

    def spying_claim(ids, token):
        seen.append(db.session.execute(probe).scalar())
        return real_claim(ids, token)

    relay()
    message = _reply(db, make_sending_conversation(make_sending_address()))
    deliver.claim = spying_claim
    try:
        assert deliver_message(message.id)["sent"] == 1
    finally:
        deliver.claim = real_claim
    assert seen and set(seen) == {relaxed}
    assert "commit_without_fsync" not in db.session.info
    assert db.session.execute(probe).scalar() == full  # the pooled connection is back to full durability
    db.session.rollback()
