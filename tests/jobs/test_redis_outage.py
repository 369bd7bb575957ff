"""Issue 18, fault 3: a real `flask worker` and `flask cron` outlive a Redis restart and go on by themselves."""
from __future__ import annotations

import signal
import subprocess
import time

from app.queues import enqueue, get_queue
from tests.factories import make_user
from tests.servers import RedisServer
from tests.subprocess_env import flask_cmd, flask_env


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
                assert get_queue("flows").count == 0
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
