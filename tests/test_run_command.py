"""The README's first command, `scripts/run`, as ops would meet it: a child that dies is started again
(issue 18, fault 3: before, one dead child stopped every process), and Ctrl-C stops them all."""
from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request

import pytest
from redis import Redis
from rq import Worker

from tests.servers import free_port, wait_for_port
from tests.subprocess_env import ROOT, kill_started_with


def _healthz(port: int) -> dict | None:
    import json

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
            return json.loads(answer.read())
    except Exception:  # noqa: BLE001 - not up yet, or 503 while a worker is missing
        return None


def _wait(condition, message: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, message
        time.sleep(0.3)


@pytest.fixture
def running(tmp_path, request):
    """`scripts/run` started in a fresh instance folder, once /healthz counts its workers (`WORKERS`, from the
    test's indirect parameter: extra environment; 1 by default)."""
    extra = getattr(request, "param", {})
    port, redis_port, ingress_port = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "SMTP_RELAY_URL")}
    env.update(PIGEONHOLE_INSTANCE=str(tmp_path / "instance"), PORT=str(port), REDIS_PORT=str(redis_port),
               INGRESS_PORT=str(ingress_port), WORKER_TTL_SECONDS="5", **extra)
    workers = int(env.get("WORKERS", "1"))
    log = open(tmp_path / "run.out", "w+")
    proc = subprocess.Popen(["bash", str(ROOT / "scripts" / "run")], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait(lambda: (_healthz(port) or {}).get("workers") == workers or proc.poll() is not None, "scripts/run never came up",
              timeout=240)
        assert proc.poll() is None, (tmp_path / "run.out").read_text()
        yield proc, port, redis_port, ingress_port, tmp_path / "run.out"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        kill_started_with(env)  # each child runs in a group of its own: none may outlive the test
        log.close()


def test_a_killed_worker_and_ingress_are_started_again_and_ctrl_c_stops_everything(running):
    proc, port, redis_port, ingress_port, out = running
    redis = Redis(port=redis_port)
    [worker] = Worker.all(connection=redis)
    os.kill(worker.pid, signal.SIGKILL)
    _wait(lambda: [w.pid for w in Worker.all(connection=redis) if w.pid != worker.pid
                   and w.last_heartbeat is not None], "no new worker registered")
    assert "worker stopped (exit 137); starting it again" in out.read_text()

    ingress = next(int(p) for p in os.listdir("/proc") if p.isdigit() and _is_ingress(int(p), ingress_port))
    os.kill(ingress, signal.SIGKILL)
    _wait(lambda: "ingress stopped (exit 137); starting it again" in out.read_text(), "the ingress was not restarted")
    wait_for_port(ingress_port, timeout=60)
    assert proc.poll() is None and (_healthz(port) or {}).get("database", {}).get("ok")

    instance = str(out.parent / "instance").encode()
    assert _ours(instance)  # the check below can see them
    proc.send_signal(signal.SIGINT)
    code = proc.wait(60)
    assert code == 130, (code, out.read_text()[-1500:])
    _wait(lambda: not _ours(instance), f"processes left running: {_ours(instance)}", timeout=20)


@pytest.mark.parametrize("running", [{"WORKERS": "2"}], indirect=True)
def test_workers_starts_that_many_workers_each_on_every_queue(running):
    """`WORKERS=2 scripts/run`: two workers, two processes, each listening to every queue, each supervised (a
    killed one is started again as itself, the other untouched)."""
    from app.queues import QUEUE_NAMES

    proc, port, redis_port, _ingress_port, out = running
    redis = Redis(port=redis_port)
    workers = Worker.all(connection=redis)
    assert len(workers) == 2 and len({w.pid for w in workers}) == 2
    for worker in workers:
        assert sorted(worker.queue_names()) == sorted(QUEUE_NAMES)
    assert "starting 2 worker(s)" in out.read_text()

    killed, kept = workers
    os.kill(killed.pid, signal.SIGKILL)
    _wait(lambda: len([w for w in Worker.all(connection=redis) if w.pid != killed.pid
                       and w.last_heartbeat is not None]) == 2, "the killed worker was not replaced")
    assert kept.pid in {w.pid for w in Worker.all(connection=redis)}
    assert proc.poll() is None


def _is_ingress(pid: int, port: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read().split(b"\0")
    except OSError:
        return False
    return b"ingress" in cmdline and str(port).encode() in cmdline


def _ours(instance: bytes) -> list[str]:
    """The command lines of the processes started for this run (its PIGEONHOLE_INSTANCE in their environment)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if b"PIGEONHOLE_INSTANCE=" + instance + b"\0" not in f.read() + b"\0":
                    continue
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                found.append(f.read().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            continue
    return found
