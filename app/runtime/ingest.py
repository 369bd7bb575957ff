"""The one ingest service: raw bytes (already durable in the blob store) to conversation rows.

Every entry point (SMTP ingress, IMAP and POP3 polling, `flask mail ingest`) hands
raw messages to `ingest()`. For each message, in one database transaction per
call (a batch):

1. parse (`app.mail.parse.parse_message`, which never raises);
2. **dedupe** per receiving address: the Message-ID, or a content hash when there
   is none (`dedupe_key`, unique per address in the database, so two workers
   racing on the same message cannot both store it); our own outgoing mail
   coming back (the contact-center mailbox forwarding our Bcc copy) is a
   duplicate too;
3. a provider's **forwarding confirmation** (Gmail's) to a platform address is kept for the
   admins (`app.runtime.forwarding`) as a message with no conversation: no flow, no automatic
   reply. Every arrival also records who forwarded it (`InboundRaw.forwarded_for`);
4. **bounces** and other delivery reports mark the outgoing message they refer to
   (`delivery_status="bounced"`, `delivery_error` = the diagnostic) and are kept
   in that conversation without reopening it; they never open a conversation; a final
   failure puts its recipients on the suppression list (`app.runtime.suppression`);
5. **automatic replies** (out-of-office, read receipts) join the conversation they
   answer without reopening it, moving it up the inbox or running its flow; one that
   answers nothing is stored apart, with no conversation (`auto_reply`);
6. **contact** (From, or the parser's fallback Sender / Reply-To / Return-Path, kept in
   `Message.sender_source`; Reply-To with "Use Reply-To for User Identity") and
   **threading** (`app.runtime.threading`); a customer's reply reopens a resolved,
   closed or pending conversation;
7. Message and Attachment rows; the batch's attachment bytes are made durable
   together (`BlobStore.put_many`) just before the commit that names them.

`before_commit` lets a poller move its mailbox watermark in the same
transaction, so the watermark never gets ahead of what is stored. After the
commit, the flow step is enqueued for each new customer message
(`jobs.flows.run_flow`); automatic replies, bounces and reports never trigger it.
Without Redis the mail is still stored and one warning per outage names the
command that queues the missed flow steps (`flow_steps_missing`).

A message that cannot be understood, or whose ingest fails unexpectedly, is
stored as `stored_with_error` (raw bytes kept, `InboundRaw.error` says why, admins
see it on the Ops page) instead of failing the batch. Each message is written in
a savepoint, so one bad message never loses the others. The machine's passing
trouble is not the message's fault: a transient OS error (a full disk or quota,
`transient`) fails the whole batch uncommitted; an arrival then stays pending with
the reason and cron's sweep runs it again until there is room.
"""
from __future__ import annotations

import errno
import hashlib
import logging
import re
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.parser import BytesHeaderParser
from email.policy import compat32

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from app.blobs import blob_store
from app.extensions import begin_nested, begin_writing, db
from app.logs import log_context
from app.mail.parse import ParsedMessage, parse_message
from app.mail.senderauth import Verdict
from app.mail.tokens import new_conversation_token
from app.models.inbound import InboundRaw, InboundStatus
from app.models.inbox import Attachment, Contact, Conversation, Message
from app.queues import enqueue_jobs
from app.runtime import facts, forwarding, metrics, senderauth, sla, suppression
from app.runtime.changes import publish_change
from app.runtime.live import PublishedAddress, receiving_address
from app.runtime.threading import find_conversation
from app.runtime.ingest_jobs import NO_FLOW, ingest_jobs
from app.runtime.ingest_redis import address_lock, enqueue_flows, queue_left_to_holder, redis_outage
from app.runtime.trail import record_event
from app.transactions import on_commit

log = logging.getLogger(__name__)

#: Conversation statuses a customer's reply brings back to "open".
REOPEN_FROM = ("resolved", "closed", "pending")


@dataclass
class RawItem:
    """One raw message to ingest. Its bytes are in the blob store under `sha256` already."""

    sha256: str
    size: int
    source: str                      # smtp / imap / pop3 / cli
    source_ref: str | None = None    # IMAP "INBOX;v=..;uid=..", POP3 UIDL, file name
    envelope_from: str | None = None
    raw: bytes | None = None         # the bytes, when the caller still has them (saves a read)
    raw_id: int | None = None        # an existing pending InboundRaw row (ingress)
    error: str | None = None         # the caller could not fetch it whole (too large, ...)
    auth: Verdict | None = None      # sender authentication checked already (ingress); else read from its headers
    attachment_data: list[bytes] = field(default_factory=list, repr=False)  # to be made durable before the commit
    accepted_at: datetime | None = None  # when the ingress answered 250 (else: when this ingest began)


@dataclass
class IngestResult:
    status: str
    raw_id: int | None = None
    message_row_id: int | None = None
    conversation_id: int | None = None
    error: str | None = None
    parsed: ParsedMessage | None = field(default=None, repr=False)
    flow: bool = False

    def as_json(self, **extra) -> dict:
        """The CLI contract of `flask mail ingest` (one object per message)."""
        p = self.parsed or ParsedMessage()
        out = {
            **extra,
            "status": self.status,
            "conversation_id": self.conversation_id,
            "message_id": p.message_id,
            "from": p.from_header,
            "to": p.addresses("to"),
            "cc": p.addresses("cc"),
            "subject": p.subject,
            "text": p.visible_text,
            "attachments": [a.describe() for a in p.attachments],
            "auto_reply": p.auto_reply,
            "error": self.error or p.error,
        }
        if p.bounce is not None:
            out["bounce"] = {"kind": p.bounce.kind, "recipients": p.bounce.recipients,
                             "original_message_id": p.bounce.original_message_id, "status": p.bounce.status}
        return out


class AddressNotReceiving(LookupError):
    """The address is not published, not enabled, or not an inbound address."""


def ingest(address_id: int, items: Sequence[RawItem], *,
           before_commit: Callable[[], None] | None = None, hold: bool = True,
           locked: bool = False) -> list[IngestResult]:
    """Ingest a batch for one address, commit once, then enqueue the flow steps.

    Commits (it is a unit of work of its own: pollers rely on the watermark
    moving in the same transaction). Raises `AddressNotReceiving` when the
    address cannot receive mail; database errors other than a duplicate
    propagate (nothing of the batch is committed then, and a re-run is safe).

    For a disabled address published to hold new mail, each message is only
    recorded as `held` (raw bytes kept, nothing parsed, threaded or routed: no
    agent sees it); `app.runtime.hold` turns the rows pending again once the
    address is published enabled, and they are ingested then, once. With `hold=False` (an admin's
    "ingest again") such an address raises `AddressNotReceiving` instead. With `locked`, the caller
    holds the address's lock (`address_lock`) and, once it lets it go, calls `queue_left_to_holder`.
    """
    address = receiving_address(address_id)
    if address is None or not address.can_receive or (address.holds_mail and not hold):
        raise AddressNotReceiving(f"address {address_id} is not a published, enabled inbound address")
    results: list[IngestResult] = []
    with log_context(address_id=address_id), (nullcontext() if locked else address_lock(address_id)):
        begin_writing()  # SQLite: the write lock now, not a stale snapshot at the first write
        now = datetime.now(timezone.utc)
        for item in items:
            with log_context(raw_id=item.raw_id):
                results.append(_hold_one(address, item, now) if address.holds_mail else _ingest_one(address, item, now))
        if not address.holds_mail:
            _put_attachments(items)
        if before_commit is not None:
            before_commit()
        db.session.commit()
    _observe(items, results, now)
    # Committed and the lock released (no Redis round trips while other workers wait for it):
    # with no transaction open, the hook runs at once.
    on_commit(enqueue_flows, results)
    if not locked:
        queue_left_to_holder(address_id)
    return results


def _observe(items: Sequence[RawItem], results: list[IngestResult], started: datetime) -> None:
    """Count the committed outcomes and their latency from acceptance (`/metrics`)."""
    committed = datetime.now(timezone.utc)
    for item, result in zip(items, results):
        accepted = item.accepted_at or started
        if accepted.tzinfo is None:  # SQLite gives naive UTC back
            accepted = accepted.replace(tzinfo=timezone.utc)
        metrics.observe_ingest(result.status, (committed - accepted).total_seconds())


def ingest_pending(raw_id: int) -> IngestResult | None:
    """Ingest one pending `InboundRaw` row (what the ingress job runs). None when already done.

    A row whose address stopped receiving stays pending with the reason in `error`
    (nothing is lost; it is ingested once the address is live again).
    """
    results = ingest_pending_many([raw_id])
    return results[0] if results else None


def ingest_pending_many(raw_ids: Sequence[int], drain: int = 0, leave_to_holder: bool = False) -> list[IngestResult]:
    """Ingest the pending rows among `raw_ids` (what one ingest job of a burst runs); done rows are skipped.

    With `drain`, the batch is filled up to that many rows with the next pending arrivals of the
    same addresses (higher ids, whose own jobs wait behind this one and will find them done): a
    burst that reached the ingress over a few connections arrives in groups of two or three, and
    this lets one job, one lock and one commit serve fifty of them.

    The rows of each address go through one `ingest()` call: one lock, one commit, and one
    savepoint per message inside it (`_ingest_one`), so a message that cannot be stored is kept
    with its error and never fails the others. Its results, in id order. The pending mark stays
    the truth: a row another worker finished meanwhile is seen under the address lock and left
    alone, and rows a failure leaves pending are found again by cron's `requeue_stale_pending`.
    Rows of an address that stopped receiving, or that meet a transient disk error, stay pending
    with the reason and one more attempt. Checking senders can wait for a slow DNS: past
    `PREPARE_SECONDS` the batch stops there, drained rows are left to their own jobs, and the
    job's own rows not reached get a job of their own.

    With `leave_to_holder` (the ingest jobs), the job takes each address's lock before it prepares
    the address's rows, without waiting: the rows of an address whose lock another process holds are
    left pending, untouched, and the job goes on; that process queues a job for them once it has let
    the lock go (`queue_left_to_holder`). A second worker then runs flow steps while the first
    ingests, instead of waiting for the lock, or preparing (settling, checking senders) rows that the
    holder is about to ingest (ingest of one address is one worker's at a time).
    """
    pending = InboundRaw.status == InboundStatus.PENDING.value
    rows = list(db.session.scalars(select(InboundRaw).where(InboundRaw.id.in_(list(raw_ids)), pending)
                                   .order_by(InboundRaw.id)))
    own = {row.id for row in rows}
    if rows and drain > len(rows):
        rows += db.session.scalars(select(InboundRaw).where(
            pending, InboundRaw.address_id.in_({row.address_id for row in rows}), InboundRaw.id > rows[-1].id)
            .order_by(InboundRaw.id).limit(drain - len(rows)))
    by_address: dict[int, list[InboundRaw]] = {}
    for row in rows:
        by_address.setdefault(row.address_id, []).append(row)
    results: list[IngestResult] = []
    budget = time.monotonic() + PREPARE_SECONDS
    left: list[int] = []  # own rows the budget did not reach: a job of their own, after this one
    for address_id, group in by_address.items():
        if not leave_to_holder:
            results += _ingest_group(address_id, group, budget, own, left)
            continue
        with address_lock(address_id, wait=0) as held:
            if held:
                results += _ingest_group(address_id, group, budget, own, left, locked=True)
        if held:
            queue_left_to_holder(address_id)
    if left:
        try:
            enqueue_jobs("ingest", ingest_jobs(left), result_ttl=0, failure_ttl=24 * 3600)
        except RedisError as exc:  # pending rows: cron's sweep finds them
            redis_outage.failed(exc)
    return results


def _ingest_group(address_id: int, group: list[InboundRaw], budget: float, own: set[int], left: list[int],
                  locked: bool = False) -> list[IngestResult]:
    """One address's rows of a batch: prepared (`_pending_items`), then ingested in one `ingest()`. Own rows
    the budget did not reach are added to `left`; rows the address cannot take now stay pending with the reason.
    `locked`: the caller holds the address's lock, so the rows that the last holder ingested meanwhile are
    left out before they are prepared for nothing."""
    if locked:
        still = set(db.session.scalars(select(InboundRaw.id).where(
            InboundRaw.id.in_([row.id for row in group]), InboundRaw.status == InboundStatus.PENDING.value)))
        group = [row for row in group if row.id in still]
    items = _pending_items(group, budget)
    left += [row.id for row in group[len(items):] if row.id in own]
    group = group[:len(items)]
    if not group:
        return []
    ids = [row.id for row in group]
    try:
        return ingest(address_id, items, locked=locked)
    except AddressNotReceiving as exc:
        return _still_pending(ids, str(exc))
    except OSError as exc:
        if not transient(exc):
            raise
        # A full disk (or quota) is no fault of the messages: they stay pending, and cron's sweep of
        # pending rows (`requeue_stale_pending`) runs them again every INGEST_RETRY_SECONDS until there is room.
        log.warning("%d raw message(s) stay pending: %s", len(ids), exc)
        return _still_pending(ids, f"waiting for room in the file store: {exc}")


#: Seconds a batch spends settling raw bytes and checking senders (DNS) before it takes the lock; rows it
#: did not reach by then are left to their own jobs, so a slow DNS never makes a batch outlast RQ's timeout.
PREPARE_SECONDS = 30.0


def _pending_items(rows: list[InboundRaw], budget: float | None = None) -> list[RawItem]:
    """Pending rows as `RawItem`s: their raw bytes settled in the blob store together (`settle_many`: one
    wait for the disk), an SMTP arrival's sender checked. The first rows only, when `time.monotonic()`
    passes `budget` (at least one).

    Both happen before the address lock is taken (SPF / DKIM / DMARC lookups in the worker, never
    in the SMTP session), so other workers are not kept waiting by them. A blob the batch could not
    settle is settled on its own, with that path's handling of its error (`_settle`).
    """
    try:
        settled = blob_store().settle_many([row.raw_sha256 for row in rows])
    except Exception:  # noqa: BLE001 - each one on its own below says what went wrong with it
        settled = {}
    items = []
    for row in rows:
        if items and budget is not None and time.monotonic() > budget:
            break
        raw = settled.get(row.raw_sha256)
        if raw is None:
            raw = _settle(row.raw_sha256)
        item = RawItem(row.raw_sha256, row.size, row.source, row.source_ref, row.envelope_from, raw=raw,
                       raw_id=row.id, accepted_at=row.received_at)
        if raw is not None and row.source == "smtp":
            item.auth = senderauth.verdict_for_arrival(raw, row.client_ip, row.helo, row.envelope_from)
        items.append(item)
    return items


def _settle(sha256: str) -> bytes | None:
    """One staged raw message moved to the blob store; None when it stays where it is (ingest reads it there)."""
    try:  # the ingress staged the raw bytes in the database; they go to the blob store first
        return blob_store().settle(sha256)
    except OSError as exc:
        if not transient(exc):
            raise
        # The staged bytes stay in the database: ingest reads them from there, settled on a later run.
        log.warning("raw message %s stays staged in the database: %s", sha256, exc)
    except Exception:  # noqa: BLE001 - ingest reads it again and stores the message with the reason
        log.exception("raw message %s could not be settled", sha256)
    return None


#: OS errors that pass by themselves (room returns): the work is retried, never stored as the message's fault.
TRANSIENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.ENOMEM, errno.EAGAIN, errno.EMFILE, errno.ENFILE})


def transient(exc: BaseException) -> bool:
    """Whether this error is the machine's passing trouble (a full disk, too many open files), not the message's."""
    return isinstance(exc, OSError) and exc.errno in TRANSIENT_ERRNOS


def _still_pending(raw_ids: list[int], reason: str) -> list[IngestResult]:
    """Nothing of the attempt is kept; the rows stay pending with the reason and one more attempt."""
    db.session.rollback()
    db.session.execute(update(InboundRaw).where(InboundRaw.id.in_(raw_ids))
                       .values(error=reason[:1000], attempts=InboundRaw.attempts + 1))
    db.session.commit()
    return [IngestResult("pending", raw_id=raw_id, error=reason) for raw_id in raw_ids]


def stale_pending_ids(older_than_seconds: int, limit: int = 500) -> list[int]:
    """Pending rows older than that (their job was lost: Redis restart, killed worker)."""
    cutoff = datetime.now(timezone.utc) - timedelta(seconds=older_than_seconds)
    return list(db.session.scalars(
        select(InboundRaw.id).where(InboundRaw.status == InboundStatus.PENDING.value,
                                    InboundRaw.received_at < cutoff).order_by(InboundRaw.id).limit(limit)))


# --- one message ---------------------------------------------------------------------------------

def _ingest_one(address: PublishedAddress, item: RawItem, now: datetime) -> IngestResult:
    raw_row = _raw_row(address, item, now)
    if raw_row.status != InboundStatus.PENDING.value:
        return IngestResult(raw_row.status, raw_id=raw_row.id, message_row_id=raw_row.message_row_id)
    try:
        raw = item.raw if item.raw is not None else blob_store().get(item.sha256)
    except OSError as exc:
        if transient(exc):
            raise  # the batch is not committed; it is ingested again later
        return _finish(raw_row, IngestResult(InboundStatus.STORED_WITH_ERROR.value, error=f"raw message unreadable: {exc}"), now)
    except Exception as exc:  # noqa: BLE001 - a missing blob is an admin matter, not a crash
        return _finish(raw_row, IngestResult(InboundStatus.STORED_WITH_ERROR.value, error=f"raw message unreadable: {exc}"), now)
    parsed = parse_message(raw, envelope_from=item.envelope_from,
                           max_attachments=current_app.config["INBOUND_MAX_ATTACHMENTS"])
    if item.auth is None:  # polled (or `flask mail ingest`): what a trusted provider's header says
        item.auth = senderauth.verdict_from_headers(raw)
    if item.error and not parsed.error:
        parsed.error = item.error
    forwarding.note_forwarded_for(address, raw_row, raw)
    savepoint = begin_nested()
    try:
        result = _store(address, item, raw, parsed, now)
        if result.conversation_id is not None:  # the agents' open pages hear of it once it commits
            publish_change(result.conversation_id, "message")
        savepoint.commit()
    except IntegrityError:
        # Another worker stored the same message (same dedupe key) a moment ago.
        savepoint.rollback()
        result = IngestResult(InboundStatus.DUPLICATE.value, message_row_id=_existing(address.id, parsed, raw))
    except OSError as exc:
        savepoint.rollback()
        if transient(exc):
            raise  # not the message's fault: nothing of the batch is committed, it is ingested again later
        log.exception("ingest of %s failed", item.sha256)
        result = IngestResult(InboundStatus.STORED_WITH_ERROR.value, error=f"{exc.__class__.__name__}: {exc}"[:1000])
    except Exception as exc:  # noqa: BLE001 - keep the message (raw) and say why; never lose the batch
        savepoint.rollback()
        log.exception("ingest of %s failed", item.sha256)
        result = IngestResult(InboundStatus.STORED_WITH_ERROR.value, error=f"{exc.__class__.__name__}: {exc}"[:1000])
    result.parsed = parsed
    return _finish(raw_row, result, now)


def _hold_one(address: PublishedAddress, item: RawItem, now: datetime) -> IngestResult:
    """Keep one message of a disabled, holding address unrouted: its raw row says `held`."""
    raw_row = _raw_row(address, item, now)
    if raw_row.status == InboundStatus.PENDING.value:
        raw_row.status = InboundStatus.HELD.value
        raw_row.error = None
    return IngestResult(raw_row.status, raw_id=raw_row.id, message_row_id=raw_row.message_row_id)


def _raw_row(address: PublishedAddress, item: RawItem, now: datetime) -> InboundRaw:
    if item.raw_id is not None:
        row = db.session.get(InboundRaw, item.raw_id)
        db.session.refresh(row)  # another worker may have finished it while we waited for the lock
        return row
    row = InboundRaw(address_id=address.id, source=item.source, source_ref=(item.source_ref or "")[:300] or None,
                     raw_sha256=item.sha256, size=item.size, envelope_from=item.envelope_from,
                     status=InboundStatus.PENDING.value, received_at=now)
    db.session.add(row)
    db.session.flush()
    return row


def _finish(row: InboundRaw, result: IngestResult, now: datetime) -> IngestResult:
    row.status = result.status
    row.error = result.error or (result.parsed.error if result.parsed else None)
    row.message_row_id = result.message_row_id
    row.attempts = (row.attempts or 0) + 1
    row.processed_at = now
    result.raw_id = row.id
    return result


def dedupe_key(parsed: ParsedMessage, raw: bytes) -> str:
    """"mid:<id>" (hashed when very long), or "sha:<hex>" of the content when there is no Message-ID.

    The content hash covers From, To, Date, Subject and the body with line endings
    normalised, not the whole raw message: relays add Received headers and IMAP
    and SMTP differ in line endings, yet it is the same message. A message with no
    header block at all (a text file, a paste) has no such fields and its first
    paragraph would pass for headers, so it is hashed whole instead ("raw:<hex>",
    `_headerless`). Keys are stored: the other two must never change.
    """
    if parsed.message_id:
        key = "mid:" + parsed.message_id
        return key if len(key) <= 300 else "mid#" + hashlib.sha256(parsed.message_id.encode()).hexdigest()
    if _headerless(parsed, raw):
        whole = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n").rstrip(b"\n")
        return "raw:" + hashlib.sha256(whole).hexdigest()
    body = re.split(rb"\r?\n\r?\n", raw, maxsplit=1)
    digest = hashlib.sha256()
    for part in (parsed.from_addr, parsed.addresses("to"), parsed.date.isoformat() if parsed.date else "",
                 parsed.subject):
        digest.update(part.encode("utf-8", "replace") + b"\0")
    digest.update((body[1] if len(body) > 1 else b"").replace(b"\r\n", b"\n"))
    return "sha:" + digest.hexdigest()


def _headerless(parsed: ParsedMessage, raw: bytes) -> bool:
    """No header field on the first lines (the stdlib reading of a header block) and none recovered.

    Judged on the raw bytes, not on `parsed.from_addr`, which may come from the envelope;
    a header block the parser recovered after junk lines (Subject, Date, To) keeps the
    content key, so a relayed copy with a Received header in front still dedupes.
    """
    if parsed.subject or parsed.date or parsed.to or parsed.cc:
        return False
    return not BytesHeaderParser(policy=compat32).parsebytes(raw[:_HEAD_BYTES]).keys()


#: Enough of a message to see whether it starts with a header field.
_HEAD_BYTES = 64 * 1024


def _existing(address_id: int, parsed: ParsedMessage, raw: bytes) -> int | None:
    return db.session.scalar(select(Message.id).where(Message.address_id == address_id,
                                                      Message.dedupe_key == dedupe_key(parsed, raw)))


def _store(address: PublishedAddress, item: RawItem, raw: bytes, parsed: ParsedMessage,
           now: datetime) -> IngestResult:
    key = dedupe_key(parsed, raw)
    found = db.session.scalar(select(Message.id).where(Message.address_id == address.id, Message.dedupe_key == key))
    if found is not None:
        return IngestResult(InboundStatus.DUPLICATE.value, message_row_id=found)
    if parsed.message_id:
        ours = db.session.scalar(select(Message.id).where(Message.message_id == parsed.message_id,
                                                          Message.direction == "out").limit(1))
        if ours is not None:  # our own mail, echoed back by the contact center's forwarding
            return IngestResult(InboundStatus.DUPLICATE.value, message_row_id=ours)

    if parsed.error:
        message = _message(address, item, parsed, key, None, now)
        return IngestResult(InboundStatus.STORED_WITH_ERROR.value, message_row_id=message.id, error=parsed.error)

    confirmation = forwarding.confirmation_of(address, parsed)
    if confirmation is not None:
        message = _message(address, item, parsed, key, None, now)
        forwarding.store_confirmation(address, message.id, confirmation, parsed.subject, now)
        return IngestResult(InboundStatus.FORWARDING_CONFIRMATION.value, message_row_id=message.id)

    if parsed.bounce is not None:
        return _store_report(address, item, parsed, key, now)

    if parsed.auto_reply:
        return _store_auto_reply(address, item, parsed, key, now)

    identity = _identity(address, parsed)
    if identity is None:
        message = _message(address, item, parsed, key, None, now)
        message.parse_error = "no sender address: the message cannot be answered"
        return IngestResult(InboundStatus.STORED_WITH_ERROR.value, message_row_id=message.id,
                            error=message.parse_error)
    contact = _contact(*identity)
    session_key = _session_key(address, parsed) if address.channel_sessions else None
    conversation, _rule = find_conversation(
        address.id, in_reply_to=parsed.in_reply_to, references=parsed.references, subject=parsed.subject,
        contact_id=contact.id, session_key=session_key, now=now,
        window_days=current_app.config["THREAD_WINDOW_DAYS"])
    if conversation is None:
        conversation = Conversation(address_id=address.id, contact_id=contact.id, token=new_conversation_token(),
                                    subject=parsed.subject[:2000], status="open", session_key=session_key,
                                    created_at=now, last_message_at=now)
        db.session.add(conversation)
        db.session.flush()
        status = InboundStatus.CREATED.value
    else:
        status = InboundStatus.THREADED.value
        if conversation.status in REOPEN_FROM:
            record_event(conversation.id, "status", f"The customer answered: open again (was {conversation.status})",
                         when=now, status="open", before=conversation.status)
            conversation.status = "open"
            conversation.snoozed_until = conversation.snoozed_by_id = None  # "until the customer answers" too
        conversation.last_message_at = now
    message = _message(address, item, parsed, key, conversation.id, now)
    sla.customer_wrote(conversation, now)
    facts.customer_wrote(conversation, now)
    return IngestResult(status, message_row_id=message.id, conversation_id=conversation.id,
                        flow=parsed.classification not in NO_FLOW)


def _store_report(address: PublishedAddress, item: RawItem, parsed: ParsedMessage, key: str,
                  now: datetime) -> IngestResult:
    """A delivery report: mark our outgoing message, keep the report beside it, open nothing."""
    bounce = parsed.bounce
    outgoing = None
    if bounce.original_message_id:
        outgoing = db.session.scalars(select(Message).where(
            Message.message_id == bounce.original_message_id, Message.direction == "out")
            .order_by(Message.id.desc()).limit(1)).first()
    if outgoing is not None and bounce.failed:
        outgoing.delivery_status = "bounced"
        detail = " ".join(x for x in (bounce.status or "", bounce.diagnostic) if x).strip()
        who = ", ".join(bounce.recipients)
        outgoing.delivery_error = (f"{who}: {detail}" if who else detail)[:2000] or "bounced"
    conversation_id = outgoing.conversation_id if outgoing is not None else None
    message = _message(address, item, parsed, key, conversation_id, now)
    suppression.record_report(bounce, outgoing, message, now)
    return IngestResult(InboundStatus.BOUNCE.value, message_row_id=message.id, conversation_id=conversation_id)


def _store_auto_reply(address: PublishedAddress, item: RawItem, parsed: ParsedMessage, key: str,
                      now: datetime) -> IngestResult:
    """An automatic reply (out-of-office, vacation responder, read receipt): into the conversation it answers.

    Threaded like a customer's mail (our ids and tokens, the chain, an MDN's Original-Message-ID,
    then the subject without its automatic prefixes, for a known contact only), but it is not the
    customer's reply: the conversation keeps its status (never reopened) and its last activity,
    so the inbox neither moves it up nor marks it unread (Zendesk and Front do not let an
    out-of-office bump a ticket either), and no flow runs (`flow` stays False). One that answers
    nothing we know opens nothing and creates no contact: it is stored without a conversation,
    out of the agents' views, as `auto_reply` (Ops › Inbound mail lists it).
    """
    identity = _identity(address, parsed)
    contact_id = None
    if identity is not None:
        contact_id = db.session.scalar(select(Contact.id).where(Contact.email == identity[0].strip().lower()[:320]))
    conversation, _rule = find_conversation(
        address.id, in_reply_to=parsed.in_reply_to, references=parsed.references + [i for i in [parsed.answers] if i],
        subject=parsed.subject, contact_id=contact_id,
        session_key=_session_key(address, parsed) if address.channel_sessions else None, now=now,
        window_days=current_app.config["THREAD_WINDOW_DAYS"], automatic=True)
    conversation_id = conversation.id if conversation is not None else None
    message = _message(address, item, parsed, key, conversation_id, now)
    status = InboundStatus.THREADED if conversation is not None else InboundStatus.AUTO_REPLY
    return IngestResult(status.value, message_row_id=message.id, conversation_id=conversation_id)


def _identity(address: PublishedAddress, parsed: ParsedMessage) -> tuple[str, str] | None:
    """The contact: Reply-To with "Use Reply-To for User Identity", else the sender the parser found
    (From, or its fallback Sender / Reply-To / Return-Path, `parsed.sender_source`); None without one."""
    if address.use_reply_to_identity and parsed.reply_to:
        name, email = parsed.reply_to[0]
        return email, name
    if parsed.from_addr:
        return parsed.from_addr, parsed.from_name
    return None


def _contact(email: str, name: str) -> Contact:
    email = email.strip().lower()[:320]
    contact = db.session.scalar(select(Contact).where(Contact.email == email))
    if contact is not None:
        if not contact.name and name:
            contact.name = name[:200]
        return contact
    savepoint = begin_nested()
    try:
        contact = Contact(email=email, name=(name or "")[:200])
        db.session.add(contact)
        db.session.flush()
        savepoint.commit()
        return contact
    except IntegrityError:  # created by another worker a moment ago
        savepoint.rollback()
        return db.session.scalar(select(Contact).where(Contact.email == email))


def _session_key(address: PublishedAddress, parsed: ParsedMessage) -> str:
    """The To address a Channel-Based Session is keyed by: the first To (else Cc) recipient."""
    for _name, addr in parsed.to + parsed.cc:
        if addr:
            return addr.strip().lower()[:320]
    return address.address.lower()


def _message(address: PublishedAddress, item: RawItem, parsed: ParsedMessage, key: str,
             conversation_id: int | None, now: datetime) -> Message:
    message = Message(
        conversation_id=conversation_id, address_id=address.id, direction="in",
        message_id=parsed.message_id, in_reply_to=parsed.in_reply_to,
        references=" ".join(parsed.references) or None,
        from_addr=parsed.from_header, to_addrs=parsed.addresses("to"), cc_addrs=parsed.addresses("cc"),
        reply_to=parsed.addresses("reply_to"), subject=parsed.subject, text=parsed.text, html=parsed.html,
        visible_text=parsed.visible_text, classification=parsed.classification,
        no_auto_reply=parsed.no_auto_reply, dedupe_key=key, raw_sha256=item.sha256,
        parse_error=parsed.error, sent_at=parsed.date, created_at=now,
        sender_source=parsed.sender_source, parse_notes=parsed.parse_notes,
    )
    if item.auth is not None:
        senderauth.record(message, item.auth)
    db.session.add(message)
    db.session.flush()
    for att in parsed.attachments:
        # Named now, written with the batch's other attachments just before the commit (`_put_attachments`).
        sha = hashlib.sha256(att.data).hexdigest()
        item.attachment_data.append(att.data)
        db.session.add(Attachment(message_id=message.id, filename=att.filename[:500],
                                  content_type=att.content_type[:200], size=att.size,
                                  content_id=att.content_id, inline=att.inline, sha256=sha))
    return message


def _put_attachments(items: Sequence[RawItem]) -> None:
    """The batch's attachment bytes, durable in one `put_many` before the rows naming them are committed.

    A message whose savepoint was rolled back leaves its blobs behind, unreferenced
    (content-addressed, so harmless), as a failed single `put` always could.
    """
    datas = [data for item in items for data in item.attachment_data]
    for item in items:
        item.attachment_data = []
    if datas:
        blob_store().put_many(datas)
