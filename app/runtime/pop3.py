"""POP3 polling of a custom-domain mailbox (poplib), never deleting unless configured.

POP3 has no UIDs that survive sessions except UIDL, so the watermark is the set of
UIDLs already stored (`MailboxState.seen_uidls`), pruned to the UIDLs still on the
server. A first connection reads only the headers (`TOP n 0`) and marks every
message dated before the start point (`MAILBOX_BACKFILL`) as seen without
downloading it. New messages are downloaded with RETR in batches; each batch is
put in the blob store, ingested, and its UIDLs added to the watermark in the same
transaction. `MAILBOX_AFTER_FETCH=delete` deletes them on the server after the
commit (applied when the session ends with QUIT); by default nothing is deleted.
"""
from __future__ import annotations

import poplib
import re
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

from flask import current_app

from app.blobs import blob_store
from app.runtime.live import PublishedAddress
from app.extensions import db
from app.runtime.ingest import RawItem, ingest
from app.mail.pinned import PinnedPOP3, PinnedPOP3_SSL
from app.mail.sasl import pop3_token_login
from app.runtime.netpolicy import mail_policy
from app.runtime.mailbox import PollResult, backfill_start, release_batch_memory
from app.runtime.oauth import sign_in as oauth_sign_in, sign_in_mechanism
from app.runtime.tls import configured_context
from app.models.channels import MailboxState

# poplib refuses lines over 2,048 bytes; real mail has longer ones (long HTML lines, bad encoders).
poplib._MAXLINE = max(poplib._MAXLINE, 1 << 20)


def connect(address: PublishedAddress, timeout: float | None = None) -> poplib.POP3:
    """Log in to the address's POP3 server, only where `mail_policy` allows (as `app.runtime.imap.connect`)."""
    timeout = timeout or current_app.config["MAIL_TIMEOUT"]
    security = (address.incoming_security or "ssl").lower()
    port = address.incoming_port or (995 if security == "ssl" else 110)
    context = configured_context(address.tls_ca_pem)
    target = mail_policy(address.allow_plaintext_auth).target(address.incoming_host, port, security)
    if security == "ssl":
        conn = PinnedPOP3_SSL(target, timeout=timeout, context=context)
    else:
        conn = PinnedPOP3(target, timeout=timeout)
        if security == "starttls":
            conn.stls(context)
    try:
        if address.uses_oauth:
            mechanism = sign_in_mechanism(address)
            oauth_sign_in(address, lambda token: pop3_token_login(conn, address.login, token, mechanism))
        else:
            conn.user(address.login)
            conn.pass_(address.password() or "")
    except Exception:
        conn.close()
        raise
    return conn


def poll_pop3(address: PublishedAddress, state: MailboxState, result: PollResult, keepalive) -> None:
    conn = connect(address)
    try:
        listing = {}
        for line in conn.uidl()[1]:
            number, _, uidl = line.decode("ascii", "replace").partition(" ")
            listing[uidl.strip()] = int(number)
        sizes = {}
        for line in conn.list()[1]:
            number, _, size = line.decode("ascii", "replace").partition(" ")
            sizes[int(number)] = int(size.split()[0]) if size.strip() else 0
        current = set(listing)
        if state.seen_uidls is None:
            since = backfill_start(address.id, datetime.now(timezone.utc))
            state.sync_since = since
            old = [uidl for uidl, number in listing.items() if _dated_before(conn, number, since)]
            result.skipped_by_backfill = len(old)
            state.seen_uidls = sorted(old)
            db.session.commit()
        seen = set(state.seen_uidls) & current
        new = sorted((number, uidl) for uidl, number in listing.items() if uidl not in seen)
        size_limit = current_app.config["INBOUND_MAX_MESSAGE_SIZE"]
        batch_n = current_app.config["POLL_BATCH_SIZE"]
        store = blob_store()
        delete = current_app.config.get("MAILBOX_AFTER_FETCH") == "delete"
        for start in range(0, len(new), batch_n):
            keepalive()
            batch = new[start:start + batch_n]
            items = []
            for number, uidl in batch:
                error = None
                if sizes.get(number, 0) > size_limit:
                    lines = conn.top(number, 0)[1]
                    error = (f"message of {sizes[number]} bytes is over the {size_limit} byte limit; only its "
                             f"header was fetched (it is still in the mailbox)")
                else:
                    lines = conn.retr(number)[1]
                raw = b"\r\n".join(lines) + b"\r\n"
                items.append(RawItem("", len(raw), "pop3", uidl, raw=raw, error=error))
            # The whole batch made durable at once (one round of fsyncs, not one per message).
            for item, sha in zip(items, store.put_many([item.raw for item in items])):
                item.sha256 = sha
            done = {uidl for _, uidl in batch}

            def move_watermark(done=done):
                nonlocal seen
                db.session.refresh(state, with_for_update=True)  # merge with a concurrent writer, never drop
                seen = (set(state.seen_uidls or []) | seen | done) & current
                state.seen_uidls = sorted(seen)

            result.count(ingest(address.id, items, before_commit=move_watermark))
            del items
            release_batch_memory()
            if delete:
                for number, _ in batch:
                    conn.dele(number)
        if set(state.seen_uidls or []) != seen:
            state.seen_uidls = sorted(seen)
        conn.quit()
    except Exception:
        try:
            conn.close()  # no QUIT: POP3 applies no deletion without it
        except Exception:  # noqa: BLE001
            pass
        raise


def _dated_before(conn: poplib.POP3, number: int, since: datetime) -> bool:
    """True when the message's Date header is older than `since` (unknown dates count as new)."""
    header = b"\n".join(conn.top(number, 0)[1])
    match = re.search(rb"^Date:[ \t]*(.+(?:\n[ \t].+)*)", header, re.IGNORECASE | re.MULTILINE)
    if not match:
        return False
    try:
        date = parsedate_to_datetime(match.group(1).decode("ascii", "replace").strip())
    except Exception:  # noqa: BLE001
        return False
    if date.tzinfo is None:
        date = date.replace(tzinfo=timezone.utc)
    return date < since
