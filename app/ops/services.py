"""Health of the parts Pigeonhole runs on (database, Redis, queues, workers, cron), and inbound mail for admins.

`health()` never raises: each check reports `ok` or the error it met, with a
short Redis timeout so a dead Redis answers in about a second, not a minute.
Inbound mail: each mailbox's polling status, the arrivals stored with an error, and
`ingest_again` for them once the parser is fixed.
"""
from __future__ import annotations

import time

from flask import current_app
from sqlalchemy import delete, func, select, text, update

from app.extensions import db
from app.models.auth import User
from app.models.channels import MailboxState
from app.models.inbound import InboundRaw, InboundStatus
from app.models.inbox import Attachment, Message
from app.queues import QUEUE_NAMES, live_workers, queue_depths, redis_connection, unworked_queues
from app.runtime.idle import idle_statuses
from app.runtime.ingest import AddressNotReceiving, IngestResult, RawItem, ingest, ingest_pending, stale_pending_ids
from app.runtime.live import published_addresses
from app.runtime.poll import pollable

CRON_HEARTBEAT_KEY = "pigeonhole:cron:last_tick"


def _describe(exc: Exception) -> str:
    text_ = str(exc).splitlines()[0] if str(exc) else ""
    return f"{exc.__class__.__name__}: {text_}"[:300]


def health() -> dict:
    """A JSON-able report; `ok` is False when the database or Redis is down, or when a queue has jobs
    waiting and no live worker listens to it (`unworked_queues`). Workers count by a fresh heartbeat."""
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
        workers = live_workers(conn)
        report["workers"] = len(workers)
        report["unworked_queues"] = unworked_queues(conn, report["queues"], workers)
        last = conn.get(CRON_HEARTBEAT_KEY)
        report["cron"] = {"last_tick_seconds_ago": round(time.time() - float(last), 1)} if last else None
    except Exception as exc:  # noqa: BLE001
        report["redis"] = {"ok": False, "error": _describe(exc)}
        report["queues"] = {name: None for name in QUEUE_NAMES}
    report["ok"] = report["database"]["ok"] and report["redis"]["ok"] and not report.get("unworked_queues")
    report["warnings"] = configuration_warnings()
    return report


MAIL_KEY_DERIVED = ("MAIL_SECRET_KEY is not set: stored mailbox passwords and tokens are encrypted with a key "
                    "derived from SECRET_KEY. Production must set MAIL_SECRET_KEY separately (README, Security).")


def configuration_warnings() -> list[str]:
    """Settings that work but are not fit for production, in sentences for ops (`/healthz`, the Ops page)."""
    return [] if (current_app.config.get("MAIL_SECRET_KEY") or "").strip() else [MAIL_KEY_DERIVED]


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
    """Per live IMAP/POP3 address: protocol, last poll, last success, last error, next poll, and for IMAP
    its push state (`idle`: an `app.runtime.idle.IdleStatus`, None when Redis cannot say; `idle_unknown`)."""
    states = {s.address_id: s for s in db.session.scalars(select(MailboxState))}
    rows = []
    # A disabled address that holds new mail is polled too (to hold it).
    for address in sorted(published_addresses("custom", holding=True), key=lambda a: a.address):
        if not pollable(address):
            continue
        rows.append({"id": address.id, "address": address.address, "protocol": address.incoming_protocol.upper(),
                     "state": states.get(address.id), "idle": None})
    imap = [row for row in rows if row["protocol"] == "IMAP"]
    try:
        pushed = idle_statuses(redis_connection(timeout=current_app.config["REDIS_HEALTH_TIMEOUT"]),
                               [row["id"] for row in imap])
    except Exception:  # noqa: BLE001 - Redis down: the page still shows polling, push as unknown
        pushed = {}
    for row in imap:
        row["idle"] = pushed.get(row["id"])
    return rows


def inbound_problems(limit: int = 50) -> dict:
    """Arrivals stored with an error (newest first), the number still pending, and the automatic
    replies that matched no conversation (`unmatched_auto_replies`)."""
    failed = list(db.session.scalars(
        select(InboundRaw).where(InboundRaw.status == InboundStatus.STORED_WITH_ERROR.value)
        .order_by(InboundRaw.received_at.desc(), InboundRaw.id.desc()).limit(limit)))
    pending = db.session.scalar(select(func.count()).select_from(InboundRaw)
                                .where(InboundRaw.status == InboundStatus.PENDING.value))
    stale = list(db.session.scalars(
        select(InboundRaw).where(InboundRaw.id.in_(stale_pending_ids(current_app.config["INGEST_RETRY_SECONDS"], limit)))
        .order_by(InboundRaw.received_at, InboundRaw.id)))
    return {"failed": failed, "pending": pending, "stale": stale, "auto_replies": unmatched_auto_replies(limit)}


def unmatched_auto_replies(limit: int = 50) -> list:
    """Automatic replies (out-of-office, read receipts) that answered no conversation, newest first.

    Rows of (arrival, message): stored without a conversation, so no agent sees them; an admin
    can look at who sent them and download the raw message.
    """
    return list(db.session.execute(
        select(InboundRaw, Message).outerjoin(Message, Message.id == InboundRaw.message_row_id)
        .where(InboundRaw.status == InboundStatus.AUTO_REPLY.value)
        .order_by(InboundRaw.received_at.desc(), InboundRaw.id.desc()).limit(limit)).all())


class NotIngestable(ValueError):
    """The arrival is not stored with an error, or is a message of a conversation already."""


def ingest_again(raw_id: int) -> IngestResult:
    """Run the ingest service again on an arrival stored with an error (once the parser is fixed).

    The arrival goes through `app.runtime.ingest.ingest` as if it had just come in, from its
    stored raw bytes, and its `InboundRaw` row takes the new outcome: a conversation, a
    thread, a duplicate, a bounce, or still an error (with the new reason; the raw bytes
    and the row stay, so nothing is lost and it can be tried again after the next fix).
    The message row written with the error holds the dedupe key, so the new ingest would
    call the message a duplicate of its own broken copy: that row (and its attachment rows)
    is deleted in the same transaction, and other arrivals that were duplicates of it point
    at what replaces it. A row whose ingest failed before any message row was written
    (the old "Retry") takes the same path.

    Commits (the ingest service is a unit of work); the flow step is queued after the
    commit, as for new mail. Raises LookupError for an unknown id, `NotIngestable`, and
    `AddressNotReceiving` (nothing changed) when the address does not receive mail now.
    """
    row = db.session.get(InboundRaw, raw_id)
    if row is None:
        raise LookupError(raw_id)
    if row.status == InboundStatus.PENDING.value:  # still waiting (its job was lost): ingest it now, here
        result = ingest_pending(raw_id)
        if result is None:
            raise NotIngestable("This message was ingested meanwhile.")
        if result.status == InboundStatus.PENDING.value:
            raise AddressNotReceiving(result.error)
        return result
    if row.status != InboundStatus.STORED_WITH_ERROR.value:
        raise NotIngestable(f"This message is not stored with an error (it is {row.status.replace('_', ' ')}).")
    broken = db.session.get(Message, row.message_row_id) if row.message_row_id is not None else None
    if broken is not None and (broken.conversation_id is not None or broken.direction != "in"):
        raise NotIngestable("This message is in a conversation already; ingesting it again would change nothing.")
    copies: list[int] = []
    if broken is not None:
        copies = list(db.session.scalars(select(InboundRaw.id).where(InboundRaw.message_row_id == broken.id,
                                                                     InboundRaw.id != row.id)))
        db.session.execute(delete(Attachment).where(Attachment.message_id == broken.id))
        db.session.execute(delete(Message).where(Message.id == broken.id))
    row.status, row.error, row.message_row_id = InboundStatus.PENDING.value, None, None
    db.session.flush()

    def point_copies_at_the_new_message() -> None:
        if copies:
            db.session.execute(update(InboundRaw).where(InboundRaw.id.in_(copies))
                               .values(message_row_id=row.message_row_id))

    item = RawItem(row.raw_sha256, row.size, row.source, row.source_ref, row.envelope_from, raw_id=row.id)
    try:
        return ingest(row.address_id, [item], before_commit=point_copies_at_the_new_message, hold=False)[0]
    except AddressNotReceiving:
        db.session.rollback()
        raise
