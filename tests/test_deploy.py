"""The deployment's process definitions run as they are: the systemd units verify clean, and the Procfile
starts web, worker and cron under honcho, answers /healthz, and stops with no ghost worker left."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from rq import Worker

from app.queues import redis_connection
from tests.servers import free_port
from tests.subprocess_env import kill_started_with, flask_env

ROOT = Path(__file__).resolve().parent.parent
UNITS = ["pigeonhole-web.service", "pigeonhole-worker@.service", "pigeonhole-cron.service",
         "pigeonhole-ingress.service", "pigeonhole-idle.service", "pigeonhole.target"]


def test_the_systemd_units_verify_clean(tmp_path):
    """`systemd-analyze verify`, with /opt/pigeonhole (the documented install path) pointed at this checkout."""
    for name in UNITS:
        text = (ROOT / "deploy" / name).read_text()
        assert "ExecStart=" in text or name.endswith(".target")
        (tmp_path / name).write_text(text.replace("/opt/pigeonhole", str(ROOT)).replace(
            "User=pigeonhole", f"User={_user()}").replace(
            "Group=pigeonhole", f"Group={_group()}"))
    (tmp_path / "pigeonhole-worker@ingest-1.service").symlink_to("pigeonhole-worker@.service")
    files = [f"./{n}" for n in UNITS if n != "pigeonhole-worker@.service"] + ["./pigeonhole-worker@ingest-1.service"]
    run = subprocess.run([shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze", "verify", "--man=no", *files],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert (run.returncode, run.stdout + run.stderr) == (0, "")


def _user() -> str:
    import pwd
    return pwd.getpwuid(os.getuid()).pw_name


def _group() -> str:
    import grp
    return grp.getgrgid(os.getgid()).gr_name


def test_the_worker_unit_works_the_queue_named_by_its_instance():
    text = (ROOT / "deploy" / "pigeonhole-worker@.service").read_text()
    exec_line = next(line for line in text.splitlines() if line.startswith("ExecStart="))
    shell = exec_line.removeprefix("ExecStart=").replace("$$", "$").replace("%%", "%").replace("%i", "ingest-2")
    shell = shell.replace("exec /opt/pigeonhole/.venv/bin/python -m flask worker", "echo")
    out = subprocess.run(shell, shell=True, capture_output=True, text=True, timeout=10).stdout
    assert out.strip() == "ingest"


def test_the_procfile_runs_under_honcho_and_stops_cleanly(app, tmp_path):
    port = free_port()
    env = flask_env(app, tmp_path) | {"WEB_BIND": f"127.0.0.1:{port}", "WEB_PROCESSES": "1",
                                      "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    with app.app_context():
        connection = redis_connection()
        before = {w.name for w in Worker.all(connection=connection)}
    proc = subprocess.Popen([str(Path(sys.executable).parent / "honcho"), "start", "-f", str(ROOT / "Procfile"),
                             "-d", str(ROOT), "web", "worker-ingest", "worker-send", "cron"],
                            env=env, cwd=ROOT, start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 90
        health = None
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
                raise AssertionError("the Procfile's processes did not come up:\n" + proc.communicate(timeout=30)[0][-3000:])
            try:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
                        health = json.loads(answer.read())
                except urllib.error.HTTPError as answer:  # 503: cron queued work for a queue no worker here takes
                    health = json.loads(answer.read())
                with app.app_context():
                    if len({w.name for w in Worker.all(connection=connection)} - before) == 2:
                        break
            except OSError:
                pass
            time.sleep(0.3)
        assert health is not None and health.get("ok") is not None
        proc.send_signal(signal.SIGTERM)  # honcho passes it on to every process
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        # honcho starts each process in a group of its own: none may outlive the test and work the tests' Redis.
        kill_started_with(env)
    with app.app_context():
        assert {w.name for w in Worker.all(connection=connection)} - before == set(), output
    assert "Traceback" not in output, output
