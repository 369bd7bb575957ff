"""Issue 18, "Prove it": Pigeonhole run as a deployment, from the Procfile, on PostgreSQL and one Redis,
while its processes are killed.

* The scale-out test: 2 ingress processes, 3 workers (ingest, flows, send), web (gunicorn, 2 processes) and
  cron. Customer mail arrives over SMTP at both ingress processes (new mails, duplicates, replies to earlier
  ones) while agents reply through the web; a worker is killed twice and an ingress once, and each is started
  again. Afterwards every accepted mail is stored once and routed, every reply reached the SMTP server once
  (or is visibly failed), no RQ job is stuck, and `/metrics` agrees with the database.
* The machine crash: a worker and its work horse are killed together 15 times while mail arrives and flows
  run; cron's sweeps alone bring every acknowledged mail to a routed conversation within 2 minutes.

Both need PostgreSQL (`DATABASE_URL`; scripts/test's PostgreSQL run). The sizes are settings:
`SCALE_OUT_MAILS` (default 3,000), `SCALE_OUT_REPLIES` (1,000), `MACHINE_CRASH_MAILS` (300).
"""
from __future__ import annotations

import os
import queue
import subprocess
import threading
import time
from collections import Counter
from email import message_from_bytes
from pathlib import Path

import pytest
import requests
from rq.registry import StartedJobRegistry
from sqlalchemy import func, select

from app.models.auth import User
from app.models.flows import FlowRun
from app.models.inbound import InboundRaw
from app.models.inbox import Contact, Conversation, Message
from app.models.organize import ConversationEvent
from app.queues import get_queue, live_workers, redis_connection
from tests.procfile_run import Agent, Procfile, Sender, children, customer_mails
from tests.servers import SMTPServer, free_ports, wait_for_port
from tests.subprocess_env import flask_cmd, flask_env
from tests.web.test_metrics import value

pytestmark = pytest.mark.postgres

MAILS = int(os.environ.get("SCALE_OUT_MAILS", "3000"))
REPLIES = int(os.environ.get("SCALE_OUT_REPLIES", "1000"))
CRASH_MAILS = int(os.environ.get("MACHINE_CRASH_MAILS", "300"))
RCPT = "support@mail.pigeonhole.test"  # the demo seed's published address, with its flow that routes by intent
WORKED = ("ingest", "flows", "send")


class Stack:
    """Settings for the Procfile's processes on the test's PostgreSQL and Redis, the demo seed, the relay
    (a test SMTP server) and the processes' logs; `procs` starts them."""

    def __init__(self, app, dns, tmp_path: Path) -> None:
        if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
            pytest.fail("this test runs Pigeonhole as a deployment on PostgreSQL: set DATABASE_URL to a PostgreSQL "
                        "database (scripts/test's PostgreSQL run does), or deselect it with -m 'not postgres'")
        self.app = app
        self.relay = SMTPServer(tmp_path / "relay")
        metrics = tmp_path / "metrics"
        metrics.mkdir()
        self.web_port, *self.ingress_ports = free_ports(3)
        self.base = f"http://127.0.0.1:{self.web_port}"
        self.env = flask_env(app, tmp_path) | {
            "SMTP_RELAY_URL": f"smtp://127.0.0.1:{self.relay.port}?tls=none",
            "PROMETHEUS_MULTIPROC_DIR": str(metrics),
            "DNS_RESOLVER": dns.address, "DNS_TIMEOUT_SECONDS": "1",
            "WEB_BIND": f"127.0.0.1:{self.web_port}", "WEB_PROCESSES": "2",
            # Short enough for a test, the same mechanisms as production's defaults: a dead worker is noticed
            # after 10 s, cron sweeps pending arrivals and flow steps 5 s old, a dead sender's claim ends in 20 s.
            "WORKER_TTL_SECONDS": "10", "CRON_TICK_SECONDS": "1", "INGEST_RETRY_SECONDS": "5",
            "FLOW_RETRY_SECONDS": "5", "FLOW_SWEEP_SECONDS": "2", "SEND_LEASE_SECONDS": "20",
            "INGEST_LOCK_LEASE_SECONDS": "5",
        }
        self.procs = Procfile(self.env, tmp_path / "logs")
        seed = subprocess.run(flask_cmd("demo", "seed"), env=self.env, capture_output=True, text=True, timeout=300)
        assert seed.returncode == 0, seed.stderr[-3000:]
        app.config.update(WORKER_TTL_SECONDS=10)
        from app.extensions import db

        db.session.remove()
        self.before_message = db.session.scalar(select(func.coalesce(func.max(Message.id), 0)))
        self.before_conversation = db.session.scalar(select(func.coalesce(func.max(Conversation.id), 0)))
        self.seeded_outcomes = _send_outcomes()  # the seed's own (its failed demo reply): no process counted them

    def start_ingress(self) -> None:
        for i, port in enumerate(self.ingress_ports, 1):
            self.procs.start(f"ingress-{i}", "ingress", INGRESS_PORT=str(port))
        for port in self.ingress_ports:
            wait_for_port(port, timeout=90)

    def wait_workers(self, count: int) -> None:
        deadline = time.monotonic() + 90
        while len(live_workers(redis_connection())) < count:
            assert time.monotonic() < deadline, "the workers did not start:\n" + "\n".join(
                self.procs.log(n)[-1500:] for n in self.procs.running if n.startswith("worker"))
            time.sleep(0.2)

    def stop(self) -> None:
        self.procs.stop()
        self.relay.stop()


@pytest.fixture
def stack(app, dns, tmp_path):
    built = Stack(app, dns, tmp_path)
    try:
        yield built
    finally:
        built.stop()


# --- What the database says ---------------------------------------------------------------------------------

def _inbound(stack: Stack):
    from app.extensions import db

    db.session.remove()
    return db.session.execute(
        select(Message.id, Message.message_id, Message.conversation_id, Conversation.queue_id,
               select(FlowRun.id).where(FlowRun.message_id == Message.id).exists().label("ran"))
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(Message.direction == "in", Message.id > stack.before_message)).all()


def _pending(stack: Stack) -> dict[str, int]:
    """What is not done yet: arrivals, flow steps, replies on their way, jobs waiting or running."""
    from app.extensions import db

    db.session.remove()
    connection = redis_connection()
    outgoing = db.session.scalar(select(func.count()).select_from(Message).where(
        Message.direction == "out", Message.id > stack.before_message,
        Message.delivery_status.in_(("queued", "sending", "retrying"))))
    left = {
        "arrivals": db.session.scalar(select(func.count()).select_from(InboundRaw).where(InboundRaw.status == "pending")),
        "flow steps": sum(1 for row in _inbound(stack) if not row.ran),
        "replies": outgoing,
    }
    for name in WORKED:
        left[f"{name} queued"] = get_queue(name, connection).count
        left[f"{name} started"] = StartedJobRegistry(name, connection=connection).count
    return left


def _wait_done(stack: Stack, timeout: float) -> float:
    started = time.monotonic()
    while True:
        left = _pending(stack)
        if not any(left.values()):
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"still pending after {timeout:.0f} s: {left}\n" + "\n".join(
                f"--- {n}\n{stack.procs.log(n)[-2500:]}" for n in stack.procs.running))
        time.sleep(1)


def _send_outcomes() -> Counter:
    """Outgoing messages by delivery status, of those that were tried."""
    from app.extensions import db

    return Counter(db.session.scalars(select(Message.delivery_status).where(
        Message.direction == "out", Message.delivery_attempts > 0)))


def _bare(message_id: str | None) -> str:
    return (message_id or "").strip().strip("<>")


def _assert_every_accepted_mail_stored_once_and_routed(stack: Stack, acknowledged: set[str]) -> list:
    rows = _inbound(stack)
    stored = Counter(_bare(row.message_id) for row in rows)
    assert set(stored) == acknowledged, (len(set(stored) - acknowledged), len(acknowledged - set(stored)))
    assert [mid for mid, n in stored.items() if n != 1] == []  # each stored exactly once
    assert [row.id for row in rows if not row.ran or row.queue_id is None] == []  # each routed: flow run, queue
    return rows


# --- The scale-out test ---------------------------------------------------------------------------------------

@pytest.mark.timeout(900 + MAILS)  # the pipeline's pace on a loaded 2-core machine: docs/deploy.md, "Proving it"
def test_the_procfile_s_processes_scale_out_and_lose_nothing_while_killed(stack):
    from app.extensions import db

    procs = stack.procs
    procs.start("web")
    procs.start("cron")
    for name in WORKED:
        procs.start(f"worker-{name}")
    stack.start_ingress()
    wait_for_port(stack.web_port, timeout=90)
    stack.wait_workers(3)
    began = time.monotonic()

    mails = customer_mails(MAILS, RCPT)
    sender = Sender(stack.ingress_ports, RCPT, connections=4, rate=MAILS / 90)  # kills land while mail arrives
    sender.send(mails)

    # Agents reply through the web while mail keeps arriving: routed conversations are handed to 4 sessions.
    agents = [Agent(stack.base, email, "demo") for email in ("agent@demo.test", "agent@demo.test",
                                                              "supervisor@demo.test", "supervisor@demo.test")]
    work: queue.Queue = queue.Queue()
    posted, failures = [], []

    def reply(agent: Agent) -> None:
        while (item := work.get()) is not None:
            try:
                agent.reply(*item)
                posted.append(item[0])
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                failures.append(repr(exc))

    threads = [threading.Thread(target=reply, args=(a,), daemon=True) for a in agents]
    for thread in threads:
        thread.start()

    kills = {"worker-ingest": MAILS // 4, "ingress-1": MAILS // 2, "worker-send": REPLIES // 2}
    killed, handed = [], set()
    while len(handed) < REPLIES or len(posted) < len(handed) or sender.sent < MAILS:
        assert time.monotonic() - began < 600 + MAILS, (sender.sent, len(handed), len(posted), failures[:5])
        assert not failures, failures[:5]
        for name, when in kills.items():
            done = len(posted) if name == "worker-send" else sender.sent
            if name not in killed and done >= when:
                procs.kill(name)
                killed.append(name)
                print(f"\nkilled {name} after {sender.sent} mails and {len(posted)} replies")
        if len(handed) < REPLIES:
            db.session.remove()
            found = db.session.execute(
                select(Conversation.id, Contact.email, Conversation.subject)
                .join(Contact, Contact.id == Conversation.contact_id)
                .where(Conversation.id > stack.before_conversation, Conversation.queue_id.is_not(None),
                       Conversation.id.not_in(handed or {0}))
                .order_by(Conversation.id).limit(REPLIES - len(handed))).all()
            for conversation_id, email, subject in found:
                handed.add(conversation_id)
                work.put((conversation_id, email, f"Re: {subject}", f"Answer to conversation {conversation_id}"))
        time.sleep(0.5)
    for _ in threads:
        work.put(None)
    for thread in threads:
        thread.join(60)
    sender.join()
    pushed = time.monotonic() - began
    assert not failures, failures[:5]
    assert killed == ["worker-ingest", "ingress-1", "worker-send"] or sorted(killed) == sorted(kills)
    settled = _wait_done(stack, timeout=300 + MAILS / 4)
    print(f"\nscale-out: {MAILS} mails ({sender.retries} retried by the senders) and {REPLIES} replies pushed in "
          f"{pushed:.0f} s; all settled {settled:.0f} s later; total {time.monotonic() - began:.0f} s")

    # Every accepted mail stored exactly once and routed.
    acknowledged = set(sender.acknowledged)
    assert acknowledged == {m.message_id for m in mails}
    _assert_every_accepted_mail_stored_once_and_routed(stack, acknowledged)
    db.session.remove()
    raws = Counter(db.session.scalars(select(InboundRaw.status).where(InboundRaw.source == "smtp")))
    assert set(raws) <= {"created", "threaded", "duplicate"}, raws
    assert sum(raws.values()) >= len(sender.acknowledged)  # one row per 250 (and per retried cut-off DATA)
    assert raws["duplicate"] >= sum(1 for m in mails if m.kind == "duplicate")
    assert raws["threaded"] >= 1

    # Every reply reached the SMTP server exactly once (by Message-ID), or is visibly failed.
    replies = db.session.execute(
        select(Message.id, Message.message_id, Message.delivery_status, Message.delivery_error,
               Message.delivery_attempts)
        .join(User, User.id == Message.author_id)
        .where(Message.direction == "out", Message.id > stack.before_message, Message.automatic.is_(None))).all()
    assert len(replies) == REPLIES == len(posted)
    received = Counter(_bare(message_from_bytes(m["data"])["Message-ID"]) for m in stack.relay.messages)
    possible_twice = {data.get("message_id") for data in db.session.scalars(select(ConversationEvent.data).where(
        ConversationEvent.text.like("A reply may reach its recipients twice%")))}
    for row in replies:
        if row.delivery_status == "failed":
            assert row.delivery_error, row
            continue
        assert row.delivery_status == "sent", row
        expected = (1, 2) if row.id in possible_twice else (1,)
        assert received[_bare(row.message_id)] in expected, (row, received[_bare(row.message_id)])

    # No job stuck (the queues and RQ's started registries are empty: `_wait_done`), workers are back.
    connection = redis_connection()
    assert Counter(q for w in live_workers(connection) for q in w.queue_names()) == {q: 1 for q in WORKED}

    # /metrics, scraped from the web processes, agrees with the database.
    scraped = requests.get(f"{stack.base}/metrics", timeout=60)
    assert scraped.status_code == 200
    text = scraped.text
    statuses = Counter(db.session.scalars(select(InboundRaw.status)))
    for outcome in ("created", "threaded", "duplicate"):
        assert (value(text, "pigeonhole_ingest_messages_total", outcome=outcome) or 0) == statuses[outcome], outcome
    sends = _send_outcomes() - stack.seeded_outcomes
    assert value(text, "pigeonhole_send_messages_total", outcome="sent") == sends["sent"]
    assert (value(text, "pigeonhole_send_messages_total", outcome="failed") or 0) == sends["failed"]
    assert value(text, "pigeonhole_inbound_pending_messages") == 0
    for state in ("queued", "retrying", "sending"):
        assert value(text, "pigeonhole_outgoing_messages", state=state) == 0
    for name in WORKED:
        assert value(text, "pigeonhole_queue_jobs", queue=name) == 0
        assert value(text, "pigeonhole_queue_started_jobs", queue=name) == 0
        assert value(text, "pigeonhole_workers", queue=name) == 1
    ingested = value(text, "pigeonhole_ingest_latency_seconds_count")
    assert ingested == sum(statuses.values())
    assert value(text, "pigeonhole_up", part="database") == value(text, "pigeonhole_up", part="redis") == 1
    assert value(text, "pigeonhole_http_request_duration_seconds_count", endpoint="inbox.send",
                 method="POST") >= REPLIES


# --- Machine crash ------------------------------------------------------------------------------------------

@pytest.mark.timeout(900)
def test_a_worker_killed_with_its_work_horse_15_times_loses_no_mail(stack):
    """A machine crash, 15 times: a worker and its work horse killed at once (SIGKILL), mid-job when one runs,
    while mail arrives and flows run; the process manager starts the worker again. Cron's sweeps alone bring
    every acknowledged mail to a routed conversation within 2 minutes of the last crash."""
    procs = stack.procs
    procs.start("cron")
    procs.start("worker-ingest")
    procs.start("worker-flows")
    stack.start_ingress()
    stack.wait_workers(2)
    mails = customer_mails(CRASH_MAILS, RCPT, seed=2)
    sender = Sender(stack.ingress_ports, RCPT, connections=2, rate=3)
    sender.send(mails)
    crashes, mid_job = 0, 0
    while crashes < 15:
        name = ("worker-ingest", "worker-flows")[crashes % 2]
        pid, deadline = procs.pid(name, timeout=90), time.monotonic() + 3
        while not children(pid) and time.monotonic() < deadline:  # wait for a job to run (its work horse)
            time.sleep(0.02)
        mid_job += bool(children(pid))
        procs.kill(name, with_work_horse=True)
        crashes += 1
        time.sleep(1)
    sender.join()
    last = time.monotonic()
    while True:
        left = _pending(stack)
        if not left["arrivals"] and not left["flow steps"]:
            break
        assert time.monotonic() - last < 120, f"still pending 2 minutes after the last crash: {left}"
        time.sleep(1)
    print(f"\nmachine crash: {len(mails)} mails, 15 crashes ({mid_job} mid-job); all routed "
          f"{time.monotonic() - last:.0f} s after the last one; left in RQ: {left}")
    assert mid_job >= 5  # the crashes hit jobs, not only idle workers
    _assert_every_accepted_mail_stored_once_and_routed(stack, set(sender.acknowledged))
