"""/healthz and the Ops page against a real Redis, including one that is stopped."""
from __future__ import annotations

import time

from tests.servers import RedisServer


def test_healthz_reports_database_redis_queues_workers(client):
    r = client.get("/healthz")
    assert r.status_code == 200
    report = r.get_json()
    assert report["ok"] is True
    assert report["database"]["ok"] is True and report["database"]["backend"] in ("sqlite", "postgresql")
    assert report["redis"] == {"ok": True}
    assert report["queues"] == {"send": 0, "ingest": 0, "flows": 0, "poll": 0}
    assert report["workers"] == 0
    assert r.headers["Cache-Control"] == "no-store"


def test_healthz_counts_queued_jobs(app, client):
    from app.queues import enqueue

    with app.app_context():
        enqueue("poll", "jobs.ops.ping")
        enqueue("poll", "jobs.ops.ping")
    assert client.get("/healthz").get_json()["queues"]["poll"] == 2


def test_healthz_is_503_when_redis_is_stopped(app, client, tmp_path):
    server = RedisServer(tmp_path / "redis")
    app.config["REDIS_URL"] = server.url
    try:
        assert client.get("/healthz").status_code == 200
    finally:
        server.stop()
    started = time.monotonic()
    r = client.get("/healthz")
    elapsed = time.monotonic() - started
    report = r.get_json()
    assert r.status_code == 503
    assert report["ok"] is False
    assert report["redis"]["ok"] is False
    assert "ConnectionError" in report["redis"]["error"] and "Connection refused" in report["redis"]["error"]
    assert report["database"]["ok"] is True
    assert report["queues"] == {"send": None, "ingest": None, "flows": None, "poll": None}
    assert elapsed < 5, "a dead Redis must not hang the health check"


def test_healthz_is_503_when_the_database_is_unreachable(redis_server, tmp_path):
    from app import create_app

    broken = create_app({
        "TESTING": True, "SECRET_KEY": "x", "REDIS_URL": redis_server.url,
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/missing-dir/none.db",
    })
    r = broken.test_client().get("/healthz")
    assert r.status_code == 503
    report = r.get_json()
    assert report["database"]["ok"] is False and "OperationalError" in report["database"]["error"]
    assert report["redis"]["ok"] is True
    with broken.app_context():
        from app.extensions import db

        db.engine.dispose()


def test_ops_page_full_and_fragment(client, login_as, htmx_headers):
    login_as("admin")
    full = client.get("/ops/").get_data(as_text=True)
    assert "<h1>Ops</h1>" in full and 'id="queue-depths"' in full and 'hx-trigger="every 5s"' in full
    frag = client.get("/ops/", headers=htmx_headers).get_data(as_text=True)
    assert 'id="queue-depths"' in frag and "<h1>" not in frag and "<html" not in frag


def test_ops_page_shows_redis_down(app, client, login_as, tmp_path):
    login_as("admin")
    server = RedisServer(tmp_path / "redis")
    app.config["REDIS_URL"] = server.url
    server.stop()
    html = client.get("/ops/").get_data(as_text=True)
    assert "Degraded" in html and "Connection refused" in html


def test_a_mail_secret_key_derived_from_secret_key_is_a_warning_in_healthz_and_on_the_ops_page(app, client,
                                                                                               login_as):
    assert not app.config["MAIL_SECRET_KEY"]  # the tests, like a fresh checkout, derive it
    report = client.get("/healthz").get_json()
    assert report["ok"] is True  # a warning, not an outage
    assert report["warnings"] == ["MAIL_SECRET_KEY is not set: stored mailbox passwords and tokens are encrypted "
                                  "with a key derived from SECRET_KEY. Production must set MAIL_SECRET_KEY "
                                  "separately (README, Security)."]
    login_as("admin")
    assert "Production must set MAIL_SECRET_KEY separately" in client.get("/ops/").get_data(as_text=True)

    from cryptography.fernet import Fernet

    app.config["MAIL_SECRET_KEY"] = Fernet.generate_key().decode()
    assert client.get("/healthz").get_json()["warnings"] == []
    assert "MAIL_SECRET_KEY" not in client.get("/ops/").get_data(as_text=True)
