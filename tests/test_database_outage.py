"""Database outage: PostgreSQL stops while mail arrives. The ingress answers 4xx (the sender retries) instead
of 250, workers that meet the outage fail their job and the sweep runs it again, and once PostgreSQL is back
every acknowledged mail becomes a conversation, once. Runs on a throwaway PostgreSQL cluster of its own
(initdb and pg_ctl, as scripts/test starts one), so it can stop the server without disturbing other tests."""
from __future__ import annotations

import shutil
import smtplib
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from app.models.inbound import InboundRaw
from app.models.inbox import Message
from tests.mail.conftest import message
from tests.servers import ThrowawayPostgres, free_port, wait_for_port
from tests.subprocess_env import ROOT, flask_cmd, flask_env

DEMO = "support@mail.pigeonhole.test"
OUTAGE_SECONDS = 30


@pytest.fixture
def outage_app(redis_server, tmp_path):
    from app import create_app
    from app.extensions import db
    from tests.conftest import _harness_umask, _test_config

    # Its own folder under /tmp, which the `postgres` user can reach (pytest's tmp_path is private to us).
    cluster = Path(tempfile.mkdtemp(prefix="pigeonhole-pg-outage-"))
    pg = ThrowawayPostgres(cluster)
    config = _test_config("sqlite://", redis_server, tmp_path / "blobs") | {"SQLALCHEMY_DATABASE_URI": pg.url}
    with _harness_umask():
        app = create_app(config)
    with app.app_context():
        db.create_all()
        yield app, pg
        db.session.remove()
        db.engine.dispose()
    try:
        pg.stop()
    except subprocess.CalledProcessError:
        pass
    shutil.rmtree(cluster, ignore_errors=True)


def _send(port: int, subject: str) -> int:
    """The SMTP answer to one message: 250, or the 4xx/5xx code the ingress gave at RCPT or DATA."""
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
            smtp.sendmail("carla@example.com", [DEMO], message(subject=subject))
        return 250
    except smtplib.SMTPRecipientsRefused as exc:
        return next(iter(exc.recipients.values()))[0]
    except smtplib.SMTPResponseException as exc:
        return exc.smtp_code


def test_the_ingress_answers_4xx_while_postgresql_is_down_and_nothing_acknowledged_is_lost(outage_app, tmp_path):
    from app.extensions import db
    from tests.mail.conftest import make_address

    app, pg = outage_app
    make_address(DEMO)
    port = free_port()
    env = flask_env(app, tmp_path)
    ingress = subprocess.Popen(flask_cmd("ingress", "--port", str(port)), env=env, cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, timeout=30)
        assert _send(port, "Before") == 250

        pg.stop()  # the database goes away for 30 s; mail keeps coming
        down, until = [], time.monotonic() + OUTAGE_SECONDS
        while time.monotonic() < until:
            down.append(_send(port, f"During {len(down)}"))
            time.sleep(3)
        assert all(400 <= code < 500 for code in down), down  # "try again later", never 250, never 5xx
        worker = subprocess.run(flask_cmd("worker", "ingest", "--burst", "--without-scheduler"), env=env,
                                capture_output=True, text=True, timeout=120)
        assert worker.returncode == 0  # the job met the outage and failed; the worker did not crash

        pg.start()
        answers, deadline = [], time.monotonic() + 30
        while not answers or answers[-1] != 250:  # the sender's retry; the first may still find a dead connection
            assert time.monotonic() < deadline, answers
            answers.append(_send(port, "After"))
            time.sleep(0.2)
    finally:
        ingress.terminate()
        ingress.wait(30)

    db.session.remove()
    db.engine.dispose()  # the test's own pool holds connections from before the outage
    app.config["INGEST_RETRY_SECONDS"] = 0
    from app.runtime.poll import requeue_stale_pending
    time.sleep(0.01)
    requeue_stale_pending()  # cron's sweep: the job that failed during the outage runs again
    worker = subprocess.run(flask_cmd("worker", "ingest", "--burst", "--without-scheduler"), env=env,
                            capture_output=True, text=True, timeout=120)
    assert worker.returncode == 0, worker.stderr
    rows = db.session.scalars(select(InboundRaw)).all()
    assert sorted(r.status for r in rows) == ["created", "created"]
    assert sorted(db.session.scalars(select(Message.subject))) == ["After", "Before"]
