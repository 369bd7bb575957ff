"""Issue 18, faults 1 and 2: work whose job died with its worker (a machine crash: worker and work horse
killed together) or with Redis is found from the database and queued again, once."""
from __future__ import annotations

import os
import signal
import subprocess
import time

from rq.job import Job
from rq.serializers import JSONSerializer
from sqlalchemy import select

from app.blobs import blob_store
from app.models.flows import FlowRun
from app.models.inbox import Conversation
from app.queues import enqueue, get_queue, redis_connection
from app.runtime.ingest import RawItem, ingest
from app.runtime.poll import FLOW_SWEEP_KEY, enqueue_once, job_alive, requeue_stale_flows
from tests.mail.conftest import make_address, message
from tests.subprocess_env import flask_cmd, flask_env


def test_a_job_whose_worker_and_work_horse_died_together_is_queued_again(app, tmp_path):
    """Before: the job stayed "started" for good and `enqueue_once` took it for alive."""
    app.config["WORKER_TTL_SECONDS"] = 2
    env = flask_env(app, tmp_path) | {"WORKER_TTL_SECONDS": "2"}
    proc = subprocess.Popen(flask_cmd("worker", "ingest", "--without-scheduler"), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        with app.app_context():
            enqueue("ingest", "tests.jobs.naps.nap", 60, job_id="ingest-raw-4242")
            connection = redis_connection()
            job = Job.fetch("ingest-raw-4242", connection=connection, serializer=JSONSerializer)
            deadline = time.monotonic() + 60
            while job.get_status() != "started":
                assert time.monotonic() < deadline and proc.poll() is None, "the worker never started the job"
                time.sleep(0.1)
            job.refresh()
            assert job_alive(job, connection)
            assert not enqueue_once("ingest", "jobs.ingest.ingest_raw", 4242, job_id="ingest-raw-4242")

            os.killpg(proc.pid, signal.SIGKILL)  # the machine crashed: worker and horse at once
            proc.wait(10)
            time.sleep(2.5)  # past WORKER_TTL_SECONDS: its heartbeat is stale
            job.refresh()
            assert job.get_status() == "started"  # RQ still says so
            assert not job_alive(job, connection)
            assert enqueue_once("ingest", "jobs.ingest.ingest_raw", 4242, job_id="ingest-raw-4242")
            assert get_queue("ingest").get_job_ids() == ["ingest-raw-4242"]
            assert not enqueue_once("ingest", "jobs.ingest.ingest_raw", 4242, job_id="ingest-raw-4242")  # once
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def test_a_job_queued_in_its_hash_but_absent_from_its_queue_is_queued_again(app):
    with app.app_context():
        enqueue("ingest", "jobs.ingest.ingest_raw", 7, job_id="ingest-raw-7")
        connection = redis_connection()
        connection.delete(get_queue("ingest").key)  # Redis lost the list (restart without its append-only file)
        job = Job.fetch("ingest-raw-7", connection=connection, serializer=JSONSerializer)
        assert job.get_status() == "queued" and not job_alive(job, connection)
        assert enqueue_once("ingest", "jobs.ingest.ingest_raw", 7, job_id="ingest-raw-7")
        assert get_queue("ingest").get_job_ids() == ["ingest-raw-7"]


def test_a_conversation_whose_flow_job_was_lost_is_routed_by_the_sweep_once(app, db, tmp_path):
    """Before: nothing queued the flow step again, and the conversation stayed unrouted."""
    support = make_address("support@mail.pigeonhole.test")
    raw = message(subject="Lost flow")
    result = ingest(support.id, [RawItem(blob_store().put(raw), len(raw), "cli", "test", raw=raw)])[0]
    assert result.status == "created"
    connection = redis_connection()
    connection.delete(get_queue("flows").key)  # the flow job is lost with Redis's list
    app.config.update(FLOW_RETRY_SECONDS=0, FLOW_SWEEP_SECONDS=30)
    time.sleep(0.01)

    assert requeue_stale_flows() == [result.message_row_id]
    assert requeue_stale_flows() == []  # the sweep runs at most every FLOW_SWEEP_SECONDS
    connection.delete(FLOW_SWEEP_KEY)
    assert requeue_stale_flows() == []  # queued and alive: not twice
    run = subprocess.run(flask_cmd("worker", "flows", "--burst"), env=flask_env(app, tmp_path),
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    db.session.expire_all()
    assert db.session.scalars(select(FlowRun.message_id)).all() == [result.message_row_id]
    assert db.session.get(Conversation, result.conversation_id).queue_id is not None
    connection.delete(FLOW_SWEEP_KEY)
    assert requeue_stale_flows() == []  # done: its FlowRun is the mark
