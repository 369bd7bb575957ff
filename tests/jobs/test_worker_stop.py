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


def test_the_scheduler_of_a_killed_worker_stops_too(app, tmp_path):
    """Before: RQ's scheduler, forked by the worker, lived on after the worker's SIGKILL (an orphan holding the
    scheduler's lock, and honcho, waiting for its output, never saw that the worker had died)."""
    from tests.subprocess_env import kill_started_with

    env = flask_env(app, tmp_path)
    proc = subprocess.Popen(flask_cmd("worker", "send"), env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait(lambda: _lasting_forks(proc.pid), proc, "the worker started no scheduler")
        scheduler = _lasting_forks(proc.pid)[0]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 15
        while _running(scheduler):
            assert time.monotonic() < deadline, "the scheduler outlived its worker"
            time.sleep(0.1)
        with app.app_context():
            assert not redis_connection().exists("rq:scheduler-lock:send")  # released for the next worker
    finally:
        kill_started_with(env)
        proc.wait(10)


def _lasting_forks(pid: int) -> list[int]:
    """The children of `pid` that are forks of it (its scheduler) and still there a moment later, not a program
    it runs for a moment: ctypes' library lookup runs `ldconfig -p` while the worker starts, which between its
    fork and its exec looks like the worker."""
    first = _forks(pid)
    if not first:
        return []
    time.sleep(0.3)
    return [child for child in _forks(pid) if child in first]


def _forks(pid: int) -> list[int]:
    from tests.procfile_run import children

    def cmdline(p: int) -> bytes | None:
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                return f.read()
        except OSError:
            return None

    own = cmdline(pid)
    return [child for child in children(pid) if own is not None and cmdline(child) == own]


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False
