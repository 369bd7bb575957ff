"""SMTP ingress with a real SMTP client: accept, refuse, oversize, many recipients, restarts."""
from __future__ import annotations

import signal
import smtplib
import ssl
import subprocess
import time
from contextlib import contextmanager

import pytest
import redis
from rq import SimpleWorker
from rq.serializers import JSONSerializer
from sqlalchemy import func, select

import jobs
from app.blobs import blob_store
from app.runtime.ingress import make_controller
from app.runtime.poll import requeue_stale_pending
from app.models.blobs import Blob
from app.models.inbound import InboundRaw
from app.models.inbox import Conversation, Message
from app.queues import get_queue, redis_connection
from tests.mail.conftest import make_address, message
from tests.servers import free_port, make_certificate, wait_for_port
from tests.subprocess_env import ROOT, flask_cmd, flask_env

DEMO = "support@mail.pigeonhole.test"


@contextmanager
def running(app):
    controller = make_controller(app, "127.0.0.1", free_port())
    controller.start()
    try:
        yield controller
    finally:
        controller.stop()


@pytest.fixture
def ingress(app, db):
    make_address(DEMO)
    with running(app) as controller:
        yield controller


def work_ingest_queue(app):
    jobs.use_app(app)
    SimpleWorker([get_queue("ingest")], connection=redis_connection(), serializer=JSONSerializer).work(burst=True)


def count(db, model):
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model))


def test_accepted_mail_is_stored_pending_before_250_then_ingested(app, db, ingress):
    raw = message(subject="Hello via SMTP")
    with smtplib.SMTP(ingress.hostname, ingress.port, timeout=10) as smtp:
        code, reply = smtp.ehlo()
        assert b"SIZE" in reply
        assert smtp.sendmail("carla@example.com", [DEMO], raw) == {}
    row = db.session.scalars(select(InboundRaw)).one()
    assert row.status == "pending" and row.source == "smtp" and row.envelope_from == "carla@example.com"
    stored = blob_store().get(row.raw_sha256)
    assert stored.startswith(b"Received: from ") and stored.endswith(raw)
    assert db.session.get(Blob, row.raw_sha256).data == stored  # staged: durable with the row's commit
    assert not blob_store()._path(row.raw_sha256).exists()
    wait_for_jobs(["ingest-raw-%d" % row.id])  # enqueued right after the 250
    work_ingest_queue(app)
    db.session.refresh(row)
    assert row.status == "created"
    assert db.session.scalars(select(Conversation)).one().subject == "Hello via SMTP"
    assert blob_store()._path(row.raw_sha256).read_bytes() == stored  # settled into the blob store
    db.session.expire_all()
    assert db.session.get(Blob, row.raw_sha256) is None


def wait_for_jobs(job_ids, timeout=5.0):
    deadline = time.monotonic() + timeout
    while sorted(get_queue("ingest").job_ids) != sorted(job_ids):
        assert time.monotonic() < deadline, f"ingest jobs {get_queue('ingest').job_ids}, expected {job_ids}"
        time.sleep(0.02)


def test_the_250_does_not_wait_for_redis(app, db, ingress, monkeypatch):
    """Stored and committed is what a 250 promises; the ingest job is announced afterwards, by another thread."""
    import threading

    from app.runtime import ingress as ingress_module

    release, real = threading.Event(), ingress_module.enqueue_jobs

    def slow_enqueue(*args, **kwargs):
        assert release.wait(10)
        return real(*args, **kwargs)

    monkeypatch.setattr(ingress_module, "enqueue_jobs", slow_enqueue)
    with smtplib.SMTP(ingress.hostname, ingress.port, timeout=5) as smtp:
        assert smtp.sendmail("carla@example.com", [DEMO], message(subject="Redis is slow")) == {}
    row = db.session.scalars(select(InboundRaw)).one()
    assert row.status == "pending" and get_queue("ingest").job_ids == []
    release.set()
    wait_for_jobs([f"ingest-raw-{row.id}"])


@pytest.mark.parametrize("recipient", [
    "nobody@mail.pigeonhole.test",        # no such address
    "support@acme.test",                  # not the platform domain
    "draft@mail.pigeonhole.test",         # never published
    "sendonly@mail.pigeonhole.test",      # outbound only
])  # a published, disabled address: tests/mail/test_hold.py (held, or refused with 5.2.1)
def test_unknown_recipients_are_refused_at_rcpt_with_550_5_1_1(app, db, ingress, recipient):
    make_address("draft@mail.pigeonhole.test", publish=False)
    make_address("sendonly@mail.pigeonhole.test", usage="outbound")
    with smtplib.SMTP(ingress.hostname, ingress.port, timeout=10) as smtp:
        smtp.ehlo()
        smtp.mail("carla@example.com")
        code, reply = smtp.rcpt(recipient)
        assert code == 550 and reply.startswith(b"5.1.1")
    assert count(db, InboundRaw) == 0


def test_oversize_mail_is_refused_with_552_at_mail_from_and_in_data(app, db):
    make_address(DEMO)
    app.config["INBOUND_MAX_MESSAGE_SIZE"] = 50_000
    with running(app) as small:
        big = message(body="y" * 80_000)
        with smtplib.SMTP(small.hostname, small.port, timeout=10) as smtp:
            with pytest.raises(smtplib.SMTPSenderRefused) as refused:
                smtp.sendmail("carla@example.com", [DEMO], big)  # smtplib announces SIZE=
            assert refused.value.smtp_code == 552
        with smtplib.SMTP(small.hostname, small.port, timeout=10) as smtp:
            smtp.ehlo()
            smtp.mail("carla@example.com")  # no SIZE: the server must count while receiving
            assert smtp.rcpt(DEMO)[0] == 250
            code, _ = smtp.data(big)
            assert code == 552
            assert smtp.noop()[0] == 250  # the session survives
    assert count(db, InboundRaw) == 0


def test_many_recipients_one_message_one_pending_row_per_address(app, db, ingress):
    make_address("sales@mail.pigeonhole.test")
    make_address("billing@mail.pigeonhole.test")
    with smtplib.SMTP(ingress.hostname, ingress.port, timeout=10) as smtp:
        refused = smtp.sendmail("carla@example.com", [DEMO, "sales@mail.pigeonhole.test", "SALES@mail.pigeonhole.test",
                                                      "billing@mail.pigeonhole.test", "ghost@mail.pigeonhole.test"],
                                message())
    assert set(refused) == {"ghost@mail.pigeonhole.test"}
    rows = list(db.session.scalars(select(InboundRaw)))
    assert len(rows) == 3 and len({r.raw_sha256 for r in rows}) == 1
    work_ingest_queue(app)
    assert count(db, Conversation) == 3 and count(db, Message) == 3


def test_too_many_recipients_get_452(app, db):
    app.config["INGRESS_MAX_RECIPIENTS"] = 2
    make_address(DEMO)
    with running(app) as capped:
        make_address("a@mail.pigeonhole.test")
        make_address("b@mail.pigeonhole.test")
        with smtplib.SMTP(capped.hostname, capped.port, timeout=10) as smtp:
            smtp.ehlo()
            smtp.mail("carla@example.com")
            assert smtp.rcpt(DEMO)[0] == 250
            assert smtp.rcpt("a@mail.pigeonhole.test")[0] == 250
            assert smtp.rcpt("b@mail.pigeonhole.test")[0] == 452


def test_starttls_is_offered_with_a_configured_certificate(app, db, tmp_path):
    make_address(DEMO)
    cert, key = make_certificate(tmp_path / "tls")
    app.config.update(INGRESS_TLS_CERT=str(cert), INGRESS_TLS_KEY=str(key))
    with running(app) as controller:
        with smtplib.SMTP("127.0.0.1", controller.port, timeout=10) as smtp:
            smtp.starttls(context=ssl.create_default_context(cafile=str(cert)))
            assert smtp.sendmail("carla@example.com", [DEMO], message()) == {}
    assert count(db, InboundRaw) == 1


def test_ingress_killed_between_accept_and_ingest_loses_nothing(app, db, tmp_path):
    """250 → kill -9 the ingress → Redis loses the job → restart → cron re-enqueues → exactly once."""
    make_address(DEMO)
    port = free_port()
    env = flask_env(app, tmp_path)

    def start():
        proc = subprocess.Popen(flask_cmd("ingress", "--port", str(port)), env=env, cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(port, timeout=30)
        return proc

    proc = start()
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            assert smtp.sendmail("carla@example.com", [DEMO], message(subject="Survivor")) == {}
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        redis.Redis.from_url(app.config["REDIS_URL"]).flushdb()  # the ingest job is gone too
        proc = start()
        assert count(db, InboundRaw) == 1 and count(db, Message) == 0
        app.config["INGEST_RETRY_SECONDS"] = 0
        time.sleep(0.01)
        assert len(requeue_stale_pending()) == 1
        assert requeue_stale_pending() == []  # still queued: not twice
        work_ingest_queue(app)
        assert requeue_stale_pending() == []  # done: nothing pending
        subjects = [m.subject for m in db.session.scalars(select(Message))]
        assert subjects == ["Survivor"]
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:  # the restarted ingress works
            smtp.sendmail("carla@example.com", [DEMO], message(subject="After restart"))
        latest = db.session.scalar(select(func.max(InboundRaw.id)))
        wait_for_jobs([f"ingest-raw-{latest}"])  # announced after the 250, by another thread
        work_ingest_queue(app)
        assert count(db, Message) == 2
    finally:
        proc.terminate()
        proc.wait(10)


def test_concurrent_sessions_all_get_250_and_every_row_exists(app, db, ingress):
    """Group commit: sessions arriving together share the writer; each is answered only after its commit."""
    import threading

    answers, barrier = [], threading.Barrier(6)

    def client(i):
        with smtplib.SMTP(ingress.hostname, ingress.port, timeout=30) as smtp:
            barrier.wait()
            for j in range(3):
                answers.append(smtp.sendmail("s@example.com", [DEMO], message(subject=f"group {i}-{j}")))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == [{}] * 18  # every message accepted (sendmail returns the refused recipients)
    assert count(db, InboundRaw) == 18
    for row in db.session.scalars(select(InboundRaw)):
        assert blob_store().exists(row.raw_sha256)


def refuse_inserts(db, reason: str, sender: str | None = None):
    """A trigger that makes the database refuse InboundRaw inserts (all, or one sender's), on SQLite and
    PostgreSQL alike; returns what drops it."""
    from sqlalchemy import text

    if db.engine.dialect.name == "postgresql":
        condition = f"NEW.envelope_from = '{sender}'" if sender else "TRUE"
        db.session.execute(text(f"CREATE FUNCTION refuse_fn() RETURNS trigger AS $$ BEGIN IF {condition} THEN "
                                f"RAISE EXCEPTION '{reason}'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql"))
        db.session.execute(text("CREATE TRIGGER refuse BEFORE INSERT ON inbound_raws FOR EACH ROW "
                                "EXECUTE FUNCTION refuse_fn()"))
        drops = ("DROP TRIGGER refuse ON inbound_raws", "DROP FUNCTION refuse_fn()")
    else:
        when = f"WHEN NEW.envelope_from = '{sender}' " if sender else ""
        db.session.execute(text(f"CREATE TRIGGER refuse BEFORE INSERT ON inbound_raws {when}"
                                f"BEGIN SELECT RAISE(ABORT, '{reason}'); END"))
        drops = ("DROP TRIGGER refuse",)
    db.session.commit()

    def drop():
        for statement in drops:
            db.session.execute(text(statement))
        db.session.commit()
    return drop


def test_a_failed_group_commit_answers_451_to_all_and_stores_nothing(app, db, ingress):
    """Nothing is acknowledged that is not durable: the database refuses, every sender is told to retry."""
    drop = refuse_inserts(db, "disk full")
    for subject in ("first", "second"):
        with smtplib.SMTP(ingress.hostname, ingress.port, timeout=30) as smtp:
            with pytest.raises(smtplib.SMTPDataError) as refused:
                smtp.sendmail("s@example.com", [DEMO], message(subject=subject))
            assert refused.value.smtp_code == 451
    assert count(db, InboundRaw) == 0
    drop()
    with smtplib.SMTP(ingress.hostname, ingress.port, timeout=30) as smtp:  # the sender's retry
        assert smtp.sendmail("s@example.com", [DEMO], message(subject="first")) == {}
    assert count(db, InboundRaw) == 1


def test_store_group_is_all_or_nothing(app, db):
    from app.runtime.ingress import Arrival, store_group

    address_id = make_address(DEMO).id
    refuse_inserts(db, "refused", sender="bad@example.com")
    group = [Arrival(sender, [address_id], message(subject=sender))
             for sender in ("a@example.com", "bad@example.com", "c@example.com")]
    with pytest.raises(Exception, match="refused"):
        store_group(app, group)
    assert count(db, InboundRaw) == 0
    ids = store_group(app, [group[0], group[2]])
    assert [len(i) for i in ids] == [1, 1] and count(db, InboundRaw) == 2


def test_a_real_ingress_logs_one_json_line_per_accepted_message(app, db, tmp_path):
    """Issue 18: the ingress logged nothing per message; with LOG_FORMAT=json each line is one JSON object."""
    import json

    make_address(DEMO)
    port = free_port()
    env = flask_env(app, tmp_path) | {"LOG_FORMAT": "json"}
    proc = subprocess.Popen(flask_cmd("ingress", "--port", str(port)), env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_port(port, timeout=30)
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            smtp.sendmail("carla@example.com", [DEMO], message(subject="One"))
            smtp.sendmail("dan@example.com", [DEMO], message(subject="Two"))
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=30)
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    assert len(lines) == len([line for line in stderr.splitlines() if line.strip()]), stderr  # JSON only
    accepted = [line for line in lines if line["message"].startswith("accepted ")]
    raw_ids = sorted(str(row.id) for row in db.session.scalars(select(InboundRaw)))
    assert sorted(line["raw_id"] for line in accepted) == raw_ids and len(raw_ids) == 2
    assert "<carla@example.com>" in accepted[0]["message"] and accepted[0]["level"] == "INFO"
