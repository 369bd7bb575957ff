"""Mailbox polling around the IMAP and POP3 adapters: scheduling, the lock, errors and backoff.

`schedule_due_polls()` (a cron task) enqueues `jobs.poll.poll_mailbox` for every
published, enabled custom-domain inbound address whose `next_poll_at` is due, with
the deterministic job id `poll-mailbox-{id}`. `poll_address()` (the job, and `flask
mail poll`) takes a Redis lock per address, so one mailbox is never polled twice at
once even when a job is run by hand beside cron; the lock expires
(`POLL_LOCK_SECONDS`, renewed after each batch), so a killed worker delays the
next poll by at most that long.

A poll that fails records `last_error` (never a password), in the plain sentence
Test Connection would say (`app.mail.failures`), and backs off
exponentially (`POLL_INTERVAL * 2**errors`, at most `POLL_MAX_BACKOFF`); one
failing mailbox never stops the others, since each is its own job. One failing for longer
than `MAILBOX_ALERT_MINUTES` is told to admins once, and its recovery too
(`app.runtime.mailbox_alerts`).
`requeue_stale_pending()` and `requeue_stale_flows()` (cron tasks) re-enqueue the ingest of
arrivals and the flow step of messages whose job was lost (a Redis restart, a killed worker, a
machine crash): the database says what is pending, and `enqueue_once` tells a live job from a dead
one (queued but absent from its queue, or started by a worker with no fresh heartbeat).
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

from flask import current_app, has_app_context
from redis.exceptions import LockError, RedisError
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer
from sqlalchemy import select, update

from app.mail.failures import classify, explain
from app.mail.probe import ServerSettings, default_port
from app.runtime.live import PublishedAddress, published_addresses, receiving_address
from app.queues import enqueue, get_queue, live_workers, redis_connection
from app.runtime.imap import poll_imap
from app.runtime.ingest import stale_pending_ids
from app.runtime.ingest_jobs import stale_flow_steps
from app.runtime.mailbox import PollResult
from app.runtime.mailbox_alerts import note_failure, note_success
from app.runtime.pop3 import poll_pop3
from app.transactions import on_commit, outside_transaction
from app.extensions import db
from app.models.channels import MailboxState

log = logging.getLogger(__name__)

FOLDER = "INBOX"
POP3_FOLDER = "POP3"  # MailboxState key for a POP3 mailbox (POP3 has one folder)


class PollLockLost(RuntimeError):
    """This poll's lock expired (a batch took longer than POLL_LOCK_SECONDS) and another poll took it."""


class NotPollable(LookupError):
    """The address is not a published, enabled, inbound custom-domain mailbox with IMAP or POP3."""


def pollable(address: PublishedAddress | None) -> bool:
    return (address is not None and address.can_receive and not address.is_platform
            and address.incoming_protocol in ("imap", "pop3") and bool(address.incoming_host))


def mailbox_state(address_id: int, folder: str) -> MailboxState:
    state = db.session.scalar(select(MailboxState).where(MailboxState.address_id == address_id,
                                                         MailboxState.folder == folder))
    if state is None:
        state = MailboxState(address_id=address_id, folder=folder, error_count=0)
        db.session.add(state)
        db.session.flush()
    return state


def poll_address(address_id: int) -> PollResult:
    """Poll one mailbox now (synchronously). Never raises for mailbox or network errors: see `error`.

    Raises `NotPollable` when the address is not a live IMAP/POP3 inbound address.
    """
    address = receiving_address(address_id)  # a disabled address that holds new mail is polled to hold it
    if not pollable(address):
        raise NotPollable(f"address {address_id} is not a published, enabled IMAP/POP3 inbound address")
    result = PollResult(address=address.address, protocol=address.incoming_protocol)
    lock = redis_connection().lock(poll_lock_name(address_id), timeout=current_app.config["POLL_LOCK_SECONDS"])
    if not lock.acquire(blocking=False):
        result.locked = True
        return result
    folder = FOLDER if address.incoming_protocol == "imap" else POP3_FOLDER
    now = datetime.now(timezone.utc)
    notice = None  # a mail for the admins, sent after the commit (app.runtime.mailbox_alerts)
    try:
        state = mailbox_state(address_id, folder)
        state.last_poll_at = now
        db.session.commit()

        def keepalive() -> None:
            """Renew the lock before each batch; stop when it was lost (another poller has the mailbox)."""
            try:
                lock.reacquire()
            except LockError:
                raise PollLockLost(f"the poll lock of {address.address} expired and was taken over") from None

        if address.incoming_protocol == "imap":
            poll_imap(address, state, result, keepalive)
        else:
            poll_pop3(address, state, result, keepalive)
        done = datetime.now(timezone.utc)
        state.last_success_at = done
        state.last_error = None
        state.error_count = 0
        state.next_poll_at = done + timedelta(seconds=current_app.config["POLL_INTERVAL"])
        notice = note_success(address, state, done)
        db.session.commit()
    except Exception as exc:  # noqa: BLE001 - recorded on the mailbox; the next poll retries
        db.session.rollback()
        result.error = describe_error(exc, address)
        # Not the server's doing: keep the traceback for whoever fixes it.
        log.log(logging.ERROR if classify(exc)[0] == "internal_error" else logging.WARNING,
                "poll of %s failed: %s", address.address, result.error,
                exc_info=classify(exc)[0] == "internal_error")
        state = mailbox_state(address_id, folder)
        state.error_count = (state.error_count or 0) + 1
        state.last_error = result.error
        backoff = min(current_app.config["POLL_INTERVAL"] * 2 ** state.error_count,
                      current_app.config["POLL_MAX_BACKOFF"])
        state.next_poll_at = datetime.now(timezone.utc) + timedelta(seconds=backoff)
        notice = note_failure(address, state, result.error, datetime.now(timezone.utc))
        db.session.commit()
    finally:
        try:
            lock.release()
        except (RedisError, Exception):  # noqa: BLE001 - expired already
            pass
    if notice is not None:
        notice()
    return result


def poll_soon(address_ids) -> list[int]:
    """Forget the error backoff of these mailboxes and poll them as soon as the caller commits.

    For Publish (new settings deserve a try now, not after the old backoff of up to
    `POLL_MAX_BACKOFF`) and the "Poll now" buttons. Addresses that are not live
    IMAP/POP3 mailboxes (after the caller's changes) are left out; returns the others.
    The poll job is enqueued after the commit, with its usual deterministic id, so a
    poll already queued is not doubled.
    """
    due = [i for i in address_ids if pollable(receiving_address(i))]
    if due:
        db.session.execute(update(MailboxState).where(MailboxState.address_id.in_(due))
                           .values(error_count=0, next_poll_at=None))
    for address_id in due:
        on_commit(enqueue_once, "poll", "jobs.poll.poll_mailbox", address_id, job_id=f"poll-mailbox-{address_id}",
                  lock_name=poll_lock_name(address_id))
    return due


def poll_now(address_id: int) -> None:
    """The "Poll now" button: `poll_soon` for one mailbox. Raises `NotPollable` with a sentence for admins."""
    if not poll_soon([address_id]):
        raise NotPollable("This address does not poll a mailbox now: it is not published, disabled, outbound-only, "
                          "or has no incoming server. Publish it first.")


def poll_lock_name(address_id: int) -> str:
    return f"pigeonhole:poll-lock:{address_id}"


def idle_heartbeat_name(address_id: int) -> str:
    """The key a `flask mail idle` holder keeps alive while the mailbox's IDLE connection is healthy."""
    return f"pigeonhole:idle-heartbeat:{address_id}"


def idle_healthy(address_ids: list[int]) -> set[int]:
    """The mailboxes among `address_ids` whose IDLE connection is healthy now (their heartbeat lives)."""
    if not address_ids:
        return set()
    pipe = redis_connection().pipeline(transaction=False)
    for address_id in address_ids:
        pipe.exists(idle_heartbeat_name(address_id))
    return {address_id for address_id, alive in zip(address_ids, pipe.execute()) if alive}


def describe_error(exc: BaseException, address: PublishedAddress | None = None) -> str:
    """A plain, secret-free sentence for admins, the same words Test Connection uses (servers' own words kept)."""
    where = None
    if address is not None and address.incoming_protocol in ("imap", "pop3"):
        security = (address.incoming_security or "ssl").lower()
        port = address.incoming_port or default_port(address.incoming_protocol, security)
        where = ServerSettings(address.incoming_protocol, address.incoming_host or "?", port, security).describe()
    seconds = current_app.config["MAIL_TIMEOUT"] if has_app_context() else None
    return explain(exc, where, seconds=seconds)[:500]


# --- cron tasks ---------------------------------------------------------------------------------

def schedule_due_polls(now: datetime | None = None) -> list[int]:
    """Enqueue a poll for each due mailbox; returns the address ids enqueued.

    A mailbox whose IDLE connection is healthy (`flask mail idle` keeps its heartbeat)
    is polled only as a safety net: `IDLE_POLL_INTERVAL` after its last poll (IDLE's
    own fetches are polls too), never earlier than its `next_poll_at`.
    """
    now = now or datetime.now(timezone.utc)
    live = [(address.id, address.incoming_protocol) for address in published_addresses("custom", holding=True)
            if pollable(address)]
    db.session.rollback()  # only reads: no transaction open while we talk to Redis
    pushed = idle_healthy([address_id for address_id, protocol in live if protocol == "imap"])
    idle_interval = timedelta(seconds=current_app.config["IDLE_POLL_INTERVAL"])
    due_ids = []
    for address_id, protocol in live:
        folder = FOLDER if protocol == "imap" else POP3_FOLDER
        row = db.session.execute(select(MailboxState.next_poll_at, MailboxState.last_poll_at).where(
            MailboxState.address_id == address_id, MailboxState.folder == folder)).first()
        due = row.next_poll_at if row is not None else None
        if address_id in pushed and row is not None and row.last_poll_at is not None:
            due = max(due or now, row.last_poll_at + idle_interval)
        if due is None or due <= now:
            due_ids.append(address_id)
    db.session.rollback()
    return [address_id for address_id in due_ids
            if outside_transaction(enqueue_once, "poll", "jobs.poll.poll_mailbox", address_id,
                                   job_id=f"poll-mailbox-{address_id}", lock_name=poll_lock_name(address_id))]


def requeue_stale_pending() -> list[int]:
    """Re-enqueue ingest for arrivals still pending after `INGEST_RETRY_SECONDS`."""
    stale = stale_pending_ids(current_app.config["INGEST_RETRY_SECONDS"])
    db.session.rollback()  # only reads
    return [raw_id for raw_id in stale
            if outside_transaction(enqueue_once, "ingest", "jobs.ingest.ingest_raw", raw_id,
                                   job_id=f"ingest-raw-{raw_id}")]


FLOW_SWEEP_KEY = "pigeonhole:cron:flow-sweep"


def requeue_stale_flows() -> list[int]:
    """Re-enqueue the flow step of messages whose flow never ran (`FLOW_RETRY_SECONDS` after they were
    stored, within `FLOW_SWEEP_HOURS`). Runs at most every `FLOW_SWEEP_SECONDS`, whichever cron
    process ticks (a Redis key with an expiry). Message ids queued."""
    cfg = current_app.config
    if not redis_connection().set(FLOW_SWEEP_KEY, 1, nx=True, ex=max(1, cfg["FLOW_SWEEP_SECONDS"])):
        return []
    stale = stale_flow_steps(cfg["FLOW_RETRY_SECONDS"], cfg["FLOW_SWEEP_HOURS"])
    db.session.rollback()  # only reads
    queued = [message_id for conversation_id, message_id in stale
              if outside_transaction(enqueue_once, "flows", "jobs.flows.run_flow", conversation_id, message_id,
                                     job_id=f"flow-message-{message_id}")]
    if queued:
        log.warning("flow step of %d message(s) queued again (their job was lost): %s", len(queued),
                    ", ".join(map(str, queued[:20])))
    return queued


def enqueue_once(queue: str, func: str, *args, job_id: str, lock_name: str | None = None) -> bool:
    """Enqueue unless a live job of that id exists; True when enqueued.

    A job of that id that is not alive (`job_alive`) is deleted first (RQ keeps finished and failed
    jobs around, which would block the id; a dead job's hash would too).
    """
    connection = redis_connection()
    try:
        job = Job.fetch(job_id, connection=connection, serializer=JSONSerializer)
    except Exception:  # noqa: BLE001 - NoSuchJobError or an unreadable job hash
        job = None
    if job is not None:
        if job_alive(job, connection, lock_name):
            return False
        job.delete()
    return enqueue(queue, func, *args, job_id=job_id, result_ttl=0, failure_ttl=24 * 3600) is not None


def job_alive(job: Job, connection, lock_name: str | None = None) -> bool:
    """Whether a job will still run or is running: queued and really in its queue's list, scheduled or
    deferred, or started by a worker whose heartbeat is fresh (and, given `lock_name`, holding it).

    RQ leaves a job "started" when its worker and work horse die together (a machine crash), and
    "queued" when Redis lost the queue's list but kept the job's hash; both are dead.
    """
    status = job.get_status(refresh=False)
    if status == JobStatus.QUEUED:
        return connection.lpos(get_queue(job.origin, connection).key, job.id) is not None
    if status in (JobStatus.SCHEDULED, JobStatus.DEFERRED):
        return True
    if status == JobStatus.STARTED:
        if lock_name is not None and not connection.exists(lock_name):
            return False
        return bool(job.worker_name) and job.worker_name in {w.name for w in live_workers(connection)}
    return False  # finished, failed, stopped, canceled, or unreadable
