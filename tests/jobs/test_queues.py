"""The RQ path end to end: our queues, a real Redis, a real `flask worker`, the app and the database."""
from __future__ import annotations

import signal
import subprocess
import time

import pytest
from redis import Redis

from app.queues import QUEUE_NAMES, enqueue, get_queue
from tests.factories import make_user
from tests.subprocess_env import flask_cmd, flask_env


def test_queue_names_and_json_serializer(app):
    from rq.serializers import JSONSerializer

    with app.app_context():
        for name in QUEUE_NAMES:
            q = get_queue(name)
            assert q.name == name and q.serializer is JSONSerializer
        with pytest.raises(ValueError, match="unknown queue 'mail'"):
            get_queue("mail")


def test_deterministic_job_ids_are_enqueued_once(app):
    with app.app_context():
        first = enqueue("poll", "jobs.ops.ping", job_id="poll-mailbox-42")
        second = enqueue("poll", "jobs.ops.ping", job_id="poll-mailbox-42")
        assert first is not None and first.id == "poll-mailbox-42"
        assert second is None
        assert get_queue("poll").count == 1


def test_a_real_worker_runs_a_job_in_a_fresh_app_context(app, db, tmp_path):
    make_user("agent")
    make_user("admin")
    with app.app_context():
        job = enqueue("flows", "jobs.ops.ping")
    run = subprocess.run(flask_cmd("worker", "flows", "--burst"), env=flask_env(app, tmp_path),
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    job.refresh()
    assert job.get_status() == "finished", run.stderr
    result = job.return_value()
    assert result == {"database": db.engine.dialect.name, "users": 2}


def test_worker_shows_in_healthz_and_leaves_cleanly(app, client, tmp_path):
    proc = subprocess.Popen(flask_cmd("worker"), env=flask_env(app, tmp_path),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while client.get("/healthz").get_json()["workers"] != 1:
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "worker never registered"
            time.sleep(0.2)
        # RQ registers a worker before it installs its signal handlers; SIGTERM it once it waits for jobs.
        from rq import Worker

        connection = Redis.from_url(app.config["REDIS_URL"])
        while not any(w.get_state() == "idle" for w in Worker.all(connection=connection)):
            assert time.monotonic() < deadline, "worker never became idle"
            time.sleep(0.1)
        connection.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        proc.stderr.close()
    deadline = time.monotonic() + 15
    while client.get("/healthz").get_json()["workers"] != 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert client.get("/healthz").get_json()["workers"] == 0


def test_a_killed_worker_stops_counting_and_a_queue_without_a_worker_is_not_ok(app, client, tmp_path):
    """Issue 18: /healthz counted dead workers (RQ keeps a SIGKILLed worker listed until its key
    expires, and counts its registry's names after that) and said ok with no live worker."""
    app.config["WORKER_TTL_SECONDS"] = 3
    env = {**flask_env(app, tmp_path), "WORKER_TTL_SECONDS": "3"}
    proc = subprocess.Popen(flask_cmd("worker", "poll"), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while client.get("/healthz").get_json()["workers"] != 1:
            assert proc.poll() is None and time.monotonic() < deadline, "worker never registered"
            time.sleep(0.2)
    finally:
        import os

        os.killpg(proc.pid, signal.SIGKILL)  # a machine crash: no goodbye in Redis
        proc.wait(30)
    assert Redis.from_url(app.config["REDIS_URL"]).scard("rq:workers") == 1  # RQ still lists it
    deadline = time.monotonic() + 15
    while client.get("/healthz").get_json()["workers"] != 0:
        assert time.monotonic() < deadline, "a dead worker is still counted"
        time.sleep(0.5)
    assert client.get("/healthz").status_code == 200  # nothing waits: no worker is needed yet
    with app.app_context():
        enqueue("poll", "jobs.ops.ping")
    r = client.get("/healthz")
    report = r.get_json()
    assert (r.status_code, report["ok"], report["unworked_queues"]) == (503, False, ["poll"])


def test_unknown_queue_is_a_clear_cli_error(app, tmp_path):
    run = subprocess.run(flask_cmd("worker", "mail", "--burst"), env=flask_env(app, tmp_path),
                         capture_output=True, text=True, timeout=60)
    assert run.returncode != 0
    assert "unknown queue 'mail'" in run.stderr


def test_cron_tick_is_visible_in_healthz(app, client, tmp_path):
    assert client.get("/healthz").get_json()["cron"] is None
    run = subprocess.run(flask_cmd("cron", "--once"), env=flask_env(app, tmp_path),
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    cron = client.get("/healthz").get_json()["cron"]
    assert cron is not None and 0 <= cron["last_tick_seconds_ago"] < 60
    assert Redis.from_url(app.config["REDIS_URL"]).exists("pigeonhole:cron:last_tick")
