"""Live-update fan-out benchmark: one change, seen by N connected agents (server-sent events).

    python bench/sse.py [--agents 50] [--changes 40] [--workers 2] [--threads 40]

Needs the runtime requirements only (no pytest). Starts its own Redis and SQLite database in a
temporary folder and the web server as scripts/run does (gunicorn, gthread workers), signs in
N agents of one queue, each holding its event stream (`/inbox/events`) open as a browser does,
then a supervisor changes the status of one conversation of that queue `--changes` times
through the page's own route (POST .../status). Each agent's receipt of each change is timed:

* from the commit's announcement (the event's `at`) to the agent's stream: the fan-out;
* from the supervisor's request to the agent's stream: what an agent waits for a colleague.

It does the same with one agent connected, and prints p50/p95/max of both, and the ratio of
the p95 with N agents to that with one, on the last lines. Goal: p95 from the request < 2 s
(the issue's promise; in practice tens of ms) and the fan-out ratio small (< 5).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import _goal, print_summary  # noqa: E402 - after the path is set

PASSWORD = "bench-password"
LOG = Path(tempfile.gettempdir()) / "pigeonhole-bench-sse.log"  # the web server's log, kept after the run


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def seed(config: dict, agents: int) -> int:
    """N agents and a supervisor (fast password hashes: the bench times streams, not sign-ins), one queue,
    one conversation in it; returns the conversation's id."""
    from werkzeug.security import generate_password_hash

    from app import create_app
    from app.channels.domains import ensure_platform_domain
    from app.extensions import db
    from app.models import EmailAddress
    from app.models.auth import Queue, User
    from app.models.inbox import Contact, Conversation

    app = create_app(dict(config))
    with app.app_context():
        db.create_all()
        hashed = generate_password_hash(PASSWORD, "pbkdf2:sha256:1000")
        users = [User(email=f"agent{i}@bench.test", name=f"Agent {i}", role="agent", password_hash=hashed)
                 for i in range(agents)]
        db.session.add_all(users)
        db.session.add(User(email="boss@bench.test", name="Boss", role="supervisor", password_hash=hashed))
        queue = Queue(name="Support", members=users)
        contact = Contact(email="carol@example.com", name="Carol")
        db.session.add_all([queue, contact])  # before the domain's look-up flushes the users with their queue
        domain = ensure_platform_domain()
        address = EmailAddress(domain=domain, address=f"support@{domain.name}", display_name="Support")
        db.session.add(address)
        db.session.flush()
        conversation = Conversation(subject="Where is my parcel?", status="open", queue_id=queue.id,
                                    contact_id=contact.id, address_id=address.id, token="benchtoken")
        db.session.add(conversation)
        db.session.commit()
        return conversation.id


def start_server(env: dict, port: int, workers: int, threads: int) -> subprocess.Popen:
    log = LOG.open("w")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--worker-class", "gthread",
         "--workers", str(workers), "--threads", str(threads), "wsgi:app"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    for _ in range(200):
        try:
            if requests.get(f"http://127.0.0.1:{port}/login", timeout=5).status_code == 200:
                return proc
        except requests.RequestException:
            time.sleep(0.1)
    raise SystemExit(f"the web server did not start; see {LOG}")


def sign_in(base: str, email: str) -> requests.Session:
    session = requests.Session()
    page = session.get(f"{base}/login").text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    answer = session.post(f"{base}/login", data={"email": email, "password": PASSWORD, "csrf_token": token},
                          allow_redirects=False)
    assert answer.status_code == 302, f"sign-in of {email}: {answer.status_code}"
    return session


class Listener(threading.Thread):
    """One agent's open event stream: the receipt time of each change event, by the event's `at`."""

    def __init__(self, session: requests.Session, base: str) -> None:
        super().__init__(daemon=True)
        self.session, self.base = session, base
        self.ready = threading.Event()
        self.received: dict[float, float] = {}  # event `at` -> time received
        self.response = None

    def run(self) -> None:
        self.response = self.session.get(f"{self.base}/inbox/events", stream=True, timeout=(5, 120))
        event = None
        try:
            for line in self.response.iter_lines(chunk_size=1, decode_unicode=True):
                if line.startswith(": connected"):
                    self.ready.set()
                elif line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:") and event == "change":
                    now = time.time()
                    self.received[json.loads(line[5:])["at"]] = now
        except (requests.RequestException, AttributeError, ValueError):
            pass  # closed by `close()` (urllib3 gives up mid-read with an AttributeError)

    def close(self) -> None:
        if self.response is not None:
            self.response.close()


_status = ["open"]  # the conversation's status, as the last change left it


def measure(base: str, boss: requests.Session, conversation_id: int, listeners: list[Listener], changes: int):
    """`changes` status changes; for each agent and each change (announced at, request sent at, received at)."""
    token = re.search(r'"X-CSRFToken": "([^"]+)"', boss.get(f"{base}/inbox/c/{conversation_id}").text).group(1)
    headers = {"HX-Request": "true", "X-CSRFToken": token}
    sent: list[float] = []
    for _ in range(changes):
        _status[0] = "pending" if _status[0] == "open" else "open"  # a change each time (the same status is none)
        before = time.time()
        answer = boss.post(f"{base}/inbox/c/{conversation_id}/status", headers=headers,
                           data={"status": _status[0]})
        assert answer.status_code == 200, answer.status_code
        sent.append(before)
        time.sleep(0.2)
    time.sleep(2.0)
    fanout, waited, missing = [], [], 0
    for listener in listeners:
        ats = sorted(listener.received)
        missing += changes - len(ats)
        for at, before in zip(ats, sent):
            fanout.append(listener.received[at] - at)
            waited.append(listener.received[at] - before)
    return fanout, waited, missing


def run(base: str, conversation_id: int, agents: int, changes: int):
    sessions = [sign_in(base, f"agent{i}@bench.test") for i in range(agents)]
    listeners = [Listener(s, base) for s in sessions]
    for listener in listeners:
        listener.start()
    for listener in listeners:
        if not listener.ready.wait(20):
            raise SystemExit("an event stream did not open (are there threads enough?)")
    try:
        return measure(base, sign_in(base, "boss@bench.test"), conversation_id, listeners, changes)
    finally:
        for listener in listeners:
            listener.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--changes", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=40)
    args = parser.parse_args()
    load_before = os.getloadavg()
    from tests.servers import RedisServer, free_port

    work = Path(tempfile.mkdtemp(prefix="pigeonhole-bench-sse-"))
    redis = RedisServer(work / "redis")
    proc = None
    summary = []
    try:
        config = {"SECRET_KEY": "bench", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{work / 'bench.db'}",
                  "REDIS_URL": redis.url, "BLOB_DIR": str(work / "blobs")}
        conversation_id = seed(config, args.agents)
        env = {**os.environ, "SECRET_KEY": "bench", "DATABASE_URL": config["SQLALCHEMY_DATABASE_URI"],
               "REDIS_URL": redis.url, "BLOB_DIR": config["BLOB_DIR"], "PIGEONHOLE_INSTANCE": str(work),
               "LOGIN_MAX_FAILURES_PER_ADDRESS": "100000", "LOGIN_MAX_FAILURES_PER_ACCOUNT": "100000"}
        port = free_port()
        proc = start_server(env, port, args.workers, args.threads)
        base = f"http://127.0.0.1:{port}"
        run(base, conversation_id, 1, 5)  # warm up: the workers' first requests, the first subscriptions
        results = {}
        for n in (1, args.agents):
            fanout, waited, missing = run(base, conversation_id, n, args.changes)
            results[n] = (fanout, waited)
            print(f"{n} agent(s) connected, {args.changes} changes: {len(fanout)} deliveries, {missing} missing; "
                  f"from the announcement p50 {percentile(fanout, 0.5) * 1000:.1f} ms, "
                  f"p95 {percentile(fanout, 0.95) * 1000:.1f} ms; from the request p95 "
                  f"{percentile(waited, 0.95) * 1000:.1f} ms", flush=True)
            if missing:
                summary.append(f"{missing} deliveries MISSING with {n} agents")
        one, many = results[1], results[args.agents]
        p95_one, p95_many = percentile(one[0], 0.95), percentile(many[0], 0.95)
        p95_wait = percentile(many[1], 0.95)
        ratio = p95_many / p95_one if p95_one else float("inf")
        summary.append(f"one change seen by {args.agents} connected agents (gunicorn gthread {args.workers}x"
                       f"{args.threads}): from the announcement p50 {percentile(many[0], 0.5) * 1000:.1f} ms, "
                       f"p95 {p95_many * 1000:.1f} ms, max {max(many[0]) * 1000:.1f} ms")
        summary.append(f"from the colleague's request to each agent: p95 {p95_wait * 1000:.1f} ms "
                       f"(goal < 2000 ms: {_goal(p95_wait < 2)})")
        summary.append(f"fan-out ratio, p95 with {args.agents} agents / with 1 agent "
                       f"({p95_one * 1000:.1f} ms): {ratio:.1f}x (goal < 5x: {_goal(ratio < 5)})")
    finally:
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(20)
        redis.stop()
        shutil.rmtree(work, ignore_errors=True)
    print_summary(summary, load_before)


if __name__ == "__main__":
    main()
