"""Environment for running `flask ...` commands of the app under test in a subprocess."""
from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def flask_env(app, tmp_path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "FLASK_APP": "wsgi",
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": app.config["REDIS_URL"],
        "SECRET_KEY": app.config["SECRET_KEY"],
        "BLOB_DIR": app.config["BLOB_DIR"],
        "PIGEONHOLE_INSTANCE": str(tmp_path / "instance"),
        "PLATFORM_MAIL_DOMAIN": app.config["PLATFORM_MAIL_DOMAIN"],
        "PYTHONPATH": str(ROOT),
    })
    for name in ("SMTP_RELAY_URL", "MAIL_TLS_CA_FILE", "OUTBOX_DIR"):
        if app.config.get(name):
            env[name] = str(app.config[name])
    env["MAIL_ALLOW_PRIVATE_HOSTS"] = "1" if app.config.get("MAIL_ALLOW_PRIVATE_HOSTS") else "0"
    return env


def run_migration_script(app, tmp_path, script: str):
    """Run `script` (Python that migrates a fresh SQLite file and prints JSON last) in a process of its own
    (Alembic configures logging globally, so not in the test process); the JSON it printed."""
    import json
    import subprocess

    env = flask_env(app, tmp_path)
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'm.db'}"
    run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.strip().splitlines()[-1])


def flask_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "flask", *args]


def kill_started_with(env: dict[str, str]) -> list[int]:
    """SIGKILL every process started with this environment's PIGEONHOLE_INSTANCE (what a process manager under
    test started, in process groups of their own, and left behind when the test failed); their pids."""
    import signal

    marker = b"PIGEONHOLE_INSTANCE=" + env["PIGEONHOLE_INSTANCE"].encode() + b"\0"
    killed = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        if int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if marker not in f.read() + b"\0":
                    continue
            os.kill(int(pid), signal.SIGKILL)
            killed.append(int(pid))
        except OSError:
            continue
    return killed
