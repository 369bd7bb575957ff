"""Issue 18, fault 3: a real `flask worker` and `flask cron` outlive a Redis restart and go on by themselves."""
from __future__ import annotations

import os
import signal
import subprocess
import time

from app.queues import enqueue, get_queue
from tests.factories import make_user
from tests.servers import RedisServer
from tests.subprocess_env import flask_cmd, flask_env

RATE = 2  # mails a second: what one forking ingest worker keeps up with on a busy 2-core machine


def test_worker_and_cron_reconnect_after_redis_comes_back(app, db, client, tmp_path):
    """Before: RQ's worker logged "found an unhandled exception, quitting" and exited for good when Redis
    went away during a job, and one that kept going was no longer listed once Redis came back empty."""
    make_user("agent")
    own = RedisServer(tmp_path / "redis")
    app.config.update(REDIS_URL=own.url, WORKER_TTL_SECONDS=4)
    env = flask_env(app, tmp_path) | {"WORKER_TTL_SECONDS": "4"}
    worker = subprocess.Popen(flask_cmd("worker", "flows", "--without-scheduler"), env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    cron = subprocess.Popen(flask_cmd("cron", "--interval", "0.2"), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        with app.app_context():
            job = enqueue("flows", "jobs.ops.ping")
            _wait(lambda: job.get_status() == "finished", "the worker never ran the first job")
            for _ in range(2):  # Redis goes away while a job runs, then while the worker waits for one
                nap = enqueue("flows", "tests.jobs.naps.nap", 3)
                _wait(lambda: nap.get_status() == "started", "the nap never started")
                own.stop()
                time.sleep(4)  # the worker notices (a heartbeat or its dequeue fails)
                assert worker.poll() is None and cron.poll() is None
                own = RedisServer(tmp_path / "redis", port=own.port)  # back, empty (no persistence)
                job = enqueue("flows", "jobs.ops.ping")
                _wait(lambda: job.get_status() == "finished", "the worker never came back")
                # Nothing waits but what cron queues every tick (the escalation timers' jobs, on `flows`).
                assert set(get_queue("flows").get_job_ids()) <= {"escalation-timers", "escalation-alerts"}
                # Listed again with its queue: /healthz counts it (it would say 0 workers, or "unworked").
                _wait(lambda: client.get("/healthz").get_json()["workers"] == 1, "the worker is not listed again")
        assert worker.poll() is None and cron.poll() is None
    finally:
        for proc in (worker, cron):
            proc.send_signal(signal.SIGTERM)
        worker_err = worker.communicate(timeout=60)[1]
        cron_err = cron.communicate(timeout=60)[1]
        own.stop()
    assert "Redis answers again: starting a new worker" in worker_err or "registered again" in worker_err, \
        worker_err[-3000:]
    assert cron_err.count("cron: Redis does not answer") == 2 and "Traceback" not in cron_err, cron_err[-3000:]
    assert worker.returncode == 0


def _wait(condition, message: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, message
        time.sleep(0.1)


def test_mail_accepted_while_redis_is_down_reaches_conversations_unaided(app, db, dns, tmp_path):
    """Redis stops under load (mail arriving at `RATE` a second): the ingress still acknowledges (the 250 waits for the
    database only), and within a minute of Redis coming back (empty) every mail acknowledged meanwhile is a
    conversation, moved on by cron's sweeps, with the workers and cron reconnected by themselves; none of them
    is restarted. (The outage lasts 30 s, `REDIS_OUTAGE_SECONDS`; nothing depends on its length: the sweeps pick up
    whatever waited, however long.)"""
    from sqlalchemy import select

    from app.models.inbox import Message
    from app.queues import live_workers, redis_connection
    from tests.mail.conftest import make_address
    from tests.procfile_run import Procfile, Sender, customer_mails
    from tests.servers import free_ports, wait_for_port

    outage = float(os.environ.get("REDIS_OUTAGE_SECONDS", "30"))
    rcpt = "support@mail.pigeonhole.test"
    make_address(rcpt)
    own = RedisServer(tmp_path / "redis")
    app.config.update(REDIS_URL=own.url, WORKER_TTL_SECONDS=10)
    ports = free_ports(2)
    procs = Procfile(flask_env(app, tmp_path) | {
        "DNS_RESOLVER": dns.address, "DNS_TIMEOUT_SECONDS": "1", "WORKER_TTL_SECONDS": "10",
        "CRON_TICK_SECONDS": "1", "INGEST_RETRY_SECONDS": "5", "FLOW_RETRY_SECONDS": "5", "FLOW_SWEEP_SECONDS": "2",
    }, tmp_path / "logs")
    sender = Sender(ports, rcpt, connections=2, rate=RATE)
    try:
        for i, port in enumerate(ports, 1):
            procs.start(f"ingress-{i}", "ingress", INGRESS_PORT=str(port))
        for name in ("worker-ingest", "worker-flows", "cron"):
            procs.start(name)
        for port in ports:
            wait_for_port(port, timeout=90)
        with app.app_context():
            _wait(lambda: len(live_workers(redis_connection())) == 2, "the workers did not start", 90)
        pids = {name: procs.pid(name) for name in procs.running}
        mails = customer_mails(int((outage + 20) * RATE), rcpt, seed=3, duplicates=0, replies=0)
        sender.send(mails)
        time.sleep(5)
        own.stop()
        before = sender.sent
        time.sleep(outage)
        during = sender.sent - before
        own = RedisServer(tmp_path / "redis", port=own.port)  # back, empty
        back = time.monotonic()
        sender.join()
        acknowledged = set(sender.acknowledged)

        def stored() -> set[str]:
            db.session.remove()
            return {m.strip("<>") for m in db.session.scalars(select(Message.message_id).where(
                Message.direction == "in"))}

        _wait(lambda: stored() >= acknowledged, "mail acknowledged during the outage is still not a conversation",
              60 - (time.monotonic() - back))
        settled = time.monotonic() - back
        with app.app_context():
            _wait(lambda: len(live_workers(redis_connection())) == 2, "the workers are not listed again")
        assert {name: procs.pid(name) for name in procs.running} == pids  # nobody was restarted
        assert procs.restarts == []
    finally:
        procs.stop()
        own.stop()
    assert during >= outage * RATE * 0.8, during  # the ingress kept acknowledging while Redis was down
    assert len(acknowledged) == len(mails)
    print(f"\nRedis outage of {outage:.0f} s: {during} mails acknowledged during it; all are conversations "
          f"{settled:.0f} s after Redis came back")
    # One line each when Redis goes and comes back, not a traceback per message (before: 70 in each ingress).
    assert "Traceback" not in procs.log("cron"), procs.log("cron")[-3000:]
    for name in ("ingress-1", "ingress-2"):
        log = procs.log(name)
        assert "Traceback" not in log and log.count("Redis does not answer") == 1, log[-3000:]
        assert "Redis answers again" in log
