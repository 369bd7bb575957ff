"""IMAP IDLE benchmark: APPEND → conversation committed, and one `flask mail idle` holding 500 mailboxes.

    python bench/idle.py [-n 200] [--mailboxes 500] [--idle-seconds 60]

Needs the runtime requirements only (no pytest). The figures, their goals and the load
average are the last lines.

Starts its own Redis, Dovecot and SQLite database in a temporary folder and runs
`flask mail idle` as a subprocess, as production does:

* latency: one published IMAP mailbox held in IDLE; N messages APPENDed one after the
  other (as a delivery would put them there), each timed from the APPEND command until
  its Message row is committed and readable; p50 and p95 (goal p95 < 2 s);
* scale: a fresh `flask mail idle` holding `--mailboxes` published mailboxes (plus the
  first) in IDLE at once: its resident memory (goal < 300 MB) and CPU over
  `--idle-seconds` with no mail arriving (goal < 5 % of one core), with the default
  settings (re-read the configuration every 30 s, renew leases every 20 s).
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import Env, _goal, make_address, print_summary  # noqa: E402 - after the path is set

LOG = Path(tempfile.gettempdir()) / "pigeonhole-bench-idle.log"  # kept after the run, for a failed one

# Dovecot runs one imap process per connection, and one imap-login process per TLS connection for its
# whole life (it proxies the TLS): room for every mailbox's IDLE connection and its fetches.
DOVECOT_CONF = """
default_client_limit = 4000
service imap {
  process_limit = 1200
}
service imap-login {
  process_limit = 1200
}
"""


def idle_process(env: Env, **settings) -> subprocess.Popen:
    environ = dict(os.environ)
    environ.update({
        "FLASK_APP": "wsgi", "PYTHONPATH": str(ROOT), "PIGEONHOLE_INSTANCE": str(env.work / "instance"),
        "DATABASE_URL": env.config["SQLALCHEMY_DATABASE_URI"], "REDIS_URL": env.config["REDIS_URL"],
        "SECRET_KEY": env.config["SECRET_KEY"], "BLOB_DIR": env.config["BLOB_DIR"],
        "MAIL_TLS_CA_FILE": env.config["MAIL_TLS_CA_FILE"], "MAILBOX_BACKFILL": "7",
        "PLATFORM_MAIL_DOMAIN": env.config["PLATFORM_MAIL_DOMAIN"],
    })
    environ.update({k: str(v) for k, v in settings.items()})
    log = LOG.open("ab")
    return subprocess.Popen([sys.executable, "-m", "flask", "mail", "idle"], env=environ, cwd=ROOT,
                            stdout=log, stderr=log)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def heartbeats(redis) -> int:
    return sum(1 for _ in redis.scan_iter("pigeonhole:idle-heartbeat:*", count=1000))


def wait_for_heartbeats(redis, proc, n: int, timeout: float) -> float:
    started = time.monotonic()
    while heartbeats(redis) < n:
        if proc.poll() is not None:
            raise SystemExit(f"flask mail idle stopped (exit {proc.returncode}); see {LOG}")
        if time.monotonic() - started > timeout:
            raise SystemExit(f"only {heartbeats(redis)} of {n} mailboxes healthy after {timeout:.0f} s")
        time.sleep(0.2)
    return time.monotonic() - started


def publish_mailboxes(env: Env, users: list[str]) -> list[int]:
    app = env.app()
    with app.app_context():
        return [make_address(user, "custom", usage="inbound", username=user, password="pw",
                             incoming_protocol="imap", incoming_host="127.0.0.1",
                             incoming_port=env.dovecot.ports["imaps"], incoming_security="ssl")
                for user in users]


def one_message(i: int, to: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Customer {i} <customer{i}@example.com>"
    msg["To"] = to
    msg["Subject"] = f"IDLE bench {i}"
    msg["Date"] = format_datetime(__import__("datetime").datetime.now(__import__("datetime").timezone.utc))
    msg["Message-ID"] = make_msgid(f"idle{i}", domain="example.com")
    msg.set_content(f"Hello,\n\nquestion number {i} about my order.\n\nThanks\n")
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


def latency(env: Env, address_id: int, user: str, n: int) -> list[float]:
    """Seconds from APPEND to a committed Message row, for n messages one after the other."""
    from imapclient import IMAPClient
    from sqlalchemy import select

    from app.extensions import db
    from app.models.inbox import Message

    app = env.app()
    out = []
    with app.app_context(), IMAPClient("127.0.0.1", port=env.dovecot.imap_port, ssl=False, timeout=60) as imap:
        imap.login(user, "pw")
        for i in range(n):
            raw = one_message(i, user)
            subject = f"IDLE bench {i}"
            started = time.monotonic()
            imap.append("INBOX", raw)
            while True:
                found = db.session.scalar(select(Message.id).where(Message.address_id == address_id,
                                                                   Message.subject == subject))
                db.session.rollback()
                if found is not None:
                    break
                if time.monotonic() - started > 60:
                    raise SystemExit(f"message {i} not stored after 60 s; see {LOG}")
                time.sleep(0.005)
            out.append(time.monotonic() - started)
    return out


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def memory_mb(pid: int) -> tuple[float, float, int]:
    """(resident MB now, peak resident MB, threads) of a process."""
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return (int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024,
            int(status["Threads"].strip()))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=200, help="messages for the latency part (default 200)")
    ap.add_argument("--mailboxes", type=int, default=500, help="mailboxes held at once (default 500)")
    ap.add_argument("--idle-seconds", type=float, default=60, help="CPU measured over this long (default 60)")
    args = ap.parse_args()
    load_before = os.getloadavg()
    summary: list[str] = []

    LOG.write_bytes(b"")
    work = Path(tempfile.mkdtemp(prefix="pigeonhole-bench-idle-"))
    os.chmod(work, 0o755)
    env = Env(work, DOVECOT_CONF)
    redis = __import__("redis").Redis.from_url(env.redis.url)
    try:
        app = env.app()
        with app.app_context():
            from app.extensions import db

            db.create_all()
        first = "latency@acme.test"
        many = [f"held{i}@acme.test" for i in range(args.mailboxes)]
        for user in [first, *many]:
            env.dovecot.add_user(user, "pw")
        time.sleep(1.1)  # Dovecot re-reads its passwd-file by mtime (seconds)
        [first_id] = publish_mailboxes(env, [first])

        proc = idle_process(env, IDLE_REFRESH_SECONDS=1)
        try:
            wait_for_heartbeats(redis, proc, 1, 60)
            times = latency(env, first_id, first, args.n)
        finally:
            stop(proc)
        p50, p95 = percentile(times, 0.5), percentile(times, 0.95)
        print(f"APPEND -> conversation committed, {len(times)} messages: p50 {p50 * 1000:.0f} ms, "
              f"p95 {p95 * 1000:.0f} ms, max {max(times) * 1000:.0f} ms", flush=True)
        summary.append(f"IDLE latency (APPEND -> conversation committed, N={len(times)}): p50 {p50:.2f} s, "
                       f"p95 {p95:.2f} s (goal p95 < 2 s: {_goal(p95 < 2)})")

        print(f"publishing {len(many)} more mailboxes ...", flush=True)
        publish_mailboxes(env, many)
        proc = idle_process(env)
        try:
            ready = wait_for_heartbeats(redis, proc, len(many) + 1, 600)
            print(f"one flask mail idle holds {len(many) + 1} mailboxes in IDLE after {ready:.1f} s", flush=True)
            time.sleep(5)  # settle: the start-up's fetches and handshakes are over
            cpu_before, wall_before = cpu_seconds(proc.pid), time.monotonic()
            time.sleep(args.idle_seconds)
            cpu = (cpu_seconds(proc.pid) - cpu_before) / (time.monotonic() - wall_before) * 100
            rss, peak, threads = memory_mb(proc.pid)
            still = heartbeats(redis)
        finally:
            stop(proc)
        print(f"  resident {rss:.0f} MB (peak {peak:.0f} MB), {threads} threads, CPU {cpu:.2f} % of one core "
              f"over {args.idle_seconds:.0f} s, {still} heartbeats at the end", flush=True)
        summary.append(f"memory of one flask mail idle holding {len(many) + 1} mailboxes: {rss:.0f} MB resident, "
                       f"peak {peak:.0f} MB (goal < 300 MB: {_goal(peak < 300)})")
        summary.append(f"CPU of it with no mail ({args.idle_seconds:.0f} s): {cpu:.2f} % of one core "
                       f"(goal < 5 %: {_goal(cpu < 5)})")
    finally:
        env.stop()
        shutil.rmtree(work, ignore_errors=True)
    print_summary(summary, load_before)


if __name__ == "__main__":
    main()
