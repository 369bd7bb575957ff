"""SMTP ingress for the platform domain (`flask ingress`, aiosmtpd).

The contact center forwards its mailbox to an address on `PLATFORM_MAIL_DOMAIN`;
this server receives that mail. Its promises:

* **RCPT**: only published, enabled, inbound-capable addresses of the platform
  domain are accepted; anything else gets `550 5.1.1` right away (so the sending
  server bounces, instead of us accepting mail nobody reads). A published address
  that is disabled is accepted when it holds new mail ("When disabled: Hold new
  mail": ingest stores it as held, `app.runtime.hold` routes it once enabled), and
  gets `550 5.2.1` saying it is disabled when it refuses it. At most
  `INGRESS_MAX_RECIPIENTS` recipients per message (`452 4.5.3` beyond).
* **Size**: `SIZE` is advertised; a larger `MAIL FROM ... SIZE=` is refused with
  `552` at once, and a DATA stream over the limit is counted but no longer
  buffered, then refused with `552` (aiosmtpd discards the data as it goes).
* **250 means stored**: the raw message and one `pending` `InboundRaw` row per
  accepted address are committed in one database transaction before `250` is
  sent (the raw bytes are staged in the `blobs` table, `BlobStore.stage`; the
  ingest job moves them to the blob store). If the commit fails, the client gets
  `451` and retries later. Only after the 250 is `jobs.ingest.ingest_raw`
  enqueued; if that enqueue is lost (Redis down, the ingress killed right after
  250), cron's `requeue_stale_pending` finds the pending row and enqueues it
  again. Nothing is lost, and the dedupe key keeps it from being stored twice.
* **Group commit**: DATA handlers do not write themselves; they hand their
  message to one writer thread (`GroupWriter`) and wait. The writer takes every
  message waiting at that moment (a group), inserts their raw bytes and rows and
  commits one transaction (the group's one wait for the disk), answers them all
  (250 each once the commit returned, or 451 to every message of the group when
  anything failed: none of its rows exists then, and each sender retries), and
  then enqueues their ingest jobs in one Redis round trip. Under load many
  sessions share one commit, as in PostgreSQL's and InnoDB's group commit; a
  lone message waits for nothing but its own write.
* **Bounded**: concurrent sessions are capped in total and per client address
  (`421` beyond), idle sessions are closed after `INGRESS_IDLE_TIMEOUT_SECONDS`, and
  message data past `INGRESS_SPOOL_THRESHOLD_BYTES` waits in a temporary file, not
  in memory, until the message is complete (`app/runtime/ingress_smtp.py`).
* **STARTTLS** is offered when `INGRESS_TLS_CERT` and `INGRESS_TLS_KEY` are set.

Blocking work (the recipient check in the event loop's thread pool, the writer
in its own thread, each with its own app context) never stalls other sessions.
"""
from __future__ import annotations

import asyncio
import logging
import queue
import socket
import ssl
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import format_datetime

from aiosmtpd.controller import Controller
from flask import Flask
from redis.exceptions import RedisError
from sqlalchemy import insert

from app.blobs import blob_store
from app.extensions import db
from app.models.inbound import InboundRaw, InboundStatus
from app.runtime.ingress_smtp import IngressSMTP, SessionCounter, ensure_spool_dir
from app.runtime.live import published_configuration
from app.queues import enqueue_jobs
from app.runtime.ingest_jobs import ingest_jobs

log = logging.getLogger(__name__)

#: How long a recipient check is trusted (publishing or disabling reaches the ingress within this).
RCPT_CACHE_SECONDS = 5.0
_UNKNOWN = object()  # not in the recipient cache
_DISABLED = -1  # a published address that is disabled and refuses new mail (no row has this id)
#: At most this many messages share one group commit (bounds the writer's memory and a group's latency).
GROUP_MAX_MESSAGES = 64


class IngressHandler:
    """aiosmtpd handler: RCPT check against the published configuration, durable DATA."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.max_recipients = app.config["INGRESS_MAX_RECIPIENTS"]
        self.domain = app.config["PLATFORM_MAIL_DOMAIN"].lower()
        self.hostname = app.config.get("INGRESS_HOSTNAME") or socket.getfqdn()
        self._cache: dict[str, tuple[int | None, float]] = {}
        self._writer: GroupWriter | None = None  # started with the first message

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if len(envelope.rcpt_tos) >= self.max_recipients:
            return "452 4.5.3 Too many recipients"
        try:
            address_id = self._cached(address)
            if address_id is _UNKNOWN:  # only a cache miss costs a trip to the thread pool
                address_id = await asyncio.get_running_loop().run_in_executor(None, self.receiving_address_id, address)
        except Exception:  # noqa: BLE001 - database down: ask the sender to retry
            log.exception("recipient check failed")
            return "451 4.3.0 Temporary failure; try again later"
        if address_id is None:
            return f"550 5.1.1 <{address}>: Recipient address rejected: no such mailbox here"
        if address_id == _DISABLED:
            return f"550 5.2.1 <{address}>: Recipient address rejected: this address is disabled and refuses new mail"
        if not hasattr(envelope, "address_ids"):
            envelope.address_ids = []
        if address_id not in envelope.address_ids:
            envelope.address_ids.append(address_id)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.append(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        data = envelope.original_content
        if data is None:
            data = envelope.content if isinstance(envelope.content, bytes) else (envelope.content or "").encode()
        received = self._received_header(session, envelope)
        try:
            arrival = Arrival(envelope.mail_from, list(getattr(envelope, "address_ids", [])), received + data,
                              client_ip=session.peer[0] if session.peer else None, helo=session.host_name)
            raw_ids = await asyncio.wrap_future(self.writer.submit(arrival))
        except Exception:  # noqa: BLE001 - nothing acknowledged: the sender retries
            log.exception("could not store an incoming message")
            return "451 4.3.0 Temporary failure storing the message; try again later"
        queued = ",".join(str(i) for i in raw_ids)
        log.info("accepted %d bytes from <%s> (%s) for %d address(es), stored as %s", len(data),
                 envelope.mail_from or "", arrival.client_ip or "?", len(raw_ids), queued, extra={"raw_id": queued})
        return f"250 2.0.0 OK queued as {queued}"

    def _received_header(self, session, envelope) -> bytes:
        peer = session.peer[0] if session.peer else "unknown"
        helo = session.host_name or "unknown"
        rcpt = f" for <{envelope.rcpt_tos[0]}>" if len(envelope.rcpt_tos) == 1 else ""
        line = (f"Received: from {helo} ([{peer}])\r\n\tby {self.hostname} (Pigeonhole) with ESMTP{rcpt};\r\n"
                f"\t{format_datetime(datetime.now(timezone.utc))}\r\n")
        return line.encode("ascii", "replace")

    # --- blocking parts, run in the thread pool ---------------------------------------------------

    def receiving_address_id(self, email: str) -> int | None:
        """The id of a live platform inbound address for this recipient (or of a disabled one that holds
        new mail), `_DISABLED` for a disabled one that refuses it, or None.

        Answers are cached for `RCPT_CACHE_SECONDS`, so publishing or disabling an
        address reaches the ingress within that many seconds.
        """
        found = self._cached(email)
        if found is not _UNKNOWN:
            return found
        email = (email or "").strip().lower()
        now = time.monotonic()
        with self.app.app_context():
            try:
                address = published_configuration(email)
            finally:
                db.session.remove()
        address_id = address.id if address is not None and address.is_platform and address.can_receive else None
        if address_id is not None and not (address.enabled or address.holds_mail):
            address_id = _DISABLED
        self._cache[email] = (address_id, now + RCPT_CACHE_SECONDS)
        return address_id

    def _cached(self, email: str) -> int | None | object:
        """The cached answer of `receiving_address_id` (None for another domain), or `_UNKNOWN`."""
        email = (email or "").strip().lower()
        if email.rpartition("@")[2] != self.domain:
            return None
        cached = self._cache.get(email)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        return _UNKNOWN

    @property
    def writer(self) -> GroupWriter:
        if self._writer is None:
            self._writer = GroupWriter(self.app)
        return self._writer

    def close(self) -> None:
        """Stop the writer (after it answered what it holds)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None


@dataclass
class Arrival:
    """One accepted message waiting to be made durable, and the answer its DATA handler awaits."""

    mail_from: str | None
    address_ids: list[int]
    data: bytes = field(repr=False)
    client_ip: str | None = None  # the SMTP client and its HELO name: the ingest job checks SPF with them
    helo: str | None = None
    future: Future = field(default_factory=Future, repr=False)


def store_group(app: Flask, arrivals: list[Arrival]) -> list[list[int]]:
    """The raw messages staged in the database (`BlobStore.stage`) and one pending InboundRaw per message
    and address, in one transaction and one commit (`enqueue_ingest` announces them afterwards).

    The commit is the group's only wait for the disk: the raw bytes are durable with the
    rows that name them, and the ingest job moves them to the blob store (`settle`).
    All or nothing: when it raises, no row of the group exists. Returns each message's
    row ids, in order.
    """
    for arrival in arrivals:
        if not arrival.address_ids:
            raise RuntimeError("no accepted recipient")
    with app.app_context():
        try:
            shas = blob_store().stage([arrival.data for arrival in arrivals])
            now = datetime.now(timezone.utc)
            rows = [{"address_id": address_id, "source": "smtp", "raw_sha256": sha, "size": len(arrival.data),
                     "envelope_from": arrival.mail_from or "", "status": InboundStatus.PENDING.value,
                     "client_ip": (arrival.client_ip or "")[:45] or None, "helo": (arrival.helo or "")[:255] or None,
                     "attempts": 0, "received_at": now}
                    for arrival, sha in zip(arrivals, shas) for address_id in arrival.address_ids]
            # One multi-row INSERT .. RETURNING (no unit of work: these rows are only written here).
            table = InboundRaw.__table__
            inserted = iter(db.session.connection().scalars(
                insert(table).returning(table.c.id, sort_by_parameter_order=True), rows).all())
            ids = [[next(inserted) for _ in arrival.address_ids] for arrival in arrivals]
            db.session.commit()
            return ids
        except BaseException:
            db.session.rollback()
            raise
        finally:
            db.session.remove()


class GroupWriter:
    """The ingress's one writer thread: takes every waiting message as a group and stores it with `store_group`.

    Each message's future gets its row ids once the group's commit returned, or
    the group's exception (the DATA handler answers 451) when it did not. A second
    thread, the announcer, then enqueues the committed rows' ingest jobs.
    """

    def __init__(self, app: Flask, max_group: int = GROUP_MAX_MESSAGES) -> None:
        self.app = app
        self.max_group = max_group
        self._queue: queue.SimpleQueue[Arrival | None] = queue.SimpleQueue()
        self._announce: queue.SimpleQueue[list[int] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="ingress-writer", daemon=True)
        self._announcer = threading.Thread(target=self._run_announcer, name="ingress-announcer", daemon=True)
        self._thread.start()
        self._announcer.start()

    def submit(self, arrival: Arrival) -> Future:
        self._queue.put(arrival)
        return arrival.future

    def close(self, timeout: float = 30.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout)
        self._announce.put(None)
        self._announcer.join(timeout)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            while len(group) < self.max_group:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True  # answer this group first, then stop
                    break
                group.append(more)
            self._write(group)

    def _write(self, group: list[Arrival]) -> None:
        try:
            ids = store_group(self.app, group)
        except Exception as exc:  # noqa: BLE001 - every message of the group is answered 451
            log.exception("could not store a group of %d incoming messages", len(group))
            for arrival in group:
                arrival.future.set_exception(exc)
            return
        for arrival, row_ids in zip(group, ids):
            arrival.future.set_result(row_ids)
        # Committed and answered; the ingest jobs go out from another thread, so neither the
        # senders nor the next group wait for Redis.
        self._announce.put([raw_id for row_ids in ids for raw_id in row_ids])

    def _run_announcer(self) -> None:
        """Enqueue the ingest jobs of every group committed meanwhile, in one round trip."""
        stopping = False
        while not stopping:
            first = self._announce.get()
            if first is None:
                return
            raw_ids = list(first)
            while True:
                try:
                    more = self._announce.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True
                    break
                raw_ids += more
            enqueue_ingest(self.app, raw_ids)


_redis_down = threading.Event()  # set while enqueues fail for want of Redis: said once per outage


def enqueue_ingest(app: Flask, raw_ids: list[int]) -> None:
    """The ingest jobs of committed pending rows (a job per batch, `ingest_jobs`), in one Redis round trip.

    A lost enqueue (Redis down, the ingress killed right after its 250) is harmless: the row
    is pending and cron's `requeue_stale_pending` enqueues it again. A Redis outage is logged
    once when it is noticed and once when Redis answers again, not once per message.
    """
    try:
        with app.app_context():
            enqueue_jobs("ingest", ingest_jobs(raw_ids), result_ttl=0, failure_ttl=24 * 3600)
    except RedisError as exc:
        if not _redis_down.is_set():
            _redis_down.set()
            log.warning("Redis does not answer (%s): accepted mail is stored and acknowledged, and cron queues its "
                        "ingest once Redis is back", exc.__class__.__name__)
    except Exception:  # noqa: BLE001 - stored and acknowledged; cron finds the pending rows
        log.exception("could not enqueue ingest for %d stored messages; cron will", len(raw_ids))
    else:
        if _redis_down.is_set():
            _redis_down.clear()
            log.warning("Redis answers again: ingest is queued at once again")


class IngressController(Controller):
    """aiosmtpd's threaded controller with our SMTP class (`IngressSMTP`: long lines, session caps, spooled DATA).

    Its sessions share one `SessionCounter` (all of them run in the controller's event loop thread).
    """

    def __init__(self, handler, *, sessions: SessionCounter, spool_dir: str, spool_threshold: int, **kwargs):
        super().__init__(handler, **kwargs)
        self.sessions = sessions
        self.spool_dir = spool_dir
        self.spool_threshold = spool_threshold

    def factory(self):
        return IngressSMTP(self.handler, sessions=self.sessions, spool_dir=self.spool_dir,
                           spool_threshold=self.spool_threshold, **self.SMTP_kwargs)

    def stop(self, *args, **kwargs):
        super().stop(*args, **kwargs)
        self.handler.close()


def make_controller(app: Flask, host: str | None = None, port: int | None = None) -> IngressController:
    """The ingress server for `app`, not started (`.start()` / `.stop()`)."""
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP command at INFO
    kwargs = {}
    cert, key = app.config.get("INGRESS_TLS_CERT"), app.config.get("INGRESS_TLS_KEY")
    if cert and key:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        kwargs.update(tls_context=context, require_starttls=False)
    handler = IngressHandler(app)
    spool_dir = app.config["INGRESS_SPOOL_DIR"]
    ensure_spool_dir(spool_dir)
    return IngressController(
        handler,
        sessions=SessionCounter(app.config["INGRESS_MAX_SESSIONS"], app.config["INGRESS_MAX_SESSIONS_PER_IP"]),
        spool_dir=spool_dir,
        spool_threshold=app.config["INGRESS_SPOOL_THRESHOLD_BYTES"],
        timeout=app.config["INGRESS_IDLE_TIMEOUT_SECONDS"],
        hostname=host or app.config["INGRESS_HOST"],
        port=port if port is not None else app.config["INGRESS_PORT"],
        server_hostname=handler.hostname,
        data_size_limit=app.config["INBOUND_MAX_MESSAGE_SIZE"],
        decode_data=False,
        ident="Pigeonhole ingress",
        ready_timeout=10,
        **kwargs,
    )
