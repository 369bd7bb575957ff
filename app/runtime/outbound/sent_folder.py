"""A copy of what an address sent, in its mailbox's Sent folder (opt-in: "Save replies to the mailbox's Sent folder").

After a message is sent (`deliver`), custom-domain addresses with `save_to_sent` and an IMAP
mailbox get `jobs.send.save_sent_copy_job` (job id `sent-copy-{id}`): it signs in like the
poller, finds the folder flagged `\\Sent` (LIST with SPECIAL-USE, RFC 6154; imapclient's
`find_special_folder`, which falls back to the usual names), and APPENDs the exact bytes
that were sent (the DKIM-Signature it went out with in front), flagged `\\Seen`, so the contact center's own mail client shows what agents
sent. A failure is logged and leaves the message sent: the copy is a convenience, and a
retry could put it there twice.
"""
from __future__ import annotations

import logging

from imapclient.imapclient import SENT
from sqlalchemy import select

from app.extensions import db
from app.mail.failures import explain
from app.models.inbox import Message
from app.queues import enqueue
from app.runtime.imap import connect
from app.runtime.live import PublishedAddress, published_address
from app.runtime.outbound.compose import outgoing_bytes

log = logging.getLogger(__name__)


def wants_sent_copy(address: PublishedAddress | None) -> bool:
    return bool(address is not None and address.save_to_sent and not address.is_platform
                and address.incoming_protocol == "imap" and address.incoming_host)


def enqueue_sent_copy(message_id: int) -> None:
    enqueue("send", "jobs.send.save_sent_copy_job", message_id, job_id=f"sent-copy-{message_id}")


def save_sent_copy(message_id: int) -> str | None:
    """APPEND the sent message to its address's Sent folder; returns the folder, or None when nothing was saved."""
    row = db.session.execute(select(Message.address_id, Message.raw_sha256, Message.delivery_status,
                                    Message.dkim_signature)
                             .where(Message.id == message_id, Message.direction == "out")).first()
    address = published_address(row.address_id) if row is not None and row.address_id else None
    if row is None or row.delivery_status != "sent" or not wants_sent_copy(address):
        db.session.rollback()
        return None
    data = outgoing_bytes(message_id, row.raw_sha256)
    if data is not None and row.dkim_signature:
        data = row.dkim_signature.encode("ascii") + data  # the bytes as they were sent
    db.session.rollback()  # no transaction open while we talk to the server
    if data is None:
        log.warning("message %s: no bytes to save in the Sent folder", message_id)
        return None
    try:
        client = connect(address)
        try:
            folder = client.find_special_folder(SENT)
            if folder is None:
                log.warning("%s has no Sent folder (no \\Sent special-use flag or usual name)", address.address)
                return None
            client.append(folder, data, flags=[b"\\Seen"])
        finally:
            client.logout()
    except Exception as exc:  # noqa: BLE001 - the message is sent; the copy is not worth a failure
        log.warning("message %s: could not save it in the Sent folder of %s: %s", message_id, address.address,
                    explain(exc))
        return None
    return folder
