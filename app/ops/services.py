"""Health of the parts Pigeonhole runs on: database, Redis, queues, workers, cron.

`health()` never raises: each check reports `ok` or the error it met, with a
short Redis timeout so a dead Redis answers in about a second, not a minute.
"""
from __future__ import annotations

import time

from flask import current_app
from sqlalchemy import func, select, text

from app.extensions import db
from app.models.auth import User
from app.models.channels import MailboxState
from app.models.inbound import InboundRaw, InboundStatus
from app.models.inbox import Message
from app.queues import QUEUE_NAMES, queue_depths, redis_connection, worker_count
from app.runtime.live import published_addresses
from app.runtime.poll import enqueue_once, pollable
from app.transactions import on_commit

CRON_HEARTBEAT_KEY = "pigeonhole:cron:last_tick"


def _describe(exc: Exception) -> str:
    text_ = str(exc).splitlines()[0] if str(exc) else ""
    return f"{exc.__class__.__name__}: {text_}"[:300]


def health() -> dict:
    """A JSON-able report; `ok` is False when the database or Redis is down."""
    report: dict = {"database": {"ok": True}, "redis": {"ok": True}, "queues": {}, "workers": None, "cron": None}
    try:
        db.session.execute(text("SELECT 1"))
        report["database"]["backend"] = db.engine.dialect.name
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        db.session.rollback()
        report["database"] = {"ok": False, "error": _describe(exc)}
    try:
        conn = redis_connection(timeout=current_app.config["REDIS_HEALTH_TIMEOUT"])
        conn.ping()
        report["queues"] = queue_depths(conn)
        report["workers"] = worker_count(conn)
        last = conn.get(CRON_HEARTBEAT_KEY)
        report["cron"] = {"last_tick_seconds_ago": round(time.time() - float(last), 1)} if last else None
    except Exception as exc:  # noqa: BLE001
        report["redis"] = {"ok": False, "error": _describe(exc)}
        report["queues"] = {name: None for name in QUEUE_NAMES}
    report["ok"] = report["database"]["ok"] and report["redis"]["ok"]
    return report


def record_cron_tick(connection) -> None:
    connection.set(CRON_HEARTBEAT_KEY, time.time())


def ping() -> dict:
    """What the trivial `jobs.ops.ping` job returns: proves queue → worker → app → database."""
    return {
        "database": db.engine.dialect.name,
        "users": db.session.scalar(select(func.count()).select_from(User)),
    }


# --- Inbound mail: mailbox polling status and arrivals that need an admin ---------------

def mailbox_statuses() -> list[dict]:
    """Per live IMAP/POP3 address: protocol, last poll, last success, last error, next poll."""
    states = {s.address_id: s for s in db.session.scalars(select(MailboxState))}
    rows = []
    for address in sorted(published_addresses("custom"), key=lambda a: a.address):
        if not pollable(address):
            continue
        rows.append({"address": address.address, "protocol": address.incoming_protocol.upper(),
                     "state": states.get(address.id)})
    return rows


def inbound_problems(limit: int = 50) -> dict:
    """Arrivals stored with an error (newest first), the number still pending, and the automatic
    replies that matched no conversation (`unmatched_auto_replies`)."""
    failed = list(db.session.scalars(
        select(InboundRaw).where(InboundRaw.status == InboundStatus.STORED_WITH_ERROR.value)
        .order_by(InboundRaw.received_at.desc(), InboundRaw.id.desc()).limit(limit)))
    pending = db.session.scalar(select(func.count()).select_from(InboundRaw)
                                .where(InboundRaw.status == InboundStatus.PENDING.value))
    return {"failed": failed, "pending": pending, "auto_replies": unmatched_auto_replies(limit)}


def unmatched_auto_replies(limit: int = 50) -> list:
    """Automatic replies (out-of-office, read receipts) that answered no conversation, newest first.

    Rows of (arrival, message): stored without a conversation, so no agent sees them; an admin
    can look at who sent them and download the raw message.
    """
    return list(db.session.execute(
        select(InboundRaw, Message).outerjoin(Message, Message.id == InboundRaw.message_row_id)
        .where(InboundRaw.status == InboundStatus.AUTO_REPLY.value)
        .order_by(InboundRaw.received_at.desc(), InboundRaw.id.desc()).limit(limit)).all())


class NotRetryable(ValueError):
    """The arrival was stored as a message already; ingesting it again would change nothing."""


def retry_inbound(raw_id: int):
    """Put an arrival that failed unexpectedly back to pending; its ingest job leaves when the caller commits.

    Raises LookupError for an unknown id and `NotRetryable` when a message row exists.
    """
    row = db.session.get(InboundRaw, raw_id)
    if row is None:
        raise LookupError(raw_id)
    if row.message_row_id is not None or row.status not in (InboundStatus.STORED_WITH_ERROR.value,
                                                            InboundStatus.PENDING.value):
        raise NotRetryable("This message was stored already; retrying it would change nothing.")
    row.status = InboundStatus.PENDING.value
    row.error = None
    on_commit(enqueue_once, "ingest", "jobs.ingest.ingest_raw", raw_id, job_id=f"ingest-raw-{raw_id}")
    return row
