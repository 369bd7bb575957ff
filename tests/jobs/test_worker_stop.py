"""A `flask worker` stopped with SIGTERM (systemd, honcho, the run command: the whole process group) finishes
or returns its job, leaves no ghost in RQ's worker list, and logs no traceback."""
from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from rq import Worker
from rq.job import Job
from rq.serializers import JSONSerializer

from app.queues import enqueue, redis_connection
from tests.subprocess_env import flask_cmd, flask_env


def _start(app, tmp_path):
    env = flask_env(app, tmp_path)
    return subprocess.Popen(flask_cmd("worker", "ingest"), env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait(condition, proc, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert proc.poll() is None and time.monotonic() < deadline, what
        time.sleep(0.05)


@pytest.mark.parametrize("busy", [True, False], ids=["mid-job", "idle"])
@pytest.mark.parametrize("to_group", [True, False], ids=["group", "main-process"])
def test_a_worker_stopped_by_sigterm_finishes_its_job_and_leaves_no_ghost(app, tmp_path, busy, to_group):
    """SIGTERM to the process group (the run command, honcho, systemd's default KillMode) or to the main
    process only (the units' KillMode=mixed), while a job runs or while the worker waits for one."""
    with app.app_context():
        connection = redis_connection()
        before = {w.name for w in Worker.all(connection=connection)}
        proc = _start(app, tmp_path)
        job = None
        try:
            _wait(lambda: {w.name for w in Worker.all(connection=connection)} - before, proc, "never registered")
            if busy:
                enqueue("ingest", "tests.jobs.naps.nap", 1.5, job_id="nap-stop-1")
                job = Job.fetch("nap-stop-1", connection=connection, serializer=JSONSerializer)
                _wait(lambda: job.get_status(refresh=True) == "started", proc, "never started the job")
            else:
                time.sleep(0.5)
            if to_group:
                os.killpg(proc.pid, signal.SIGTERM)
            else:
                proc.send_signal(signal.SIGTERM)
            output, _ = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        assert proc.returncode == 0, output
        if busy:
            assert job.get_status(refresh=True) == "finished" and job.return_value() == "rested"
        assert {w.name for w in Worker.all(connection=connection)} - before == set()
        assert "Traceback" not in output, output
