"""`/metrics` (issue 18): who may scrape it, and figures that agree with the database, Redis and the
processes that did the work (a real forking `flask worker` summed by the multiprocess mode)."""
from __future__ import annotations

import re
import subprocess

from sqlalchemy import func, select

from app.blobs import blob_store
from app.models.inbound import InboundRaw
from app.queues import enqueue, get_queue
from app.runtime.ingest import RawItem, ingest
from app.runtime.outbound import deliver_message, send_reply
from tests.factories import make_sending_address, make_sending_conversation, make_user
from tests.mail.conftest import make_address, message
from tests.subprocess_env import flask_cmd, flask_env


def value(text: str, name: str, **labels) -> float | None:
    """The sample `name{labels}` of an exposition, or None when absent."""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        match = re.match(r"([a-zA-Z_:][\w:]*)(\{(.*)\})? (\S+)$", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(3) or ""))
        if found == {k: str(v) for k, v in labels.items()}:
            return float(match.group(4))
    return None


def run_pid(run) -> int:
    """The pid `rq` logs for the worker ("Worker ...: started with PID 123")."""
    return int(re.search(r"started with PID (\d+)", run.stderr + run.stdout).group(1))


def scrape(client, **kw) -> str:
    response = client.get("/metrics", **kw)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/plain"
    return response.get_data(as_text=True)


def test_only_loopback_or_the_bearer_token_may_scrape(app, client):
    remote = {"REMOTE_ADDR": "203.0.113.9"}
    assert client.get("/metrics", environ_base=remote).status_code == 403
    assert "pigeonhole_queue_jobs" in scrape(client)  # loopback, no session needed

    app.config["METRICS_TOKEN"] = "s3cret-token"
    assert client.get("/metrics").status_code == 403  # a token is set: loopback alone no longer does
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
    assert client.get("/metrics", headers={"Authorization": "s3cret-token"}).status_code == 403
    ok = client.get("/metrics", headers={"Authorization": "Bearer s3cret-token"}, environ_base=remote)
    assert ok.status_code == 200 and b"pigeonhole_up" in ok.data
    assert b"s3cret-token" not in ok.data


def test_queue_depth_pending_mail_and_outcomes_agree_with_redis_and_the_database(app, db, client):
    support = make_address("support@mail.pigeonhole.test")
    before = scrape(client)
    created_before = value(before, "pigeonhole_ingest_messages_total", outcome="created") or 0.0
    latency_before = value(before, "pigeonhole_ingest_latency_seconds_count") or 0.0

    raw = message()
    result = ingest(support.id, [RawItem(blob_store().put(raw), len(raw), "cli", "test", raw=raw)])[0]
    assert result.status == "created"
    again = ingest(support.id, [RawItem(blob_store().put(raw), len(raw), "cli", "test", raw=raw)])[0]
    assert again.status == "duplicate"
    with app.app_context():
        enqueue("poll", "jobs.ops.ping")
        enqueue("poll", "jobs.ops.ping")
    db.session.add(InboundRaw(address_id=support.id, source="smtp", raw_sha256="0" * 64, size=1))
    db.session.commit()

    after = scrape(client)
    assert value(after, "pigeonhole_ingest_messages_total", outcome="created") == created_before + 1
    assert value(after, "pigeonhole_ingest_messages_total", outcome="duplicate") >= 1
    assert value(after, "pigeonhole_ingest_latency_seconds_count") == latency_before + 2
    with app.app_context():
        assert value(after, "pigeonhole_queue_jobs", queue="poll") == get_queue("poll").count == 2
        assert value(after, "pigeonhole_queue_jobs", queue="flows") == get_queue("flows").count
    assert value(after, "pigeonhole_queue_oldest_job_age_seconds", queue="poll") >= 0
    assert value(after, "pigeonhole_inbound_pending_messages") == db.session.scalar(
        select(func.count()).select_from(InboundRaw).where(InboundRaw.status == "pending")) == 1
    assert value(after, "pigeonhole_workers", queue="poll") == 0
    assert value(after, "pigeonhole_up", part="redis") == 1 and value(after, "pigeonhole_up", part="database") == 1
    # Every request is timed by endpoint: the scrape before this one is in the histogram.
    assert value(after, "pigeonhole_http_request_duration_seconds_count", endpoint="metrics.scrape", method="GET") >= 1


def test_a_sent_reply_counts_with_its_delivery_latency(app, db, client, relay):
    address = make_sending_address()
    conversation = make_sending_conversation(address)
    agent = make_user("agent")
    before = scrape(client)
    sent_before = value(before, "pigeonhole_send_messages_total", outcome="sent") or 0.0
    reply = send_reply(conversation.id, agent.id, "<p>It ships today.</p>")
    db.session.commit()
    waiting = scrape(client)
    assert value(waiting, "pigeonhole_outgoing_messages", state="queued") == 1
    assert deliver_message(reply.id)["sent"] == 1
    after = scrape(client)
    assert value(after, "pigeonhole_send_messages_total", outcome="sent") == sent_before + 1
    assert value(after, "pigeonhole_outgoing_messages", state="queued") == 0
    assert len(relay.messages) == 1


def test_a_forking_worker_s_jobs_are_summed_from_its_files_without_a_file_per_job(app, db, client, tmp_path,
                                                                                monkeypatch):
    """Multiprocess mode: the work horses of `flask worker` write to their worker's files (one set per
    worker, not per job), and `/metrics` in another process adds them up."""
    folder = tmp_path / "metrics"
    folder.mkdir()
    make_user("agent")
    with app.app_context():
        for _ in range(3):
            enqueue("flows", "jobs.ops.ping")
        enqueue("flows", "jobs.no_such_module.nothing")
    env = flask_env(app, tmp_path) | {"PROMETHEUS_MULTIPROC_DIR": str(folder)}
    run = subprocess.run(flask_cmd("worker", "flows", "--burst"), env=env, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    files = sorted(p.name for p in folder.iterdir())
    # The worker's own files and one set for all its horses: 4 jobs did not make 4 sets.
    assert {re.fullmatch(r"[a-z]+_(\d+)(-horse)?\.db", name).group(1) for name in files} == {str(run_pid(run))}
    assert any(name.endswith("-horse.db") for name in files) and len(files) <= 4, files

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))
    text = scrape(client)
    assert value(text, "pigeonhole_jobs_total", queue="flows", outcome="done") == 3
    assert value(text, "pigeonhole_queue_failed_jobs", queue="flows") == 1
