"""Ingress memory under unfinished messages: in memory (aiosmtpd's way) against spooled to disk.

    python bench/ingress_memory.py [-n 40] [--mb 20]

Needs the runtime requirements only (no pytest, no Redis: no message is ever finished).
Starts `flask ingress` twice on a temporary SQLite database with one published address,
opens N sessions that each send MB of DATA and never the final dot, and prints the
ingress's resident memory (VmRSS) before and after:

* in memory: `INGRESS_SPOOL_THRESHOLD_BYTES` above the message size, so every byte is
  held in memory until the dot, as aiosmtpd does (issue 19: 40 x 20 MB took the
  ingress from 131 MB to 979 MB);
* spooled: the default 1 MB threshold, the rest waits in unnamed temporary files.

The last line is the ratio of the two growths (goal < 0.1).
"""
from __future__ import annotations

import argparse
import os
import shutil
import smtplib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import make_address, print_summary  # noqa: E402 - after the path is set

MB = 1024 * 1024
RCPT = "support@mail.pigeonhole.test"


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS:"))


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def received_bytes(pid: int) -> int:
    """What the ingress holds of the unfinished messages on disk (its open spool files)."""
    total = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if "/spool/" in os.readlink(f"/proc/{pid}/fd/{fd}"):
                total += os.stat(f"/proc/{pid}/fd/{fd}").st_size
        except OSError:
            continue
    return total


def run(env: dict[str, str], sessions: int, body: bytes, spooled: bool) -> tuple[int, int]:
    """RSS of a fresh ingress before and after `sessions` unfinished messages of `body`."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "flask", "ingress", "--port", str(port)], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    clients = []
    try:
        wait_for_port(port)
        time.sleep(0.5)
        before = rss(proc.pid)
        for _ in range(sessions):
            smtp = smtplib.SMTP("127.0.0.1", port, timeout=120)
            clients.append(smtp)
            smtp.ehlo()
            smtp.mail("carla@example.com")
            smtp.rcpt(RCPT)
            smtp.putcmd("data")
            assert smtp.getreply()[0] == 354
            smtp.send(body)
        # Everything sent: wait until the ingress has read it (spooled: its files hold it; in memory: RSS settles).
        deadline, last = time.monotonic() + 120, -1
        while time.monotonic() < deadline:
            if spooled and received_bytes(proc.pid) >= sessions * (len(body) - 2 * MB):
                break
            now = rss(proc.pid)
            if not spooled and now == last:
                break
            last = now
            time.sleep(0.5)
        return before, rss(proc.pid)
    finally:
        for smtp in clients:
            smtp.close()
        proc.terminate()
        proc.wait(10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=40, help="unfinished sessions (default 40)")
    ap.add_argument("--mb", type=int, default=20, help="MB each session sends (default 20)")
    args = ap.parse_args()
    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="pigeonhole-bench-"))
    try:
        config = {"SECRET_KEY": "bench", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{work / 'bench.db'}",
                  "BLOB_DIR": str(work / "blobs"), "PLATFORM_MAIL_DOMAIN": "mail.pigeonhole.test"}
        from app import create_app
        from app.extensions import db

        app = create_app(dict(config))
        with app.app_context():
            db.create_all()
            make_address(RCPT, "platform")
        env = dict(os.environ, FLASK_APP="wsgi", PYTHONPATH=str(ROOT), PIGEONHOLE_INSTANCE=str(work / "instance"),
                   DATABASE_URL=config["SQLALCHEMY_DATABASE_URI"], SECRET_KEY="bench", BLOB_DIR=config["BLOB_DIR"],
                   PLATFORM_MAIL_DOMAIN="mail.pigeonhole.test", INGRESS_MAX_SESSIONS_PER_IP=str(args.n + 1),
                   INGRESS_MAX_SESSIONS=str(args.n + 1), INBOUND_MAX_MESSAGE_SIZE=str((args.mb + 1) * MB))
        line = b"." + b"x" * 76 + b"\r\n"
        body = b"From: carla@example.com\r\nSubject: big\r\n\r\n" + line.replace(b".", b"..", 1) * (args.mb * MB // 79)
        summary = []
        growth = {}
        for name, threshold in (("in memory", (args.mb + 1) * MB), ("spooled", MB)):
            before, after = run(env | {"INGRESS_SPOOL_THRESHOLD_BYTES": str(threshold)}, args.n, body,
                                spooled=threshold < len(body))
            growth[name] = after - before
            summary.append(f"{name:9}: {args.n} unfinished x {args.mb} MB: RSS {before / MB:.0f} MB -> "
                           f"{after / MB:.0f} MB (+{growth[name] / MB:.0f} MB)")
        ratio = growth["spooled"] / max(growth["in memory"], 1)
        print_summary(summary, load_before)
        print(f"RSS growth spooled / in memory: {ratio:.3f} (goal < 0.1: {'met' if ratio < 0.1 else 'NOT MET'})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
