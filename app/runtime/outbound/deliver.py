"""Deliver: the send job. It claims its message and the others due for the same server, sends them.

One SMTP connection, batch after batch while half the job's timeout lasts, then a moment
of lingering for new Sends; what is still due then gets a new job (`dispatch`). The claim
and each outcome are written by `claims`, committed as the job goes.
"""
from __future__ import annotations

import logging
import secrets
import time
from contextlib import contextmanager
from datetime import datetime
from email.utils import getaddresses

from dkim import DKIMException
from flask import current_app
from sqlalchemy import bindparam, case, func, or_, select

from app.crypto import SecretUnreadable
from app.extensions import db
from app.logs import log_context
from app.mail.dkim import sign
from app.mail.smtp import DeliveryError, SMTPSession, SMTPSettings
from app.models._types import utcnow
from app.models.inbox import Message, OutgoingMime
from app.runtime.outbound.claims import begin_attempt, claim, finish, record_failure, record_sent, release
from app.runtime.outbound.compose import outgoing_bytes
from app.runtime.outbound.dispatch import clear_waiting, drop_jobs, enqueue_send, job_timeout
from app.runtime.outbound.sent_folder import enqueue_sent_copy, wants_sent_copy
from app.runtime.outbound.senders import CannotSend, sending_address, transport_settings
from app.runtime.outbound.states import FAILED, RETRYING, SENT, claimable
from app.runtime.dkim import signing_key
from app.runtime.tls import configured_context
from app.transactions import on_commit, outside_transaction

log = logging.getLogger(__name__)


@contextmanager
def _commits_without_waiting_for_disk():
    """The send job's commits return once the database has the change, before the disk has it.

    Sets `db.session.info["commit_without_fsync"]`, which `app.extensions` turns into
    `synchronous=NORMAL` (SQLite in WAL mode: a commit is a write to the log, no fsync) or
    `SET LOCAL synchronous_commit = off` (PostgreSQL) for each transaction of this session.
    A crashed *worker* loses nothing (the database has every committed row); only a crash
    of the database machine itself (power loss) can forget the last moment of claims and
    outcomes, and those messages are then sent again once their lease expires: the same
    kind of window the 250-then-crash case already leaves. In exchange a commit does not
    wait for an fsync, and on SQLite the worker holds the write lock only for the write
    itself, so agents' Sends do not queue behind it.
    """
    db.session.info["commit_without_fsync"] = True
    try:
        yield
        db.session.commit()  # end the job's last transaction: the connection goes back to the pool at FULL
    except BaseException:
        db.session.rollback()
        raise
    finally:
        db.session.info.pop("commit_without_fsync", None)


def deliver_message(message_id: int) -> dict:
    """The send job: claim this message (and others due for the same server), send, record.

    Commits as it goes (the claim before any network I/O, each outcome right after the
    server's reply; see `_commits_without_waiting_for_disk`); never raises for delivery
    problems, which are recorded on the message. Returns counts, for the job's log:
    claimed, sent, retrying, failed.
    """
    with _commits_without_waiting_for_disk(), log_context(message_id=message_id):
        return _deliver(message_id)


def _deliver(message_id: int) -> dict:
    cfg = current_app.config
    row = db.session.execute(select(Message.address_id, Message.direction).where(Message.id == message_id)).first()
    if row is None or row.direction != "out":
        db.session.rollback()
        return {"claimed": 0}
    # From here on this job finds every due message of its server (see `enqueue_send`).
    clear_waiting([row.address_id])
    try:
        settings = transport_settings(sending_address(row.address_id))
    except CannotSend as exc:
        return _fail_unsendable(message_id, str(exc))
    db.session.rollback()

    token = secrets.token_hex(16)
    cache: dict = {}
    batch_size = max(1, cfg["SEND_BATCH_SIZE"])
    budget = time.monotonic() + job_timeout() / 2  # start no message after this
    started = utcnow()
    # Its own message first, if nobody else holds it; then the others due for this server.
    batch = claim([message_id], token)
    batch += _claim_due(settings, started, batch_size - len(batch), cache, token)
    if not batch:
        return {"claimed": 0}
    counts = {"claimed": len(batch), SENT: 0, RETRYING: 0, FAILED: 0}
    session = smtp_session(settings)
    released: list[int] = []
    stop = False
    with session:
        while batch:
            stop, released = _send_batch(session, batch, token, counts, cache, budget)
            if stop or time.monotonic() > budget:
                break
            batch = _next_batch(settings, started, batch_size, cache, token, budget)
            counts["claimed"] += len(batch)
    for other in released:  # out of time: their jobs were dropped, give them new ones
        on_commit(enqueue_send, other)
    if not stop and not released and batch:
        # Out of time after a full batch: hand what is still due to a new job.
        rest = _due_same_server(settings, started, 1, cache)
        db.session.rollback()
        if rest:
            outside_transaction(enqueue_send, rest[0][0])
    counts["connections"] = session.connections
    log.info("send job for message %s via %s: %s", message_id, settings.describe(), counts)
    return counts


def smtp_session(settings: SMTPSettings) -> SMTPSession:
    """The SMTP session of a send job (TLS context, timeout and HELO name from the settings); use it with `with`."""
    cfg = current_app.config
    return SMTPSession(settings, context=configured_context(settings.ca_pem) if settings.security != "none" else None,
                       timeout=cfg["SMTP_TIMEOUT_SECONDS"],
                       helo_name=cfg.get("SMTP_HELO_NAME") or cfg["PLATFORM_MAIL_DOMAIN"])


#: Messages up to this size come with the batch's one query; bigger ones are read one at a time,
#: so a batch never holds more than SEND_BATCH_SIZE x this in memory.
BATCH_BYTES_INLINE = 256 * 1024
_BATCH = (select(Message.id, Message.address_id, Message.to_addrs, Message.cc_addrs, Message.bcc_addrs,
                 Message.raw_sha256, Message.delivery_attempts,
                 case((func.length(OutgoingMime.data) <= bindparam("inline"), OutgoingMime.data)).label("data"))
          .outerjoin(OutgoingMime, OutgoingMime.message_id == Message.id)
          .where(Message.id.in_(bindparam("ids", expanding=True))))


#: How often a lingering send job looks for new due messages.
LINGER_POLL_SECONDS = 0.02


def _next_batch(settings: SMTPSettings, started: datetime, batch_size: int, cache: dict, token: str,
                budget: float) -> list[int]:
    """Claim the next due messages for this server; when none are due, wait for some a moment.

    A job that just sent keeps its connection (and its worker) for `SEND_LINGER_SECONDS`,
    looking every `LINGER_POLL_SECONDS`: messages that agents send meanwhile go out at once
    over it, without a new job or connection. (Like an MTA's connection cache.)
    """
    batch = _claim_due(settings, started, batch_size, cache, token)
    until = min(budget, time.monotonic() + current_app.config["SEND_LINGER_SECONDS"])
    while not batch and time.monotonic() + LINGER_POLL_SECONDS < until:
        db.session.rollback()  # no transaction held while waiting
        time.sleep(LINGER_POLL_SECONDS)
        batch = _claim_due(settings, started, batch_size, cache, token)
    return batch


def _claim_due(settings: SMTPSettings, started: datetime, room: int, cache: dict, token: str) -> list[int]:
    """Take over up to `room` due messages for this server.

    When more are due than fit, the first one left gets a job: another idle worker can
    start on the backlog at once (with one worker, this job takes that message over
    later and drops the job again).
    """
    due = _due_same_server(settings, started, room + 1, cache)  # one more than fits: is there more?
    batch = _take_over(due[:room], token)
    if len(due) > room:
        on_commit(enqueue_send, due[room][0])  # committed rows; at once unless a read is still open
    return batch


def _send_batch(session: SMTPSession, batch: list[int], token: str, counts: dict, cache: dict,
                budget: float) -> tuple[bool, list[int]]:
    """Send claimed messages one by one, committing each outcome.

    Returns (stop, released): stop when the server could not be reached or the time
    budget ran out; released are the claimed messages given back untried (out of time).
    No message is started after `budget`, so each one started has at least half the
    job's timeout to finish before RQ would kill the job.
    """
    rows = {r.id: r for r in db.session.execute(_BATCH, {"ids": batch, "inline": BATCH_BYTES_INLINE}).all()}
    db.session.rollback()
    for position, message_id in enumerate(batch):
        if time.monotonic() > budget:
            rest = batch[position:]
            release(rest, token)
            return True, rest
        row = rows[message_id]
        if row.delivery_attempts >= current_app.config["SEND_MAX_ATTEMPTS"]:
            # Attempted again and again without an outcome: its worker keeps dying while sending it.
            finish(message_id, token, delivery_status=FAILED, next_attempt_at=None, delivery_error=(
                f"Gave up after {row.delivery_attempts} attempts: the worker sending it stopped each time "
                "(see the worker log)."))
            db.session.commit()
            counts[FAILED] += 1
            continue
        sender = _sender_address(row.address_id, cache)
        recipients = _envelope(row)
        data = bytes(row.data) if row.data is not None else outgoing_bytes(message_id, row.raw_sha256)
        db.session.rollback()  # no transaction open while we talk to the server
        if data is None:
            finish(message_id, token, delivery_status=FAILED, next_attempt_at=None,
                   delivery_error="The rendered message is missing; write it again.")
            db.session.commit()
            counts[FAILED] += 1
            continue
        signature, data = dkim_signed(data, sender, cache)
        if not begin_attempt(message_id, token):
            continue  # our lease ran out and another job holds it now
        try:
            result = session.send(sender, recipients, data)
        except DeliveryError as error:
            counts[record_failure(message_id, token, row.delivery_attempts + 1, error)] += 1
            if error.session:
                # The server is unreachable or refuses us: the same answer holds for the rest of the batch.
                for other in batch[position + 1:]:
                    counts[record_failure(other, token, rows[other].delivery_attempts + 1, error)] += 1
                db.session.commit()
                log.info("message %s: %s", message_id, error)
                return True, []
            db.session.commit()
            log.info("message %s: %s", message_id, error)
            continue
        record_sent(message_id, token, result, dkim_signature=signature)
        db.session.commit()
        counts[SENT] += 1
        if _wants_sent_copy(row.address_id, cache):
            enqueue_sent_copy(message_id)
    return False, []


def _due_same_server(settings: SMTPSettings, since: datetime, limit: int, cache: dict) -> list[tuple[int, int]]:
    """(id, address id) of other due messages that go through the same server with the same login.

    Messages this job already tried (an attempt recorded at or after `since`, its start)
    are left out, so a retry that is due at once is not tried again by the same job.
    """
    now = utcnow()
    rows = db.session.execute(
        select(Message.id, Message.address_id).where(
            Message.direction == "out", claimable(now),
            or_(Message.last_attempt_at.is_(None), Message.last_attempt_at < since))
        .order_by(Message.next_attempt_at, Message.id).limit(limit * 4)).all()
    out = []
    for message_id, address_id in rows:
        if _settings_for(address_id, cache) == settings:
            out.append((message_id, address_id))
            if len(out) >= limit:
                break
    return out


def _wants_sent_copy(address_id: int, cache: dict) -> bool:
    """Whether the address keeps copies of what it sends in its mailbox's Sent folder (asked once per job)."""
    key = ("sent-copy", address_id)
    if key not in cache:
        cache[key] = wants_sent_copy(sending_address(address_id))
    return cache[key]


def _settings_for(address_id: int | None, cache: dict) -> SMTPSettings | None:
    if address_id not in cache:
        try:
            cache[address_id] = transport_settings(sending_address(address_id))
        except CannotSend:
            cache[address_id] = None
    return cache[address_id]


def _take_over(due: list[tuple[int, int]], token: str) -> list[int]:
    """Claim these due messages; their queued jobs leave the queue and their addresses' waiting marks go.

    The caller looks for due messages again after this (or ends by handing over), which
    is what allows removing the marks: a Send that saw one committed before it did.
    """
    claimed = claim([message_id for message_id, _ in due], token)
    if claimed:
        got = set(claimed)
        drop_jobs(claimed, [address_id for message_id, address_id in due if message_id in got])
    return claimed


def _fail_unsendable(message_id: int, reason: str) -> dict:
    token = secrets.token_hex(16)
    if not claim([message_id], token):
        return {"claimed": 0}
    finish(message_id, token, delivery_status=FAILED, next_attempt_at=None, delivery_error=reason)
    db.session.commit()
    log.info("message %s failed: %s", message_id, reason)
    return {"claimed": 1, "failed": 1}


def dkim_signed(data: bytes, sender: str, cache: dict) -> tuple[str | None, bytes]:
    """(the DKIM-Signature header, the bytes to send): signed with the active key of the From domain, if any.

    The last step before SMTP, so the signed bytes are the sent bytes (a retry signs again,
    with a new timestamp). A key that cannot be used is logged and the message goes out
    unsigned: unsigned mail may land in spam, but mail that never leaves is lost.
    """
    domain = sender.rpartition("@")[2].lower()
    key = ("dkim", domain)
    if key not in cache:
        try:
            cache[key] = signing_key(domain)
        except SecretUnreadable as exc:
            log.error("DKIM key of %s cannot be read (%s): sending unsigned", domain, exc)
            cache[key] = None
        db.session.rollback()
    signer = cache[key]
    if signer is None:
        return None, data
    try:
        signed = sign(data, signer.selector, signer.domain, signer.pem)
    except DKIMException as exc:
        log.error("DKIM signing with %s._domainkey.%s failed (%s): sending unsigned", signer.selector, domain, exc)
        return None, data
    return signed[:len(signed) - len(data)].decode("ascii"), signed


def _sender_address(address_id: int, cache: dict) -> str:
    """The envelope sender (MAIL FROM): the address itself, so bounces come back to its ingress."""
    key = ("from", address_id)
    if key not in cache:
        cache[key] = sending_address(address_id).address
    return cache[key]


def _envelope(row) -> list[str]:
    seen, out = set(), []
    for _, addr in getaddresses([row.to_addrs or "", row.cc_addrs or "", row.bcc_addrs or ""]):
        if addr and addr.lower() not in seen:
            seen.add(addr.lower())
            out.append(addr)
    return out
