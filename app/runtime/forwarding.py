"""The forwarding step of ingest, and what admins are shown of it.

Called by `app.runtime.ingest` for every message of a platform address:

* `note_forwarded_for` records on the `InboundRaw` row the contact-center address the message
  was forwarded from (`app.mail.forwarding.forwarded_for`), so the address's Forwarding status
  ("Forwarded mail seen from sales@acme.example on …") is read from inbound mail itself;
* `confirmation_of` recognises a provider's forwarding-confirmation mail (Gmail's); `ingest`
  then stores it as a message without a conversation (no flow runs, no automatic reply) and
  `store_confirmation` keeps it for the admins, with its link and code.

`pending_confirmations()` is the read model of the admins' banner and the Forwarding page. The
link is shown for an admin to click and is never fetched by the server.
"""
from __future__ import annotations

from email.parser import BytesHeaderParser
from email.policy import compat32

from sqlalchemy import select

from app.extensions import db
from app.mail.forwarding import ForwardingConfirmation as Recognised
from app.mail.forwarding import forwarded_for, recognise_confirmation
from app.mail.parse import ParsedMessage
from app.models.channels import DomainKind, EmailAddress
from app.models.inbound import ForwardingConfirmation, InboundRaw
from app.runtime.live import PublishedAddress

#: Enough of a message to read its header block.
_HEAD_BYTES = 256 * 1024


def note_forwarded_for(address: PublishedAddress, row: InboundRaw, raw: bytes) -> None:
    """Record on `row` who forwarded this arrival to a platform address (None when its headers show no one)."""
    if address.domain_kind != DomainKind.PLATFORM.value:
        return
    headers = BytesHeaderParser(policy=compat32).parsebytes(_header_block(raw[:_HEAD_BYTES]))
    row.forwarded_for = forwarded_for(headers, address.address, address.forwarded_from)


def _header_block(head: bytes) -> bytes:
    """The bytes up to the blank line that ends the header block (the parser would read the body too)."""
    ends = [i + len(sep) for sep in (b"\r\n\r\n", b"\n\n") if (i := head.find(sep)) >= 0]
    return head[:min(ends)] if ends else head


def confirmation_of(address: PublishedAddress, parsed: ParsedMessage) -> Recognised | None:
    """The forwarding confirmation this mail to a platform address is, or None."""
    if address.domain_kind != DomainKind.PLATFORM.value:
        return None
    return recognise_confirmation(parsed.from_addr, parsed.subject, parsed.text)


def store_confirmation(address: PublishedAddress, message_id: int, found: Recognised, subject: str,
                       now) -> ForwardingConfirmation:
    """Keep a recognised confirmation for the admins (in the caller's transaction)."""
    row = ForwardingConfirmation(address_id=address.id, message_id=message_id, provider=found.provider,
                                 requested_by=found.requested_by, link=found.link, code=found.code,
                                 subject=(subject or "")[:2000], received_at=now)
    db.session.add(row)
    db.session.flush()
    return row


def pending_confirmations(address_id: int | None = None) -> list[tuple[ForwardingConfirmation, str]]:
    """(confirmation, address) not dismissed yet, of addresses not archived, newest first."""
    query = (select(ForwardingConfirmation, EmailAddress.address)
             .join(EmailAddress, EmailAddress.id == ForwardingConfirmation.address_id)
             .where(ForwardingConfirmation.dismissed_at.is_(None), EmailAddress.archived_at.is_(None))
             .order_by(ForwardingConfirmation.received_at.desc(), ForwardingConfirmation.id.desc()))
    if address_id is not None:
        query = query.where(ForwardingConfirmation.address_id == address_id)
    return [(row, address) for row, address in db.session.execute(query)]
