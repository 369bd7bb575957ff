"""Outbound mail: queue a message (rendered once, frozen) and deliver it exactly once.

The workspace and the flows call two services:

* `send_reply(conversation_id, author_id, body_html, ...)`: the agent's reply (or an
  automatic one) with the defaults a reply needs (the customer as To, "Re:" subject,
  In-Reply-To/References to the customer's last message, quoted history);
* `queue_message(conversation_id, to=..., subject=..., body_html=..., ...)`: any
  outgoing message of a conversation.

Both check first that the address may send (published, enabled, not archived, not
inbound-only, with a configured SMTP server) and raise `CannotSend`, with a text for
the agent, without queueing anything. Otherwise they render the message with the one
renderer (`app.mail.render`) and add a `Message` row in state `queued` with its bytes
beside it (`OutgoingMime`, same transaction: one durable commit covers both). The
caller commits, then calls `enqueue_send(message.id)`. The bytes are frozen at that
moment: a retry sends exactly what the agent sent.

Delivery state machine (`Message.delivery_status`)::

    queued ──claim──> sending ──250──> sent ──(inbound DSN)──> bounced
                         │
                         ├─ 4xx / connection error ─> retrying ──(next_attempt_at)──> sending ...
                         │        (after SEND_MAX_ATTEMPTS) ─> failed
                         └─ 5xx / unusable configuration ──> failed ──(retry_message, by hand)──> queued

Exactly once. The job (`jobs.send.send_message`) first *claims* the message: one
conditional UPDATE sets `sending`, a random `claim_token` and a lease
(`claimed_until = now + SEND_LEASE_SECONDS`), and commits before any byte goes to
the server. A message is claimable only when it is `queued`/`retrying` and due, or
`sending` with an expired lease, so two workers (or a job enqueued twice) never hold
it at once. The outcome is written with `WHERE claim_token = <ours>` and committed
right after the server's reply, message by message. The RQ job timeout is shorter
than the lease, so a stuck worker is killed before its lease ends: once a lease has
expired nobody is still sending under it.

A worker that dies between the claim and the send leaves the message `sending`; the
cron sweep (`enqueue_due_messages`) re-enqueues it once the lease has expired and it
is sent then, once. The remaining window: a worker that dies after the server
accepted the message (its 250 reply to DATA) but before the commit of `sent` (a few
milliseconds) leaves a message that *was* delivered in `sending`; after the lease it
is sent again. SMTP has no way to ask a server whether it already took a message, so
this window can be made small, not zero.

Connection reuse. When a worker has several messages for one SMTP server (the
platform relay, or one custom server and login), the job claims up to
`SEND_BATCH_SIZE` of them at once (the ones that are due, same server settings),
removes their now-redundant jobs from the queue and sends them all over one
connection, batch after batch, while its time budget lasts. A burst of Sends of one
address waits for one job (`enqueue_send(..., address_id=...)`); more than a batch
due gets a job for the rest, so several workers can share a backlog.
"""
from __future__ import annotations

import enum
import logging
import random
import re
import secrets
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.utils import getaddresses

from flask import current_app
from sqlalchemy import and_, bindparam, case, exists, func, or_, select, update

from app.blobs import BlobNotFound, blob_store
from app.runtime.live import PublishedAddress, published_address
from app.crypto import SecretUnreadable
from app.extensions import attach_inserted, db
from app.mail.mime import display_address
from app.mail.render import Draft, OutgoingAttachment, QuotedMessage, recipients_for, render_message
from app.mail.smtp import DeliveryError, SendResult, SMTPSession, SMTPSettings, parse_relay_url
from app.mail.tokens import make_message_id
from app.models._types import utcnow
from app.models.auth import User
from app.models.channels import EmailAddress
from app.models.inbox import Attachment, Contact, Conversation, Message, OutgoingMime
from app.units import human_size

log = logging.getLogger(__name__)

SEND_QUEUE = "send"
SEND_JOB = "jobs.send.send_message"


class DeliveryStatus(str, enum.Enum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    RETRYING = "retrying"
    FAILED = "failed"
    BOUNCED = "bounced"  # set by inbound bounce handling (`mark_bounced`)


QUEUED, SENDING, SENT, RETRYING, FAILED, BOUNCED = (s.value for s in DeliveryStatus)

#: States in which a message still waits for delivery (the agent sees "Sending…").
PENDING_STATES = (QUEUED, SENDING, RETRYING)


class CannotSend(ValueError):
    """Nothing was queued; the text says why, in words for the agent."""


class NotRetryable(ValueError):
    """Only a failed outgoing message can be sent again by hand."""


def send_job_id(message_id: int) -> str:
    return f"send-message-{message_id}"


# --- who may send, and through which server ----------------------------------------------------

def sending_address(address_id: int | None) -> PublishedAddress:
    """The live configuration of an address that may send. Raises `CannotSend` with the reason."""
    live = published_address(address_id) if address_id is not None else None
    if live is None:
        row = db.session.get(EmailAddress, address_id) if address_id is not None else None
        if row is None:
            raise CannotSend("This conversation has no email address to send from.")
        if row.archived_at is not None:
            raise CannotSend(f"{row.address} is archived, so it cannot send.")
        if row.published is None:
            raise CannotSend(f"{row.address} has not been published yet, so it cannot send. Publish it first.")
        raise CannotSend(f"{row.address} is disabled, so it cannot send.")
    if not live.can_send:
        raise CannotSend(f"{live.address} is inbound-only, so it cannot send.")
    return live


def transport_settings(sender: PublishedAddress) -> SMTPSettings:
    """The SMTP server an address sends through. Raises `CannotSend` when none is usable.

    Platform-domain addresses share the platform relay (`SMTP_RELAY_URL`); custom-domain
    addresses use their own server, and log in when a password is stored.
    """
    if sender.is_platform:
        url = current_app.config.get("SMTP_RELAY_URL") or ""
        if not url:
            raise CannotSend("Platform-domain addresses send through the platform relay, and none is configured "
                             "(SMTP_RELAY_URL). Ask your administrator.")
        try:
            return parse_relay_url(url)
        except ValueError as exc:
            raise CannotSend(f"The platform relay setting is invalid: {exc}.") from None
    if not sender.outgoing_host or not sender.outgoing_port:
        raise CannotSend(f"{sender.address} has no outgoing (SMTP) server configured.")
    try:
        password = sender.password()
    except SecretUnreadable as exc:
        raise CannotSend(f"The password of {sender.address} cannot be read: {exc}.") from None
    return SMTPSettings(
        host=sender.outgoing_host, port=int(sender.outgoing_port), security=sender.outgoing_security or "starttls",
        username=sender.login if password is not None else None, password=password,
    )


# --- queueing ----------------------------------------------------------------------------------

def _clean_recipients(values, field: str) -> list[str]:
    """Each recipient as `Name <addr>` text; `CannotSend` names the first one that is not an address."""
    out = []
    raw = [v for v in (values or []) if v and v.strip()]
    for name, addr in getaddresses(raw):
        if not addr and not name:
            continue
        local, at, domain = addr.rpartition("@")
        if local and not local.isascii():
            raise CannotSend(f"{field}: “{addr}” has non-ASCII characters before the @; such addresses "
                             "cannot be sent to yet.")
        try:
            if not at or not local or not domain:
                raise ValueError(addr)
            domain = domain.encode("idna").decode("ascii")  # internationalised domains as punycode
            out.append(str(Address(display_name=name, addr_spec=f"{local}@{domain}")))
        except (ValueError, IndexError, UnicodeError, HeaderParseError):
            raise CannotSend(f"{field}: “{addr or name}” is not an email address.") from None
    return out


def _bracket(message_id: str | None) -> str | None:
    if not message_id:
        return None
    message_id = message_id.strip()
    return message_id if message_id.startswith("<") else f"<{message_id}>"


@dataclass(frozen=True)
class _Thread:
    """What queueing needs of a conversation (and of the author), read in one query."""

    id: int
    address_id: int | None
    token: str
    subject: str
    contact_id: int | None
    contact_email: str | None
    contact_name: str | None
    default_parent_id: int | None  # what a reply answers unless told: see `_DEFAULT_PARENT`
    author_name: str | None


def _run(statement, params: dict):
    """Run a prebuilt Core statement on the session's connection (its transaction), without the ORM layer.

    For the queueing path's column selects, its UPDATE and its INSERT of the bytes: through
    `Session.execute` each one costs ~0.06 ms more than the statement itself.
    """
    return db.session.connection().execute(statement, params)


# The statements of the queueing path, built once: building a SELECT costs more than running it
# (SQLAlchemy's construction and cache-key walk ~0.25 ms, the query ~0.03 ms on SQLite).
_DEFAULT_PARENT = (
    # The customer's latest message, else our latest one with a Message-ID: one indexed query.
    select(Message.id).where(Message.conversation_id == Conversation.id,
                             or_(Message.direction == "in",
                                 and_(Message.direction == "out", Message.message_id.is_not(None))))
    .order_by(case((Message.direction == "in", 0), else_=1), Message.created_at.desc(), Message.id.desc()).limit(1)
    .correlate(Conversation).scalar_subquery())
_THREAD = (select(Conversation.id, Conversation.address_id, Conversation.token, Conversation.subject,
                  Conversation.contact_id, Contact.email, Contact.name, _DEFAULT_PARENT,
                  select(User.name).where(User.id == bindparam("author_id")).scalar_subquery())
           .outerjoin(Contact, Contact.id == Conversation.contact_id).where(Conversation.id == bindparam("id")))
_PARENT = select(Message.id, Message.conversation_id, Message.message_id, Message.references, Message.created_at,
                 Message.from_addr, Message.html, Message.text).where(Message.id == bindparam("id"))
_THREAD_IDS = (select(Message.message_id).where(Message.conversation_id == bindparam("conversation_id"),
                                                Message.message_id.is_not(None))
               .order_by(Message.created_at, Message.id))
_EARLIER_IDS = _THREAD_IDS.where(Message.id != bindparam("parent_id"), Message.created_at <= bindparam("before"))
_INTRODUCED = select(exists(
    select(Message.id).join(Conversation, Message.conversation_id == Conversation.id)
    .where(Conversation.contact_id == bindparam("contact_id"), Message.address_id == bindparam("address_id"),
           Message.direction == "out")))
_TOUCH_CONVERSATION = Conversation.__table__.update().where(Conversation.__table__.c.id == bindparam("cid"))


def _thread(conversation_id: int, author_id: int | None = None) -> _Thread:
    db.session.flush()  # the statements below bypass autoflush: the caller's pending rows first
    row = _run(_THREAD, {"id": conversation_id, "author_id": author_id}).first()
    if row is None:
        raise LookupError(f"no conversation {conversation_id}")
    return _Thread(*row)


def thread_headers(conversation_id: int, parent) -> tuple[str | None, list[str]]:
    """(In-Reply-To, References) of a message answering `parent` in the conversation.

    `parent` is a `Message` or a row with its `id`, `message_id`, `references` and
    `created_at`. References is the parent's References plus its Message-ID
    (RFC 5322); when the parent has none we rebuild the chain from the
    conversation's Message-IDs. The renderer caps the list.
    """
    if parent is None or not parent.message_id:
        chain = [_bracket(m) for m in _run(_THREAD_IDS, {"conversation_id": conversation_id}).scalars() if m]
        return (chain[-1] if chain else None), chain
    if parent.references and parent.references.strip():
        refs = [_bracket(r) for r in parent.references.split()]
    else:
        refs = [_bracket(m) for m in _run(_EARLIER_IDS, {
            "conversation_id": conversation_id, "parent_id": parent.id, "before": parent.created_at}).scalars() if m]
    parent_id = _bracket(parent.message_id)
    refs = [r for r in refs if r != parent_id] + [parent_id]
    seen, unique = set(), []
    for r in refs:
        if r not in seen:
            seen.add(r)
            unique.append(r)
    return parent_id, unique


_REPLY_PREFIX = re.compile(r"^\s*(re|aw|sv|antw|vs|odp|r)\s*(\[\d+\])?\s*:", re.IGNORECASE)


def reply_subject(subject: str) -> str:
    subject = (subject or "").strip()
    return subject if _REPLY_PREFIX.match(subject) else f"Re: {subject}".rstrip()


def _is_introduction(sender: PublishedAddress, thread: _Thread, recipients: list[str]) -> bool:
    """The first message from this address to this customer, and the customer is a recipient."""
    if not sender.send_vcard or thread.contact_id is None:
        return False
    if thread.contact_email.lower() not in {a.lower() for _, a in getaddresses(recipients)}:
        return False
    return not _run(_INTRODUCED, {"contact_id": thread.contact_id, "address_id": sender.id}).scalar()


def queue_message(conversation_id: int, *, to: list[str], subject: str, body_html: str,
                  cc: list[str] = (), bcc: list[str] = (), attachments: list[OutgoingAttachment] = (),
                  address_id: int | None = None, author_id: int | None = None,
                  parent_id: int | None = None, quote: bool = False, automatic: bool = False) -> Message:
    """Render and queue one outgoing message of a conversation; returns the new `Message` (flushed).

    `address_id` defaults to the conversation's address; `parent_id` is the message
    answered (threading headers and, with `quote`, the quoted history). The caller
    commits, then calls `enqueue_send(message.id)`.

    Raises `LookupError` (no such conversation or parent) and `CannotSend` (the
    address may not send, no SMTP server, no or bad recipients).
    """
    return _queue(_thread(conversation_id, author_id), to=to, cc=cc, bcc=bcc, subject=subject, body_html=body_html,
                  attachments=attachments, address_id=address_id, author_id=author_id, parent_id=parent_id,
                  quote=quote, automatic=automatic)


def _queue(thread: _Thread, *, to, cc, bcc, subject, body_html, attachments, address_id, author_id, parent_id,
           quote, automatic) -> Message:
    # Reads are column selects, not ORM loads: this is on the path of every reply an agent sends.
    sender = sending_address(address_id if address_id is not None else thread.address_id)
    transport_settings(sender)  # refuse now, not in the worker, when no server is usable
    to, cc, bcc = _clean_recipients(to, "To"), _clean_recipients(cc, "Cc"), _clean_recipients(bcc, "Bcc")
    if not (to or cc or bcc):
        raise CannotSend("Add at least one recipient.")
    limit = current_app.config["SEND_MAX_RECIPIENTS"]
    if len(to) + len(cc) + len(bcc) > limit:
        raise CannotSend(f"This message has {len(to) + len(cc) + len(bcc)} recipients; one message may have at "
                         f"most {limit} (To, Cc and Bcc together).")
    parent = None
    if parent_id is not None:
        parent = _run(_PARENT, {"id": parent_id}).first()
        if parent is None or parent.conversation_id != thread.id:
            raise LookupError(f"no message {parent_id} in conversation {thread.id}")
    in_reply_to, references = thread_headers(thread.id, parent)

    files = list(attachments)
    if _is_introduction(sender, thread, to + cc):
        from app.mail.vcard import contact_card_attachment

        files.append(contact_card_attachment(sender.display_name, sender.address,
                                             current_app.config.get("ORGANISATION_NAME", "")))
    quoted = None
    if quote and parent is not None:
        from app.mail.html import text_to_html

        quoted = QuotedMessage(parent.from_addr, parent.created_at, parent.html or text_to_html(parent.text),
                               text=parent.text or None)
    now = utcnow()
    draft = Draft(
        to=to, cc=cc, bcc=bcc, subject=subject or "", body_html=body_html or "", quoted=quoted, attachments=files,
        # On the sender's own domain (the platform domain for platform addresses): a Message-ID whose
        # domain matches From is what receiving filters expect; threading reads only the token.
        message_id=make_message_id(thread.token, sender.address.rpartition("@")[2].lower()
                                   or current_app.config["PLATFORM_MAIL_DOMAIN"]),
        in_reply_to=in_reply_to, references=references, automatic=automatic, date=now,
        placeholders={
            "customer_name": thread.contact_name or "",
            "agent_name": thread.author_name or "",
            "conversation_reference": f"#{thread.id}",
        },
    )
    rendered = render_message(sender, draft)
    limit = current_app.config["SEND_MAX_MESSAGE_BYTES"]
    if len(rendered.raw) > limit:
        raise CannotSend(f"This message is {human_size(len(rendered.raw))} with its attachments encoded for mail; "
                         f"the limit is {human_size(limit)}. Remove an attachment or send it in several messages.")
    _to, _cc, all_bcc, reply_to = recipients_for(sender, draft)
    values = dict(
        conversation_id=thread.id, address_id=sender.id, direction="out", message_id=draft.message_id,
        in_reply_to=in_reply_to, references=" ".join(references) or None, from_addr=rendered.from_header,
        to_addrs=", ".join(to), cc_addrs=", ".join(cc), bcc_addrs=", ".join(all_bcc), reply_to=reply_to or "",
        subject=draft.subject, text=rendered.text, html=rendered.html,
        delivery_status=QUEUED, delivery_attempts=0, next_attempt_at=now, author_id=author_id, created_at=now,
        no_auto_reply=False,
    )
    return _insert_message(values, rendered.raw, files, thread.id, now)


_INSERT_MIME = OutgoingMime.__table__.insert()
_INSERT_MESSAGE = Message.__table__.insert()


def _insert_message(values: dict, raw: bytes, files: list[OutgoingAttachment], conversation_id: int,
                    now: datetime) -> Message:
    """Insert the row (Core, then attached as a persistent `Message`), its bytes and its attachments."""
    conversation = db.session.identity_map.get(db.session.identity_key(Conversation, conversation_id))
    if conversation is not None:  # the caller holds it: keep its state in step
        conversation.last_message_at = now
    else:
        _run(_TOUCH_CONVERSATION, {"cid": conversation_id, "last_message_at": now})
    message_id = _run(_INSERT_MESSAGE, values).inserted_primary_key[0]
    _run(_INSERT_MIME, {"message_id": message_id, "data": raw})
    message = Message(id=message_id, **values)
    attach_inserted(db.session(), message)
    if files:
        store = blob_store()
        db.session.add_all(Attachment(
            message_id=message_id, filename=f.filename, content_type=f.content_type.split(";")[0].strip(),
            size=len(f.data), content_id=f.content_id, inline=bool(f.content_id), sha256=store.put(f.data))
            for f in files)
        db.session.flush()
    return message


_MIME = select(OutgoingMime.data).where(OutgoingMime.message_id == bindparam("id"))


def outgoing_bytes(message_id: int, raw_sha256: str | None = None) -> bytes | None:
    """The bytes to send for an outgoing message, or None when they are gone.

    From `outgoing_mime`; a message queued before that table existed has them in the
    blob store under `raw_sha256`.
    """
    data = _run(_MIME, {"id": message_id}).scalar()
    if data is not None:
        return bytes(data)
    if raw_sha256:
        try:
            return blob_store().get(raw_sha256)
        except BlobNotFound:
            return None
    return None


def send_reply(conversation_id: int, author_id: int | None, body_html: str, *, to: list[str] | None = None,
               cc: list[str] = (), bcc: list[str] = (), subject: str | None = None,
               attachments: list[OutgoingAttachment] = (), parent_id: int | None = None, quote: bool = True,
               automatic: bool = False, address_id: int | None = None) -> Message:
    """Queue a reply in a conversation, with a reply's defaults; returns the `Message` (flushed).

    Defaults: answers the customer's latest message (or the latest message with a
    Message-ID), to the customer, subject "Re: <conversation subject>", quoting
    the answered message. The caller commits, then calls `enqueue_send(message.id)`.
    Raises `LookupError` and `CannotSend` like `queue_message`.
    """
    thread = _thread(conversation_id, author_id)
    if parent_id is None:
        parent_id = thread.default_parent_id
    if to is None:
        if thread.contact_email is None:
            raise CannotSend("This conversation has no customer to reply to.")
        to = [display_address(thread.contact_name or "", thread.contact_email)]
    if subject is None:
        subject = reply_subject(thread.subject)
    return _queue(thread, to=to, cc=cc, bcc=bcc, subject=subject, body_html=body_html, attachments=attachments,
                  address_id=address_id, author_id=author_id, parent_id=parent_id, quote=quote, automatic=automatic)


def retry_message(message_id: int) -> Message:
    """Put a failed message back in the queue (by hand). The caller commits, then `enqueue_send`.

    Raises `LookupError`, `NotRetryable` (not an outgoing message that failed) and
    `CannotSend` (its address can no longer send).
    """
    message = db.session.get(Message, message_id)
    if message is None or message.direction != "out":
        raise LookupError(f"no outgoing message {message_id}")
    if message.delivery_status != FAILED:
        raise NotRetryable("Only a message that failed can be sent again.")
    transport_settings(sending_address(message.address_id))
    message.delivery_status = QUEUED
    message.delivery_attempts = 0
    message.next_attempt_at = utcnow()
    message.delivery_error = None
    message.smtp_code = None
    message.smtp_reply = None
    return message


def mark_bounced(message_id: int, diagnostic: str) -> Message | None:
    """Inbound bounce handling: a DSN says this sent message did not arrive. The caller commits.

    Returns the message, or None when it is not one of our outgoing messages.
    """
    message = db.session.get(Message, message_id)
    if message is None or message.direction != "out":
        return None
    message.delivery_status = BOUNCED
    message.delivery_error = (diagnostic or "The recipient's server returned the message.").strip()[:4000]
    return message


# --- enqueueing ----------------------------------------------------------------------------------

def _job_timeout() -> int:
    # Shorter than the lease: RQ kills a stuck job before anyone else may claim its messages.
    return max(1, int(current_app.config["SEND_LEASE_SECONDS"] * 0.9))


#: "A send job of this address is waiting in the queue" (value: its message id). See `enqueue_send`.
WAITING_KEY = "pigeonhole:send:waiting:{address_id}"
#: How long that mark may outlive a job lost with Redis: the sweep leaves the address alone meanwhile.
WAITING_TTL_SECONDS = 60


def enqueue_send(message_id: int, *, address_id: int | None = None, stale_started: bool = False):
    """Enqueue the send job of a message (`send-message-<id>`); call after the commit.

    A pending job of that id makes this a no-op (returns None). A finished or failed
    job of that id (kept by RQ for a while), or a "queued" one that is no longer in the
    queue, is replaced; so is a "started" one when `stale_started` says its message's
    lease has expired (its worker died).

    `address_id` (a Send passes its address) coalesces a burst: while a send job of that
    address is still waiting in the queue, nothing is enqueued (returns None), because
    that job, once it starts, sends every message of its server that is due then, this
    one included. The mark (`WAITING_KEY`, set with NX) is removed by the job when it
    starts and by a job that claims its message, each before it looks for due
    messages again, so a message committed before the mark was seen is always found.
    A mark whose job was lost expires after `WAITING_TTL_SECONDS`; the sweep
    (`enqueue_due_messages`) then enqueues the address's due messages.
    """
    from app.queues import redis_connection

    if address_id is None:
        return _enqueue_job(message_id, stale_started)
    connection = redis_connection()
    key = WAITING_KEY.format(address_id=address_id)
    if not connection.set(key, message_id, nx=True, ex=WAITING_TTL_SECONDS):
        return None  # the waiting job of this address will send it
    job = None
    try:
        job = _enqueue_job(message_id, stale_started)
    finally:
        if job is None:
            connection.delete(key)  # no job of ours is waiting: do not hold the others back
    return job


def _waiting_keys(address_ids) -> list[str]:
    """The waiting marks' keys of these addresses, each once."""
    return [WAITING_KEY.format(address_id=a) for a in sorted({a for a in address_ids if a is not None})]


def _clear_waiting(address_ids) -> None:
    """Remove the waiting marks of these addresses (the caller looks for due messages next)."""
    from redis.exceptions import RedisError

    from app.queues import redis_connection

    keys = _waiting_keys(address_ids)
    if not keys:
        return
    try:
        redis_connection().delete(*keys)
    except RedisError:
        log.warning("could not clear the waiting marks of %s; they expire by themselves", keys, exc_info=True)


def _enqueue_job(message_id: int, stale_started: bool):
    from rq.exceptions import DuplicateJobError, NoSuchJobError
    from rq.job import Job, JobStatus

    from app.queues import get_queue, redis_connection

    connection = redis_connection()
    queue = get_queue(SEND_QUEUE, connection)
    job_id = send_job_id(message_id)
    options = dict(job_id=job_id, unique=True, result_ttl=0, failure_ttl=24 * 3600, job_timeout=_job_timeout())
    for _ in range(3):
        try:
            return queue.enqueue(SEND_JOB, message_id, **options)
        except DuplicateJobError:
            try:
                job = Job.fetch(job_id, connection=connection, serializer=queue.serializer)
                status = job.get_status(refresh=False)
            except NoSuchJobError:
                continue  # it just finished; enqueue again
            if status in (JobStatus.SCHEDULED, JobStatus.DEFERRED):
                return None
            if status == JobStatus.QUEUED and connection.lpos(queue.key, job_id) is not None:
                return None  # waiting in the queue (a "queued" job missing from it is a leftover: replace it)
            if status == JobStatus.STARTED and not stale_started:
                return None
            job.delete()
    return None


def enqueue_due_messages(limit: int = 1000) -> int:
    """Cron: enqueue the send job of every message that is due; returns how many were enqueued.

    Due: queued or retrying with `next_attempt_at` passed (also catches a job lost
    with Redis), or `sending` whose lease expired (its worker died). Queued and
    retrying messages of an address whose send job is waiting (`WAITING_KEY`) are
    left to that job.
    """
    from app.queues import redis_connection

    now = utcnow()
    rows = db.session.execute(
        select(Message.id, Message.delivery_status, Message.address_id)
        .where(Message.direction == "out", _claimable(now))
        .order_by(Message.next_attempt_at, Message.id).limit(limit)).all()
    db.session.rollback()  # no transaction open while we talk to Redis
    addresses = sorted({r.address_id for r in rows if r.address_id is not None})
    marks = redis_connection().mget(_waiting_keys(addresses)) if addresses else []
    waiting = {a for a, mark in zip(addresses, marks) if mark is not None}
    enqueued = 0
    for message_id, status, address_id in rows:
        if status != SENDING and address_id in waiting:
            continue
        if enqueue_send(message_id, stale_started=status == SENDING) is not None:
            enqueued += 1
    return enqueued


# --- delivery (the send job) -----------------------------------------------------------------------

def _claimable(now: datetime):
    return or_(
        and_(Message.delivery_status.in_((QUEUED, RETRYING)),
             or_(Message.next_attempt_at.is_(None), Message.next_attempt_at <= now)),
        and_(Message.delivery_status == SENDING,
             or_(Message.claimed_until.is_(None), Message.claimed_until < now)),
    )


def _claim(ids: list[int], token: str) -> list[int]:
    """Claim these messages for us (those still claimable) and commit; returns the ids we got."""
    if not ids:
        return []
    now = utcnow()
    lease = timedelta(seconds=current_app.config["SEND_LEASE_SECONDS"])
    db.session.execute(
        update(Message)
        .where(Message.id.in_(ids), Message.direction == "out", _claimable(now))
        .values(delivery_status=SENDING, claim_token=token, claimed_until=now + lease,
                delivery_attempts=Message.delivery_attempts + 1),
        execution_options={"synchronize_session": False},
    )
    got = set(db.session.scalars(select(Message.id).where(Message.id.in_(ids), Message.claim_token == token)))
    db.session.commit()
    return [i for i in ids if i in got]


def backoff_seconds(attempts: int) -> float:
    """Wait before attempt `attempts + 1`: base × 2^(attempts-1), capped, ±10 % jitter."""
    cfg = current_app.config
    delay = min(cfg["SEND_RETRY_BASE_SECONDS"] * 2 ** max(0, attempts - 1), cfg["SEND_RETRY_MAX_SECONDS"])
    return delay * random.uniform(0.9, 1.1)


# A Core UPDATE built once, its SET clause made of the columns passed: it runs once per message sent.
_FINISH = Message.__table__.update().where(Message.__table__.c.id == bindparam("finish_id"),
                                           Message.__table__.c.claim_token == bindparam("finish_token"))


def _finish(message_id: int, token: str, **values) -> bool:
    """Write an outcome if the claim is still ours (it is, unless our lease ran out)."""
    values.update(claim_token=None, claimed_until=None, last_attempt_at=utcnow(),
                  finish_id=message_id, finish_token=token)
    result = _run(_FINISH, values)
    if result.rowcount != 1:
        log.warning("message %s: our claim was taken over before the outcome was recorded", message_id)
        return False
    return True


def _record_sent(message_id: int, token: str, result: SendResult) -> None:
    refused = "; ".join(f"{addr}: {code} {text}" for addr, (code, text) in result.refused.items())
    _finish(message_id, token, delivery_status=SENT, sent_at=utcnow(), smtp_code=result.code,
            smtp_reply=result.text[:4000], next_attempt_at=None,
            delivery_error=f"Not accepted for {refused}"[:4000] if refused else None)


def _record_failure(message_id: int, token: str, attempts: int, error: DeliveryError) -> str:
    limit = current_app.config["SEND_MAX_ATTEMPTS"]
    words = str(error)[:4000]
    if error.temporary and attempts < limit:
        status, next_at = RETRYING, utcnow() + timedelta(seconds=backoff_seconds(attempts))
    else:
        status, next_at = FAILED, None
        if error.temporary:
            words = f"{words} (gave up after {attempts} attempts)"[:4000]
    _finish(message_id, token, delivery_status=status, next_attempt_at=next_at, smtp_code=error.code,
            smtp_reply=error.text[:4000] if error.code else None, delivery_error=words)
    return status


def _due_same_server(settings: SMTPSettings, since: datetime, limit: int, cache: dict) -> list[tuple[int, int]]:
    """(id, address id) of other due messages that go through the same server with the same login.

    Messages this job already tried (an attempt recorded at or after `since`, its start)
    are left out, so a retry that is due at once is not tried again by the same job.
    """
    now = utcnow()
    rows = db.session.execute(
        select(Message.id, Message.address_id).where(
            Message.direction == "out", _claimable(now),
            or_(Message.last_attempt_at.is_(None), Message.last_attempt_at < since))
        .order_by(Message.next_attempt_at, Message.id).limit(limit * 4)).all()
    out = []
    for message_id, address_id in rows:
        if _settings_for(address_id, cache) == settings:
            out.append((message_id, address_id))
            if len(out) >= limit:
                break
    return out


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
    claimed = _claim([message_id for message_id, _ in due], token)
    if claimed:
        got = set(claimed)
        _drop_jobs(claimed, [address_id for message_id, address_id in due if message_id in got])
    return claimed


def _drop_jobs(message_ids: list[int], address_ids: list[int] = ()) -> None:
    """Remove the queued (not yet started) send jobs of messages we claimed: they would find nothing to do.

    Also removes the waiting marks of their addresses (see `enqueue_send`).
    """
    if not message_ids:
        return
    from redis.exceptions import RedisError
    from rq.job import Job

    from app.queues import get_queue, redis_connection

    try:
        connection = redis_connection()
        queue = get_queue(SEND_QUEUE, connection)
        pipe = connection.pipeline(transaction=False)
        for message_id in message_ids:
            pipe.lrem(queue.key, 1, send_job_id(message_id))
        removed = pipe.execute()
        pipe = connection.pipeline(transaction=False)
        for message_id, count in zip(message_ids, removed):
            if count:
                pipe.delete(Job.key_for(send_job_id(message_id)))
        marks = _waiting_keys(address_ids)
        if marks:
            pipe.delete(*marks)
        pipe.execute()
    except RedisError:
        log.warning("could not remove the redundant send jobs; they will find nothing to do", exc_info=True)


def _fail_unsendable(message_id: int, reason: str) -> dict:
    token = secrets.token_hex(16)
    if not _claim([message_id], token):
        return {"claimed": 0}
    _finish(message_id, token, delivery_status=FAILED, next_attempt_at=None, delivery_error=reason)
    db.session.commit()
    log.info("message %s failed: %s", message_id, reason)
    return {"claimed": 1, "failed": 1}


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
    wait for an fsync (~0.3-1 ms here), and on SQLite the worker holds the write lock for
    microseconds, so agents' Sends do not queue behind it.
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
    with _commits_without_waiting_for_disk():
        return _deliver(message_id)


def _deliver(message_id: int) -> dict:
    cfg = current_app.config
    row = db.session.execute(select(Message.address_id, Message.direction).where(Message.id == message_id)).first()
    if row is None or row.direction != "out":
        db.session.rollback()
        return {"claimed": 0}
    # From here on this job finds every due message of its server (see `enqueue_send`).
    _clear_waiting([row.address_id])
    try:
        settings = transport_settings(sending_address(row.address_id))
    except CannotSend as exc:
        return _fail_unsendable(message_id, str(exc))
    db.session.rollback()

    token = secrets.token_hex(16)
    cache: dict = {}
    batch_size = max(1, cfg["SEND_BATCH_SIZE"])
    budget = time.monotonic() + _job_timeout() / 2  # start no message after this
    started = utcnow()
    # Its own message first, if nobody else holds it; then the others due for this server.
    batch = _claim([message_id], token)
    batch += _claim_due(settings, started, batch_size - len(batch), cache, token)
    if not batch:
        return {"claimed": 0}
    counts = {"claimed": len(batch), SENT: 0, RETRYING: 0, FAILED: 0}
    session = SMTPSession(settings, context=_tls_context() if settings.security != "none" else None,
                          timeout=cfg["SMTP_TIMEOUT_SECONDS"],
                          helo_name=cfg.get("SMTP_HELO_NAME") or cfg["PLATFORM_MAIL_DOMAIN"])
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
        enqueue_send(other)
    if not stop and not released and batch:
        # Out of time after a full batch: hand what is still due to a new job.
        rest = _due_same_server(settings, started, 1, cache)
        db.session.rollback()
        if rest:
            enqueue_send(rest[0][0])
    counts["connections"] = session.connections
    log.info("send job for message %s via %s: %s", message_id, settings.describe(), counts)
    return counts


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
        enqueue_send(due[room][0])
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
            _release(rest, token)
            return True, rest
        row = rows[message_id]
        if row.delivery_attempts > current_app.config["SEND_MAX_ATTEMPTS"]:
            # Claimed again and again without an outcome: its worker keeps dying while sending it.
            _finish(message_id, token, delivery_status=FAILED, next_attempt_at=None, delivery_error=(
                f"Gave up after {row.delivery_attempts - 1} attempts: the worker sending it stopped each time "
                "(see the worker log)."))
            db.session.commit()
            counts[FAILED] += 1
            continue
        sender = _sender_address(row.address_id, cache)
        recipients = _envelope(row)
        data = bytes(row.data) if row.data is not None else outgoing_bytes(message_id, row.raw_sha256)
        db.session.rollback()  # no transaction open while we talk to the server
        if data is None:
            _finish(message_id, token, delivery_status=FAILED, next_attempt_at=None,
                    delivery_error="The rendered message is missing; write it again.")
            db.session.commit()
            counts[FAILED] += 1
            continue
        try:
            result = session.send(sender, recipients, data)
        except DeliveryError as error:
            counts[_record_failure(message_id, token, row.delivery_attempts, error)] += 1
            if error.session:
                # The server is unreachable or refuses us: the same answer holds for the rest of the batch.
                for other in batch[position + 1:]:
                    counts[_record_failure(other, token, rows[other].delivery_attempts, error)] += 1
                db.session.commit()
                log.info("message %s: %s", message_id, error)
                return True, []
            db.session.commit()
            log.info("message %s: %s", message_id, error)
            continue
        _record_sent(message_id, token, result)
        db.session.commit()
        counts[SENT] += 1
    return False, []


def _release(message_ids: list[int], token: str) -> None:
    """Give back claimed messages that were not tried: as they were, due now, the attempt not counted."""
    db.session.execute(
        update(Message).where(Message.id.in_(message_ids), Message.claim_token == token)
        .values(delivery_status=case((Message.delivery_attempts <= 1, QUEUED), else_=RETRYING),
                delivery_attempts=Message.delivery_attempts - 1, claim_token=None, claimed_until=None),
        execution_options={"synchronize_session": False})
    db.session.commit()


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


def _tls_context():
    from app.runtime.tls import configured_context

    return configured_context()
