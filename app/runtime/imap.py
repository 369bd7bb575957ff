"""IMAP polling of a custom-domain mailbox (imapclient), without touching the customer's mail.

State machine per (address, folder), kept in `MailboxState`:

* **first connection** (`uidvalidity` unknown): the start point is the publish
  time or the last N days (`MAILBOX_BACKFILL`); `SEARCH SINCE` plus each
  candidate's INTERNALDATE find the first message inside it, and the watermark
  (`last_uid`) is set just below it. Older mail is never fetched, so an old
  mailbox does not flood agents. The start point is kept in `sync_since`.
* **normal poll**: UIDs above `last_uid`, fetched with `BODY.PEEK[]` in batches
  (`POLL_BATCH_SIZE` messages or `POLL_BATCH_BYTES`, whichever comes first). The
  batch's raw messages go to the blob store (`put_many`: all durable before it
  returns), then the batch is ingested and
  the watermark moved **in the same transaction**: a crash before the commit
  means the batch is fetched again, and the blobs and the dedupe key make that
  harmless; a crash after it means nothing is fetched twice.
* **UIDVALIDITY changed** (the server renumbered the folder): the watermark is
  recomputed from the start point (or a day before the last successful poll,
  whichever is later) and that range is fetched again; the dedupe key (Message-ID
  or content hash) drops what was already stored.

The folder is opened with EXAMINE (read-only) and bodies are fetched with
`BODY.PEEK[]`, so no flag changes and nothing moves or disappears. Only
`MAILBOX_AFTER_FETCH=seen` (flag as read) or `=delete` (delete and expunge) change
the mailbox, after the batch is committed. No database transaction is held
open across network I/O except the batch commit itself.

A message above `INBOUND_MAX_MESSAGE_SIZE` is not downloaded: its header is, and
it is stored with the error so admins see it.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

from flask import current_app
from imapclient import IMAPClient
from sqlalchemy import or_, update

from app.blobs import blob_store
from app.runtime.live import PublishedAddress
from app.extensions import db
from app.runtime.ingest import RawItem, ingest
from app.mail.pinned import PinnedIMAPClient
from app.mail.sasl import imap_token_login
from app.runtime.netpolicy import mail_policy
from app.runtime.mailbox import PollResult, backfill_start, release_batch_memory
from app.runtime.oauth import sign_in as oauth_sign_in, sign_in_mechanism
from app.runtime.tls import configured_context
from app.models.channels import MailboxState

log = logging.getLogger(__name__)

RESYNC_MARGIN = timedelta(days=1)


def connect(address: PublishedAddress, timeout: float | None = None) -> IMAPClient:
    """Log in to the address's IMAP server (TLS verified; STARTTLS or implicit TLS as configured).

    With a password (LOGIN) or, for an OAuth address, a token from `app.runtime.oauth`
    (AUTHENTICATE XOAUTH2/OAUTHBEARER). Connects only where `mail_policy` allows (raising
    `app.mail.netguard.HostRefused` or `PlaintextRefused` before anything is sent).
    """
    timeout = timeout or current_app.config["MAIL_TIMEOUT"]
    security = (address.incoming_security or "ssl").lower()
    port = address.incoming_port or (993 if security == "ssl" else 143)
    context = configured_context(address.tls_ca_pem)
    target = mail_policy(address.allow_plaintext_auth).target(address.incoming_host, port, security)
    if security == "ssl":
        client = PinnedIMAPClient(target, ssl=True, ssl_context=context, timeout=timeout)
    else:
        client = PinnedIMAPClient(target, ssl=False, timeout=timeout)
        if security == "starttls":
            client.starttls(context)
    client.normalise_times = False  # timezone-aware INTERNALDATEs
    try:
        if address.uses_oauth:
            mechanism = sign_in_mechanism(address)
            oauth_sign_in(address, lambda token: imap_token_login(client, address.login, token, mechanism))
        else:
            client.login(address.login, address.password() or "")
    except Exception:
        _close(client)
        raise
    return client


def _close(client: IMAPClient) -> None:
    try:
        client.logout()
    except Exception:  # noqa: BLE001
        try:
            client.shutdown()
        except Exception:  # noqa: BLE001
            pass


def poll_imap(address: PublishedAddress, state: MailboxState, result: PollResult, keepalive, folder: str = "INBOX") -> None:
    """Fetch and ingest new mail of `folder`; raises on network/server errors (the caller records them)."""
    client = connect(address)
    try:
        info = client.select_folder(folder, readonly=True)
        uidvalidity = int(info[b"UIDVALIDITY"])
        uidnext = int(info.get(b"UIDNEXT") or 0) or None
        now = datetime.now(timezone.utc)
        if state.uidvalidity is None or state.uidvalidity != uidvalidity:
            if state.uidvalidity is None:
                since = backfill_start(address.id, now)
                state.sync_since = since
            else:
                result.resynced = True
                since = state.sync_since or backfill_start(address.id, now)
                if state.last_success_at is not None:
                    since = max(since, state.last_success_at - RESYNC_MARGIN)
                log.warning("UIDVALIDITY of %s/%s changed (%s -> %s): resynchronising since %s",
                            address.address, folder, state.uidvalidity, uidvalidity, since)
            floor, skipped = _floor(client, since, uidnext)
            result.skipped_by_backfill = skipped
            state.uidvalidity = uidvalidity
            state.last_uid = floor
            state.uidnext = uidnext
            db.session.commit()

        last = state.last_uid or 0
        uids = sorted(u for u in client.search(["UID", f"{last + 1}:*"]) if u > last)
        if not uids:
            state.uidnext = uidnext
            return
        sizes = {uid: int(data.get(b"RFC822.SIZE", 0)) for uid, data in client.fetch(uids, ["RFC822.SIZE"]).items()}
        uids = [u for u in uids if u in sizes]  # expunged meanwhile
        for batch in _batches(uids, sizes):
            keepalive()
            items = _fetch_batch(client, folder, uidvalidity, batch, sizes)
            top = batch[-1]

            def move_watermark(top=top):
                # Monotonic, in SQL: a poller that lost its lock can never move the watermark back.
                db.session.execute(update(MailboxState).where(
                    MailboxState.id == state.id, MailboxState.uidvalidity == uidvalidity,
                    or_(MailboxState.last_uid.is_(None), MailboxState.last_uid < top),
                ).values(last_uid=top, uidnext=uidnext))

            result.count(ingest(address.id, items, before_commit=move_watermark))
            del items
            release_batch_memory()
            _after_fetch(client, folder, batch)
    finally:
        _close(client)


def _floor(client: IMAPClient, since: datetime, uidnext: int | None) -> tuple[int, int]:
    """The watermark for a start point: (UID just below the first message since then, messages skipped)."""
    everything = client.search(["ALL"])
    if not everything:
        return max((uidnext or 1) - 1, 0), 0
    candidates = sorted(client.search(["SINCE", since.date()]))
    recent = []
    if candidates:
        for uid, data in client.fetch(candidates, ["INTERNALDATE"]).items():
            internal = data.get(b"INTERNALDATE")
            if internal is not None and internal.tzinfo is None:
                internal = internal.replace(tzinfo=timezone.utc)
            if internal is None or internal >= since:
                recent.append(uid)
    if recent:
        floor = min(recent) - 1
    else:
        floor = max(max(everything), (uidnext or 1) - 1)
    return floor, sum(1 for u in everything if u <= floor)


def _batches(uids: list[int], sizes: dict[int, int]):
    limit_n = current_app.config["POLL_BATCH_SIZE"]
    limit_bytes = current_app.config["POLL_BATCH_BYTES"]
    batch, total = [], 0
    for uid in uids:
        size = sizes.get(uid, 0)
        if batch and (len(batch) >= limit_n or total + size > limit_bytes):
            yield batch
            batch, total = [], 0
        batch.append(uid)
        total += size
    if batch:
        yield batch


def _fetch_batch(client: IMAPClient, folder: str, uidvalidity: int, batch: list[int],
                 sizes: dict[int, int]) -> list[RawItem]:
    """Download a batch and put every raw message in the blob store (durable) before ingest."""
    max_size = current_app.config["INBOUND_MAX_MESSAGE_SIZE"]
    normal = [u for u in batch if sizes.get(u, 0) <= max_size]
    large = [u for u in batch if sizes.get(u, 0) > max_size]
    bodies = client.fetch(normal, ["BODY.PEEK[]"]) if normal else {}
    if large:
        bodies.update({uid: {b"BODY[]": data.get(b"BODY[HEADER]", b""), "too_large": True}
                       for uid, data in client.fetch(large, ["BODY.PEEK[HEADER]"]).items()})
    items = []
    for uid in batch:
        data = bodies.pop(uid, None)
        if data is None:
            continue  # expunged between SEARCH and FETCH
        raw = data.get(b"BODY[]") or b""
        error = None
        if data.get("too_large"):
            error = (f"message of {sizes[uid]} bytes is over the {max_size} byte limit; "
                     f"only its header was fetched (it is still in the mailbox)")
        items.append(RawItem("", len(raw), "imap", f"{folder};v={uidvalidity};uid={uid}", raw=raw, error=error))
    # The whole batch made durable at once (one round of fsyncs, not one per message).
    for item, sha in zip(items, blob_store().put_many([item.raw for item in items])):
        item.sha256 = sha
    return items


def _after_fetch(client: IMAPClient, folder: str, uids: list[int]) -> None:
    """The opt-in changes to the customer's mailbox (default: none)."""
    mode = current_app.config.get("MAILBOX_AFTER_FETCH", "keep")
    if mode not in ("seen", "delete"):
        return
    client.select_folder(folder, readonly=False)
    try:
        if mode == "seen":
            client.add_flags(uids, [b"\\Seen"], silent=True)
        else:
            client.delete_messages(uids, silent=True)
            if client.has_capability("UIDPLUS"):
                client.uid_expunge(uids)
            else:
                client.expunge()
    finally:
        client.select_folder(folder, readonly=True)
