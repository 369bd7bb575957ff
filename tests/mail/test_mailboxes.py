"""IMAP and POP3 polling against a real Dovecot: exactly once, whatever happens, and hands off the customer's mail."""
from __future__ import annotations

import glob
import os
import signal
import subprocess
import time
from datetime import datetime, timedelta, timezone

import pytest
from imapclient import IMAPClient
from sqlalchemy import func, select

from app.runtime.poll import poll_address, schedule_due_polls
from app.models.channels import MailboxState
from app.models.inbound import InboundRaw
from app.models.inbox import Conversation, Message
from app.queues import enqueue, get_queue
from tests.mail.conftest import make_address, message
from tests.subprocess_env import ROOT, flask_cmd, flask_env


def imap_address(dovecot, login, password, protocol="imap", **fields):
    port = dovecot.ports["imaps" if protocol == "imap" else "pop3s"]
    return make_address(login, "custom", usage="inbound", username=login, password=password,
                        incoming_protocol=protocol, incoming_host="127.0.0.1", incoming_port=port,
                        incoming_security="ssl", **fields)


def append(dovecot, login, password, raws, when=None, flags=()):
    """APPEND in one IMAP session (MULTIAPPEND, 500 messages a command)."""
    raws = list(raws)
    with IMAPClient("127.0.0.1", port=dovecot.imap_port, ssl=False, timeout=120) as imap:
        imap.login(login, password)
        for start in range(0, len(raws), 500):
            imap.multiappend("INBOX", [{"msg": raw, "flags": flags, "date": when} if when else
                                       {"msg": raw, "flags": flags} for raw in raws[start:start + 500]])


def snapshot(dovecot, login, password) -> dict:
    """UID -> flags of the customer's INBOX (read-only look)."""
    with IMAPClient("127.0.0.1", port=dovecot.imap_port, ssl=False) as imap:
        imap.login(login, password)
        imap.select_folder("INBOX", readonly=True)
        uids = imap.search(["ALL"])
        return {uid: sorted(d[b"FLAGS"]) for uid, d in imap.fetch(uids, ["FLAGS"]).items()} if uids else {}


def kill_worker_and_horse(pid: int) -> None:
    """kill -9 an RQ worker and its work horse (the horse calls setsid(): it has its own process group)."""
    children = []
    for task in glob.glob(f"/proc/{pid}/task/*/children"):
        with open(task) as fh:
            children += [int(c) for c in fh.read().split()]
    for child in children:
        os.kill(child, signal.SIGKILL)
    os.killpg(pid, signal.SIGKILL)
    for child in children:
        deadline = time.monotonic() + 10
        while os.path.exists(f"/proc/{child}") and time.monotonic() < deadline:
            time.sleep(0.01)


def messages_of(db, address_id) -> list[Message]:
    db.session.expire_all()
    return list(db.session.scalars(select(Message).where(Message.address_id == address_id)))


@pytest.fixture
def recent(tls_app):
    tls_app.config["MAILBOX_BACKFILL"] = "7"
    return tls_app


def test_imap_new_mail_becomes_conversations_once_and_the_mailbox_is_untouched(recent, db, dovecot, mailbox_user):
    login, password = mailbox_user
    address = imap_address(dovecot, login, password)
    append(dovecot, login, password, [message(to=login, subject=f"Question {i}") for i in range(3)])
    append(dovecot, login, password, [message(to=login, subject="Already read")], flags=[b"\\Seen"])
    before = snapshot(dovecot, login, password)

    first = poll_address(address.id)
    assert first.error is None and first.statuses == {"created": 4}
    assert sorted(m.subject for m in messages_of(db, address.id)) == [
        "Already read", "Question 0", "Question 1", "Question 2"]
    assert poll_address(address.id).fetched == 0  # re-polling adds nothing
    append(dovecot, login, password, [message(to=login, subject="Re: Question 1")])
    third = poll_address(address.id)
    assert third.statuses == {"threaded": 1}
    assert len(messages_of(db, address.id)) == 5
    state = db.session.scalars(select(MailboxState).where(MailboxState.address_id == address.id)).one()
    assert state.last_success_at and state.last_error is None and state.uidvalidity and state.last_uid == 5
    after = snapshot(dovecot, login, password)
    assert {uid: flags for uid, flags in after.items() if uid in before} == before  # same UIDs, same flags
    assert all(b"\\Seen" not in flags for uid, flags in after.items() if uid != 4)


def test_first_connection_backfills_only_the_window_of_a_5000_message_mailbox(recent, db, dovecot, mailbox_user):
    login, password = mailbox_user
    old = datetime.now(timezone.utc) - timedelta(days=60)
    append(dovecot, login, password, [message(to=login, subject=f"Old {i}", date=old) for i in range(5000)], when=old)
    append(dovecot, login, password, [message(to=login, subject=f"New {i}") for i in range(3)])
    address = imap_address(dovecot, login, password)
    result = poll_address(address.id)
    assert result.error is None and result.fetched == 3 and result.skipped_by_backfill == 5000
    assert sorted(m.subject for m in messages_of(db, address.id)) == ["New 0", "New 1", "New 2"]
    state = db.session.scalars(select(MailboxState).where(MailboxState.address_id == address.id)).one()
    assert state.last_uid == 5003 and state.sync_since is not None


def test_since_publish_backfill(tls_app, db, dovecot, mailbox_user):
    from app.models.channels import EmailAddress

    login, password = mailbox_user
    now = datetime.now(timezone.utc)
    append(dovecot, login, password, [message(to=login, subject="Before")], when=now - timedelta(hours=2))
    append(dovecot, login, password, [message(to=login, subject="After")], when=now)
    address = imap_address(dovecot, login, password)
    db.session.get(EmailAddress, address.id).published_at = now - timedelta(hours=1)
    db.session.commit()
    assert tls_app.config["MAILBOX_BACKFILL"] == "publish"
    result = poll_address(address.id)
    assert [m.subject for m in messages_of(db, address.id)] == ["After"] and result.skipped_by_backfill == 1


def test_uidvalidity_change_resyncs_without_duplicates(recent, db, dovecot, mailbox_user):
    login, password = mailbox_user
    address = imap_address(dovecot, login, password)
    append(dovecot, login, password, [message(to=login, subject=f"M{i}") for i in range(3)] +
           [message(to=login, subject="No id", msgid=None)])
    assert poll_address(address.id).statuses == {"created": 4}
    old_validity = db.session.scalars(select(MailboxState.uidvalidity)).one()
    time.sleep(1.1)  # Dovecot derives UIDVALIDITY from the clock
    maildir = dovecot.base / "home" / login / "Maildir"
    for path in glob.glob(str(maildir / "dovecot*")):
        os.remove(path)
    append(dovecot, login, password, [message(to=login, subject="After the change")])
    result = poll_address(address.id)
    assert result.resynced and result.error is None
    assert result.statuses == {"duplicate": 4, "created": 1}
    assert len(messages_of(db, address.id)) == 5
    assert db.session.scalars(select(MailboxState.uidvalidity)).one() != old_validity


def test_killing_the_worker_mid_batch_then_polling_again_stores_every_message_exactly_once(
        recent, db, dovecot, mailbox_user, tmp_path):
    login, password = mailbox_user
    total = 1500
    append(dovecot, login, password, [message(to=login, subject=f"Bulk {i}",
                                              body=f"Message number {i}\n" + "text " * 400) for i in range(total)])
    address = imap_address(dovecot, login, password)
    env = flask_env(recent, tmp_path)
    env.update(MAIL_TLS_CA_FILE=str(dovecot.cert), MAILBOX_BACKFILL="7", POLL_BATCH_SIZE="100",
               POLL_LOCK_SECONDS="2")
    enqueue("poll", "jobs.poll.poll_mailbox", address.id, job_id=f"poll-mailbox-{address.id}")
    with (tmp_path / "worker.log").open("wb") as log:
        worker = subprocess.Popen(flask_cmd("worker", "poll", "--burst", "--without-scheduler"), env=env,
                                  cwd=ROOT, stdout=log, stderr=log, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        stored = 0
        while time.monotonic() < deadline and stored == 0:
            time.sleep(0.02)
            stored = db.session.scalar(select(func.count()).select_from(Message)
                                       .where(Message.address_id == address.id))
            db.session.rollback()
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()
        kill_worker_and_horse(worker.pid)  # mid-batch
        worker.wait(10)
    finally:
        if worker.poll() is None:
            kill_worker_and_horse(worker.pid)
    at_kill = len(messages_of(db, address.id))
    assert 0 < at_kill < total and at_kill % 100 == 0  # only whole batches were committed
    time.sleep(2.2)  # the dead poller's lock expires
    result = poll_address(address.id)
    assert result.error is None and result.locked is False
    stored = messages_of(db, address.id)
    assert len(stored) == total and len({m.message_id for m in stored}) == total
    assert sorted(int(m.subject.split()[1]) for m in stored) == list(range(total))
    assert poll_address(address.id).fetched == 0


def test_a_failing_mailbox_records_its_error_backs_off_and_does_not_stop_the_others(recent, db, dovecot,
                                                                                     mailbox_user):
    login, password = mailbox_user
    good = imap_address(dovecot, login, password)
    bad = imap_address(dovecot, "nobody@acme.test", "wrong-password")
    append(dovecot, login, password, [message(to=login)])
    assert sorted(schedule_due_polls()) == sorted([good.id, bad.id])
    assert schedule_due_polls() == []  # already queued: never twice
    failed = poll_address(bad.id)
    assert failed.error and "wrong-password" not in failed.error
    ok = poll_address(good.id)
    assert ok.statuses == {"created": 1}
    states = {s.address_id: s for s in db.session.scalars(select(MailboxState))}
    assert states[bad.id].error_count == 1 and states[bad.id].last_error == failed.error
    assert states[bad.id].next_poll_at > datetime.now(timezone.utc) + timedelta(seconds=30)
    assert states[good.id].last_success_at and states[good.id].last_error is None
    get_queue("poll").empty()
    assert schedule_due_polls() == []  # both polled just now: not due


def test_a_mailbox_is_never_polled_twice_at_once(recent, db, dovecot, mailbox_user):
    from app.runtime.poll import poll_lock_name
    from app.queues import redis_connection

    login, password = mailbox_user
    address = imap_address(dovecot, login, password)
    lock = redis_connection().lock(poll_lock_name(address.id), timeout=30)
    assert lock.acquire(blocking=False)
    try:
        result = poll_address(address.id)
        assert result.locked and result.fetched == 0
    finally:
        lock.release()
    assert poll_address(address.id).locked is False


def test_pop3_new_mail_once_never_deleted_and_backfill_by_date(recent, db, dovecot, mailbox_user):
    login, password = mailbox_user
    old = datetime.now(timezone.utc) - timedelta(days=40)
    append(dovecot, login, password, [message(to=login, subject="Ancient", date=old)])
    append(dovecot, login, password, [message(to=login, subject=f"Pop {i}") for i in range(2)])
    address = imap_address(dovecot, login, password, protocol="pop3")
    first = poll_address(address.id)
    assert first.error is None and first.statuses == {"created": 2} and first.skipped_by_backfill == 1
    assert poll_address(address.id).fetched == 0
    append(dovecot, login, password, [message(to=login, subject="Re: Pop 1")])
    assert poll_address(address.id).statuses == {"threaded": 1}
    assert len(messages_of(db, address.id)) == 3
    assert len(snapshot(dovecot, login, password)) == 4  # nothing deleted
    state = db.session.scalars(select(MailboxState).where(MailboxState.address_id == address.id)).one()
    assert len(state.seen_uidls) == 4 and state.last_success_at


def test_opt_in_mark_as_seen(recent, db, dovecot, mailbox_user):
    login, password = mailbox_user
    recent.config["MAILBOX_AFTER_FETCH"] = "seen"
    address = imap_address(dovecot, login, password)
    append(dovecot, login, password, [message(to=login)])
    poll_address(address.id)
    assert all(b"\\Seen" in flags for flags in snapshot(dovecot, login, password).values())


def test_oversized_mail_in_a_mailbox_is_stored_with_an_error_not_downloaded(recent, db, dovecot, mailbox_user):
    login, password = mailbox_user
    recent.config["INBOUND_MAX_MESSAGE_SIZE"] = 20_000
    address = imap_address(dovecot, login, password)
    append(dovecot, login, password, [message(to=login, subject="Huge", body="x" * 50_000)])
    result = poll_address(address.id)
    assert result.statuses == {"stored_with_error": 1}
    row = db.session.scalars(select(InboundRaw)).one()
    assert "over the 20000 byte limit" in row.error and row.size < 20_000
    assert db.session.scalar(select(func.count()).select_from(Conversation)) == 0


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_each_poll_batch_hands_its_freed_memory_back(recent, db, dovecot, mailbox_user, monkeypatch, protocol):
    """The heap a batch freed goes back to the system after its commit, so a long poll stays flat in memory."""
    from app.runtime import imap as imap_poller, pop3 as pop3_poller

    login, password = mailbox_user
    append(dovecot, login, password, [message(to=login, subject=f"Batch {i}") for i in range(5)])
    address = imap_address(dovecot, login, password, protocol=protocol)
    recent.config["POLL_BATCH_SIZE"] = 2
    released = []

    def release():
        released.append(db.session.scalar(select(func.count()).select_from(Message)))  # after the batch's commit
        return True

    monkeypatch.setattr(imap_poller if protocol == "imap" else pop3_poller, "release_batch_memory", release)
    assert poll_address(address.id).statuses == {"created": 5}
    assert released == [2, 4, 5]
