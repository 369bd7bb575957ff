"""SMTP ingress for the platform domain (`flask ingress`, aiosmtpd).

The contact center forwards its mailbox to an address on `PLATFORM_MAIL_DOMAIN`;
this server receives that mail. Its promises:

* **RCPT**: only published, enabled, inbound-capable addresses of the platform
  domain are accepted; anything else gets `550 5.1.1` right away (so the sending
  server bounces, instead of us accepting mail nobody reads). At most
  `INGRESS_MAX_RECIPIENTS` recipients per message (`452 4.5.3` beyond).
* **Size**: `SIZE` is advertised; a larger `MAIL FROM ... SIZE=` is refused with
  `552` at once, and a DATA stream over the limit is counted but no longer
  buffered, then refused with `552` (aiosmtpd discards the data as it goes).
* **250 means stored**: the raw message is written to the blob store (fsynced) and
  one `pending` `InboundRaw` row per accepted address is committed before `250`
  is sent. If either fails, the client gets `451` and retries later. Only then is
  `jobs.ingest.ingest_raw` enqueued; if that enqueue is lost (Redis restart, the
  ingress killed right after 250), cron's `requeue_stale_pending` finds the
  pending row and enqueues it again. Nothing is lost, and the dedupe key keeps
  it from being stored twice.
* **STARTTLS** is offered when `INGRESS_TLS_CERT` and `INGRESS_TLS_KEY` are set.

Blocking work (database, fsync) runs in the event loop's thread pool with its
own app context, so one slow disk write does not stall other sessions.
"""
from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import time
from datetime import datetime, timezone
from email.utils import format_datetime

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP
from flask import Flask

from app.blobs import blob_store
from app.extensions import db
from app.models.inbound import InboundRaw, InboundStatus
from app.runtime.live import published_address
from app.transactions import enqueue_on_commit

log = logging.getLogger(__name__)

#: How long a recipient check is trusted (publishing or disabling reaches the ingress within this).
RCPT_CACHE_SECONDS = 5.0


class _SMTP(SMTP):
    # RFC 5321 says 1,000 octets per line; real mail (and many forwarders) send far longer ones.
    line_length_limit = 1 << 20


class IngressHandler:
    """aiosmtpd handler: RCPT check against the published configuration, durable DATA."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.max_recipients = app.config["INGRESS_MAX_RECIPIENTS"]
        self.domain = app.config["PLATFORM_MAIL_DOMAIN"].lower()
        self.hostname = app.config.get("INGRESS_HOSTNAME") or socket.getfqdn()
        self._cache: dict[str, tuple[int | None, float]] = {}

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if len(envelope.rcpt_tos) >= self.max_recipients:
            return "452 4.5.3 Too many recipients"
        loop = asyncio.get_running_loop()
        try:
            address_id = await loop.run_in_executor(None, self.receiving_address_id, address)
        except Exception:  # noqa: BLE001 - database down: ask the sender to retry
            log.exception("recipient check failed")
            return "451 4.3.0 Temporary failure; try again later"
        if address_id is None:
            return f"550 5.1.1 <{address}>: Recipient address rejected: no such mailbox here"
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
        loop = asyncio.get_running_loop()
        try:
            raw_ids = await loop.run_in_executor(None, self.store, envelope.mail_from,
                                                 list(getattr(envelope, "address_ids", [])), received + data)
        except Exception:  # noqa: BLE001 - nothing acknowledged: the sender retries
            log.exception("could not store an incoming message")
            return "451 4.3.0 Temporary failure storing the message; try again later"
        return f"250 2.0.0 OK queued as {','.join(str(i) for i in raw_ids)}"

    def _received_header(self, session, envelope) -> bytes:
        peer = session.peer[0] if session.peer else "unknown"
        helo = session.host_name or "unknown"
        rcpt = f" for <{envelope.rcpt_tos[0]}>" if len(envelope.rcpt_tos) == 1 else ""
        line = (f"Received: from {helo} ([{peer}])\r\n\tby {self.hostname} (Pigeonhole) with ESMTP{rcpt};\r\n"
                f"\t{format_datetime(datetime.now(timezone.utc))}\r\n")
        return line.encode("ascii", "replace")

    # --- blocking parts, run in the thread pool ---------------------------------------------------

    def receiving_address_id(self, email: str) -> int | None:
        """The id of a live platform inbound address for this recipient, or None.

        Answers are cached for `RCPT_CACHE_SECONDS`, so publishing or disabling an
        address reaches the ingress within that many seconds.
        """
        email = (email or "").strip().lower()
        if email.rpartition("@")[2] != self.domain:
            return None
        now = time.monotonic()
        cached = self._cache.get(email)
        if cached is not None and cached[1] > now:
            return cached[0]
        with self.app.app_context():
            try:
                address = published_address(email)
            finally:
                db.session.remove()
        address_id = address.id if address is not None and address.is_platform and address.can_receive else None
        self._cache[email] = (address_id, now + RCPT_CACHE_SECONDS)
        return address_id

    def store(self, mail_from: str | None, address_ids: list[int], data: bytes) -> list[int]:
        """Blob (fsynced), then one pending InboundRaw per address, committed; then enqueue ingest."""
        if not address_ids:
            raise RuntimeError("no accepted recipient")
        with self.app.app_context():
            try:
                sha = blob_store().put(data)
                now = datetime.now(timezone.utc)
                rows = [InboundRaw(address_id=i, source="smtp", raw_sha256=sha, size=len(data),
                                   envelope_from=mail_from or "", status=InboundStatus.PENDING.value, received_at=now)
                        for i in address_ids]
                db.session.add_all(rows)
                db.session.flush()
                ids = [row.id for row in rows]
                for raw_id in ids:  # a lost enqueue is harmless: the row is pending and cron re-enqueues it
                    enqueue_on_commit("ingest", "jobs.ingest.ingest_raw", raw_id, job_id=f"ingest-raw-{raw_id}",
                                      result_ttl=0, failure_ttl=24 * 3600)
                db.session.commit()
                return ids
            finally:
                db.session.remove()


class IngressController(Controller):
    """aiosmtpd's threaded controller with our SMTP class (long lines allowed)."""

    def factory(self):
        return _SMTP(self.handler, **self.SMTP_kwargs)


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
    return IngressController(
        handler,
        hostname=host or app.config["INGRESS_HOST"],
        port=port if port is not None else app.config["INGRESS_PORT"],
        server_hostname=handler.hostname,
        data_size_limit=app.config["INBOUND_MAX_MESSAGE_SIZE"],
        decode_data=False,
        ident="Pigeonhole ingress",
        ready_timeout=10,
        **kwargs,
    )
