"""The ingress's bounds with a real SMTP client on loopback: session caps, idle timeout, spooled DATA, memory."""
from __future__ import annotations

import hashlib
import os
import smtplib
import stat
import subprocess
import time
from contextlib import ExitStack

import pytest
from sqlalchemy import select

from app.blobs import blob_store
from app.models.inbound import InboundRaw
from tests.mail.conftest import make_address, message
from tests.mail.test_ingress import DEMO, count, running
from tests.servers import free_port, wait_for_port
from tests.subprocess_env import ROOT, flask_cmd, flask_env

MB = 1024 * 1024


def wait_until(predicate, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def connect(controller, source="127.0.0.1"):
    return smtplib.SMTP(controller.hostname, controller.port, timeout=10, source_address=(source, 0))


def idle(controller):
    """No session is open (the controller's start-up probe and earlier clients are gone)."""
    wait_until(lambda: controller.sessions.total == 0, what="sessions to close")


def test_sessions_beyond_the_per_address_cap_get_421_and_other_addresses_still_connect(app, db):
    make_address(DEMO)
    app.config.update(INGRESS_MAX_SESSIONS_PER_IP=3, INGRESS_MAX_SESSIONS=10)
    with running(app) as controller, ExitStack() as open_sessions:
        idle(controller)
        for _ in range(3):
            assert open_sessions.enter_context(connect(controller)).noop()[0] == 250
        with pytest.raises(smtplib.SMTPConnectError) as refused:
            connect(controller)
        assert refused.value.smtp_code == 421
        assert b"Too many connections from your address" in refused.value.smtp_error
        with connect(controller, source="127.0.0.2") as other:  # another client is not affected
            assert other.sendmail("carla@example.com", [DEMO], message()) == {}
        wait_until(lambda: controller.sessions.per_ip == {"127.0.0.1": 3}, what="the other client's session to end")
        open_sessions.close()  # the three end: their places are free again
        idle(controller)
        with connect(controller) as again:
            assert again.sendmail("carla@example.com", [DEMO], message()) == {}
    assert count(db, InboundRaw) == 2


def test_sessions_beyond_the_global_cap_get_421(app, db):
    app.config.update(INGRESS_MAX_SESSIONS=2, INGRESS_MAX_SESSIONS_PER_IP=20)
    with running(app) as controller, ExitStack() as open_sessions:
        idle(controller)
        open_sessions.enter_context(connect(controller, "127.0.0.1"))
        open_sessions.enter_context(connect(controller, "127.0.0.2"))
        with pytest.raises(smtplib.SMTPConnectError) as refused:
            connect(controller, "127.0.0.3")
        assert refused.value.smtp_code == 421 and b"Too many connections;" in refused.value.smtp_error
        assert controller.sessions.total == 2  # a refused connection is not counted


def test_an_idle_session_is_closed_after_the_idle_timeout(app, db):
    app.config["INGRESS_IDLE_TIMEOUT_SECONDS"] = 1
    with running(app) as controller:
        idle(controller)
        smtp = connect(controller)
        smtp.ehlo()
        assert controller.sessions.total == 1
        time.sleep(2)
        with pytest.raises(smtplib.SMTPServerDisconnected):
            smtp.noop()
        smtp.close()
        wait_until(lambda: controller.sessions.total == 0, timeout=2, what="its place to be free")


def test_a_slow_message_that_keeps_moving_is_not_cut_off_by_the_idle_timeout(app, db):
    """Idle means nothing arrives: during DATA each arriving chunk restarts the clock."""
    make_address(DEMO)
    app.config["INGRESS_IDLE_TIMEOUT_SECONDS"] = 1
    raw = message(subject="Slow but steady", body="line\n" * 2000)
    with running(app) as controller, connect(controller) as smtp:
        smtp.ehlo()
        smtp.mail("carla@example.com")
        assert smtp.rcpt(DEMO)[0] == 250
        smtp.putcmd("data")
        assert smtp.getreply()[0] == 354
        pieces = [raw[i:i + len(raw) // 8] for i in range(0, len(raw), len(raw) // 8)]
        for piece in pieces:  # about 2.7 s in all, never 1 s without bytes
            smtp.send(piece)
            time.sleep(0.3)
        smtp.send(b"\r\n.\r\n" if not raw.endswith(b"\r\n") else b".\r\n")
        assert smtp.getreply()[0] == 250
    row = db.session.scalars(select(InboundRaw)).one()
    assert blob_store().get(row.raw_sha256).endswith(raw)


def spool_fds(pid, spool_dir):
    """The open files of process `pid` in the spool folder: {fd path: size}."""
    found = {}
    fd_dir = f"/proc/{pid}/fd"
    for name in os.listdir(fd_dir):
        path = os.path.join(fd_dir, name)
        try:
            if os.readlink(path).startswith(str(spool_dir) + "/"):
                found[path] = os.stat(path)
        except FileNotFoundError:
            continue
    return found


def start_data(smtp):
    smtp.ehlo()
    smtp.mail("carla@example.com")
    assert smtp.rcpt(DEMO)[0] == 250
    smtp.putcmd("data")
    assert smtp.getreply()[0] == 354


def big_body(size):
    """A message of about `size` bytes, with lines that begin with a dot (sent dot-stuffed)."""
    line = b"." + b"x" * 76 + b"\r\n"
    return b"From: carla@example.com\r\nSubject: big\r\n\r\n" + line * (size // len(line))


def stuffed(raw):
    return raw.replace(b"\r\n.", b"\r\n..")


def test_data_past_the_threshold_waits_in_a_private_spool_file_and_arrives_intact(app, db):
    make_address(DEMO)
    spool_dir = app.config["INGRESS_SPOOL_DIR"]
    app.config["INGRESS_SPOOL_THRESHOLD_BYTES"] = 64 * 1024
    raw = big_body(3 * MB)
    with running(app) as controller, connect(controller) as smtp:
        assert stat.S_IMODE(os.stat(spool_dir).st_mode) == 0o700
        start_data(smtp)
        wire = stuffed(raw)
        smtp.send(wire[: 2 * MB])
        wait_until(lambda: sum(s.st_size for s in spool_fds(os.getpid(), spool_dir).values()) > MB,
                   what="the message to be spooled")
        (spooled,) = spool_fds(os.getpid(), spool_dir).values()
        assert stat.S_IMODE(spooled.st_mode) == 0o600
        assert os.listdir(spool_dir) == []  # unnamed: nothing left behind if the ingress dies
        smtp.send(wire[2 * MB:] + b".\r\n")
        assert smtp.getreply()[0] == 250
        assert spool_fds(os.getpid(), spool_dir) == {}  # closed once the message is stored
    row = db.session.scalars(select(InboundRaw)).one()
    stored = blob_store().get(row.raw_sha256)
    assert stored.startswith(b"Received: ") and stored.endswith(raw)  # dots unstuffed, every byte there
    assert row.size == len(stored)


def test_a_small_message_stays_in_memory_and_is_stored_as_before(app, db):
    make_address(DEMO)
    app.config["INGRESS_SPOOL_THRESHOLD_BYTES"] = 64 * 1024
    raw = message(body=".leading dot\n..two dots\n.\n")
    with running(app) as controller, connect(controller) as smtp:
        assert smtp.sendmail("carla@example.com", [DEMO], raw) == {}
    row = db.session.scalars(select(InboundRaw)).one()
    assert blob_store().get(row.raw_sha256).endswith(raw)


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def open_session(stack, port):
    """A client session closed (not QUIT: the unfinished ones are still in DATA) when `stack` ends."""
    smtp = smtplib.SMTP("127.0.0.1", port, timeout=30)
    stack.callback(smtp.close)
    return smtp


def test_unfinished_large_messages_do_not_grow_the_ingress_memory(app, db, tmp_path):
    """The issue's probe, smaller: 8 sessions each send 16 MB and never finish. Held in memory that is
    128 MB more; spooled, the ingress grows by little more than its stream buffers."""
    make_address(DEMO)
    port = free_port()
    env = flask_env(app, tmp_path) | {"INGRESS_SPOOL_THRESHOLD_BYTES": str(MB)}
    spool_dir = tmp_path / "instance" / "spool"
    proc = subprocess.Popen(flask_cmd("ingress", "--port", str(port)), env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, timeout=30)
        body = stuffed(big_body(16 * MB))
        with ExitStack() as sessions:
            first = open_session(sessions, port)
            start_data(first)  # one message through first: the writer thread and imports are warm
            first.send(stuffed(big_body(2 * MB)) + b".\r\n")
            assert first.getreply()[0] == 250
            before = rss_bytes(proc.pid)
            for _ in range(8):
                smtp = open_session(sessions, port)
                start_data(smtp)
                smtp.send(body)
            wait_until(lambda: sum(s.st_size for s in spool_fds(proc.pid, spool_dir).values()) >= 8 * 15 * MB,
                       timeout=60, what="all 128 MB to be spooled")
            growth = rss_bytes(proc.pid) - before
            assert growth < 48 * MB, f"the ingress grew by {growth / MB:.0f} MB for 128 MB of unfinished mail"
            smtp.send(b".\r\n")  # the last one finishes: delivered whole
            assert smtp.getreply()[0] == 250
        row = db.session.scalars(select(InboundRaw).order_by(InboundRaw.id.desc())).first()
        stored = blob_store().get(row.raw_sha256)
        assert hashlib.sha256(stored[stored.index(b"From: carla"):]).digest() == \
            hashlib.sha256(big_body(16 * MB)).digest()
    finally:
        proc.terminate()
        proc.wait(10)
