"""The send queue with real `flask worker` processes: connection reuse, and a worker killed mid-send."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from datetime import datetime, timezone

import pytest

from app.runtime.outbound import enqueue_due_messages, enqueue_send, send_reply
from app.models.inbox import Message
from app.queues import get_queue
from tests.factories import make_sending_address, make_sending_conversation
from tests.servers import SilentServer, SMTPServer
from tests.subprocess_env import flask_cmd, flask_env


def _env(app, tmp_path, **extra) -> dict:
    env = flask_env(app, tmp_path)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def _queue_replies(app, db, address, n: int, as_sends: bool = False) -> list[int]:
    """N replies, enqueued one by one (as the sweep does) or `as_sends` (as the workspace's Send does)."""
    ids = []
    for _ in range(n):
        message = send_reply(make_sending_conversation(address).id, None, "<p>It ships today.</p>")
        db.session.commit()
        ids.append(message.id)
    for message_id in ids:
        enqueue_send(message_id, address_id=address.id if as_sends else None)
    return ids


def _state(db, message_id) -> Message:
    db.session.expire_all()
    message = db.session.get(Message, message_id)
    db.session.rollback()
    return message


@pytest.mark.parametrize("as_sends", [False, True], ids=["a-job-each", "sends"])
def test_a_real_worker_sends_the_queue_over_one_connection(app, db, tmp_path, as_sends):
    server = SMTPServer(tmp_path / "relay")
    relay = f"smtp://127.0.0.1:{server.port}?tls=none"
    app.config["SMTP_RELAY_URL"] = relay
    try:
        ids = _queue_replies(app, db, make_sending_address(), 4, as_sends=as_sends)
        # A burst of Sends waits for one job; enqueued one by one, each has its own.
        assert get_queue("send").count == (1 if as_sends else 4)
        run = subprocess.run(flask_cmd("worker", "send", "--burst"), env=_env(app, tmp_path, SMTP_RELAY_URL=relay),
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        assert [_state(db, i).delivery_status for i in ids] == ["sent"] * 4
        assert len(server.messages) == 4 and len({m["peer"] for m in server.messages}) == 1
        assert get_queue("send").count == 0
        assert "'sent': 4" in run.stderr  # one job did the work, the others were taken off the queue
    finally:
        server.stop()


def test_a_worker_killed_between_claim_and_send_is_sent_exactly_once_after_the_lease(app, db, tmp_path):
    """Kill -9 a real worker while it holds the claim and waits for the server; the lease decides what happens."""
    silent = SilentServer()  # accepts the connection and never greets: the worker hangs after its claim
    server = SMTPServer(tmp_path / "relay")
    lease = 4
    app.config.update(SMTP_RELAY_URL=f"smtp://127.0.0.1:{silent.port}?tls=none", SEND_LEASE_SECONDS=lease)
    proc = None
    try:
        [message_id] = _queue_replies(app, db, make_sending_address(), 1)
        env = _env(app, tmp_path, SMTP_RELAY_URL=f"smtp://127.0.0.1:{silent.port}?tls=none",
                   SEND_LEASE_SECONDS=lease, SMTP_TIMEOUT_SECONDS=60)
        proc = subprocess.Popen(flask_cmd("worker", "send"), env=env, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not (silent.conns and _state(db, message_id).delivery_status == "sending"):
            assert proc.poll() is None and time.monotonic() < deadline, "the worker never claimed the message"
            time.sleep(0.05)
        _kill_worker_and_horse(proc)  # the worker and its work horse, for real

        held = _state(db, message_id)
        assert held.delivery_status == "sending" and held.delivery_attempts == 1
        assert held.claimed_until > datetime.now(timezone.utc)
        assert enqueue_due_messages() == 0  # the lease still holds: nobody may send it yet

        wait = (held.claimed_until - datetime.now(timezone.utc)).total_seconds()
        time.sleep(max(0.0, wait) + 0.2)
        assert enqueue_due_messages() == 1  # the dead worker's job is replaced
        relay = f"smtp://127.0.0.1:{server.port}?tls=none"
        run = subprocess.run(flask_cmd("worker", "send", "--burst"),
                             env=_env(app, tmp_path, SMTP_RELAY_URL=relay, SEND_LEASE_SECONDS=lease),
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        done = _state(db, message_id)
        assert (done.delivery_status, done.delivery_attempts, done.claim_token) == ("sent", 2, None)
        assert len(server.messages) == 1
        assert enqueue_due_messages() == 0
    finally:
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
        silent.stop()
        server.stop()



def test_a_worker_killed_while_a_slow_relay_holds_the_250_counts_attempts_honestly_and_notes_the_duplicate(
        app, db, tmp_path):
    """Fault 5: a relay that answers 1.5 s after it stored the data; the worker and its horse are killed
    in that window. The reply goes out again (SMTP leaves no way to know), once more only, its trail
    says it may have arrived twice, and the batch's other replies, claimed but never tried, count no attempt."""
    import asyncio

    from aiosmtpd.controller import Controller

    from app.models.organize import ConversationEvent
    from tests.servers import free_port

    stored: list[bytes] = []

    class SlowRelay:
        async def handle_DATA(self, server, session, envelope):
            stored.append(envelope.content)
            await asyncio.sleep(1.5)
            return "250 2.0.0 OK"

    port = free_port()
    controller = Controller(SlowRelay(), hostname="127.0.0.1", port=port)
    controller.start()
    relay, lease = f"smtp://127.0.0.1:{port}?tls=none", 20
    app.config.update(SMTP_RELAY_URL=relay, SEND_LEASE_SECONDS=lease)
    proc = None
    try:
        ids = _queue_replies(app, db, make_sending_address(), 3, as_sends=True)  # one job claims all three
        env = _env(app, tmp_path, SMTP_RELAY_URL=relay, SEND_LEASE_SECONDS=lease)
        proc = subprocess.Popen(flask_cmd("worker", "send"), env=env, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not stored:
            assert proc.poll() is None and time.monotonic() < deadline, "the worker never sent"
            time.sleep(0.02)
        _kill_worker_and_horse(proc)  # the relay has the data; its 250 never reaches us

        held = [_state(db, i) for i in ids]
        assert [m.delivery_status for m in held] == ["sending"] * 3
        assert [m.delivery_attempts for m in held] == [1, 0, 0]  # claims are not attempts

        with db.engine.begin() as conn:  # the lease runs out (as it would after SEND_LEASE_SECONDS)
            conn.execute(Message.__table__.update().where(Message.__table__.c.id.in_(ids))
                         .values(claimed_until=datetime(2000, 1, 1, tzinfo=timezone.utc)))
        assert enqueue_due_messages() >= 1
        run = subprocess.run(flask_cmd("worker", "send", "--burst"), env=env,
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        done = [_state(db, i) for i in ids]
        assert [m.delivery_status for m in done] == ["sent"] * 3
        assert [m.delivery_attempts for m in done] == [2, 1, 1]
        assert len(stored) == 4  # the first one twice: the one window SMTP leaves
        notes = db.session.query(ConversationEvent).filter(ConversationEvent.data["possible_duplicate"].isnot(None)).all()
        assert [(n.conversation_id, n.data["message_id"]) for n in notes] == [(done[0].conversation_id, ids[0])]
        assert "may reach its recipients twice" in notes[0].text
    finally:
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
        controller.stop()


def _descendants(pid: int) -> list[int]:
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _kill_worker_and_horse(proc: subprocess.Popen) -> None:
    """SIGKILL a `flask worker` and its work horse, as a machine crash would. RQ's horse runs in a process
    group of its own (`os.setpgrp`), so killing the worker's group alone leaves the horse sending."""
    for pid in [proc.pid, *_descendants(proc.pid)]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(30)
