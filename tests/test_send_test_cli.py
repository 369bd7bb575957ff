"""`flask mail send-test`: the contract (lines, exit status) with a real `flask worker` on the send queue,
a real SMTP server (aiosmtpd) and the loopback DNS that the DKIM signature verifies against."""
from __future__ import annotations

import subprocess

import dkim
import pytest

from app.mail.dnscheck import Resolver
from app.models.send_tests import SendTest
from app.runtime.dkim import add_key, record_of, verify_key
from tests.dns_server import LoopbackDNS
from tests.factories import make_sending_address
from tests.servers import SMTPServer
from tests.subprocess_env import flask_cmd, flask_env


@pytest.fixture
def worker(app, tmp_path):
    """Start `flask worker send` (with the app's settings at that moment); stopped at the end."""
    procs = []

    def start():
        proc = subprocess.Popen(flask_cmd("worker", "send"), env=flask_env(app, tmp_path), start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _send_test(app, tmp_path, *args, timeout=90):
    return subprocess.run(flask_cmd("mail", "send-test", *args), env=flask_env(app, tmp_path), capture_output=True,
                          text=True, timeout=timeout)


def test_sent_signed_and_verified_exit_0(app, db, tmp_path, worker):
    dns = LoopbackDNS()
    relay = SMTPServer(tmp_path / "relay")
    app.config.update(SMTP_RELAY_URL=f"smtp://127.0.0.1:{relay.port}?tls=none", DNS_RESOLVER=dns.address)
    try:
        address = make_sending_address()
        key = add_key("mail.pigeonhole.test", "s1")
        dns.txt(record_of(key)["name"], record_of(key)["value"])
        verify_key(key)
        db.session.commit()
        worker()
        run = _send_test(app, tmp_path, "--from", address.address.upper(), "--to", "ops@example.org")
        assert run.returncode == 0, run.stderr
        lines = run.stdout.splitlines()
        assert lines[0] == "queued"
        assert lines[-1] == "sent: 250 2.0.0 OK queued; DKIM s1._domainkey.mail.pigeonhole.test"
        [got] = relay.messages
        assert got["rcpt_tos"] == ["ops@example.org"]
        assert dkim.verify(got["data"], dnsfunc=Resolver(dns.address, timeout=1).dkim_txt)
        assert db.session.query(SendTest).one().requested_by_id is None
    finally:
        relay.stop()
        dns.stop()


def test_a_refusing_server_prints_the_reason_and_exits_1(app, db, tmp_path, worker):
    relay = SMTPServer(tmp_path / "relay", script=["550 5.1.1 <ops@example.org>: Recipient address rejected"])
    app.config["SMTP_RELAY_URL"] = f"smtp://127.0.0.1:{relay.port}?tls=none"
    try:
        address = make_sending_address()
        worker()
        run = _send_test(app, tmp_path, "--from", address.address, "--to", "ops@example.org")
        assert run.returncode == 1, run.stdout + run.stderr
        assert run.stdout.splitlines()[-1].startswith("failed: ")
        assert "Recipient address rejected" in run.stdout.splitlines()[-1]
    finally:
        relay.stop()


def test_nothing_queued_for_bad_input_and_exit_2_without_a_worker(app, db, tmp_path):
    address = make_sending_address()
    unpublished = make_sending_address(publish=False)
    run = _send_test(app, tmp_path, "--from", "nobody@mail.pigeonhole.test", "--to", "ops@example.org")
    assert run.returncode == 1 and "is not an email address of this installation" in run.stderr
    run = _send_test(app, tmp_path, "--from", unpublished.address, "--to", "ops@example.org")
    assert run.returncode == 1 and "has not been published yet" in run.stderr
    run = _send_test(app, tmp_path, "--from", address.address, "--to", "a@example.org, b@example.org")
    assert run.returncode == 1 and "Enter one email address" in run.stderr
    assert db.session.query(SendTest).count() == 0

    # No worker runs: the test stays queued; the command says so after its timeout.
    run = _send_test(app, tmp_path, "--from", address.address, "--to", "ops@example.org", "--timeout", "1")
    assert run.returncode == 2 and run.stdout.splitlines() == ["queued"]
    assert "not final after 1 s: still queued" in run.stderr
    run = _send_test(app, tmp_path, "--from", address.address, "--to", "ops@example.org", "--timeout", "0")
    assert run.returncode == 0 and run.stdout.splitlines() == ["queued"]
    db.session.expire_all()
    assert [t.delivery_status for t in db.session.query(SendTest).order_by(SendTest.id)] == ["queued", "queued"]
