"""Factories for the flows tests: published addresses, inbound mail as the inbound branch stores it, flows.

`make_inbound` stores the raw message in the blob store and a `Message` row exactly
like ingest does (raw bytes, parsed headers, text), so the safety rules read real
headers.
"""
from __future__ import annotations

import itertools
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import make_msgid

from sqlalchemy import select

from app.blobs import blob_store
from app.publish.services import publish_addresses
from app.extensions import db
from app.flows import editing, publishing
from app.mail.tokens import new_conversation_token
from app.models.channels import Domain, EmailAddress
from app.models.inbox import Attachment, Contact, Conversation, Message
from app.models.responses import ResponseGroup, StandardResponse

_seq = itertools.count(1)


def make_address(address: str | None = None, flow=None, *, publish: bool = True, usage: str = "both",
                 forwarded_from: str | None = None, enabled: bool = True) -> EmailAddress:
    address = (address or f"support{next(_seq)}@mail.pigeonhole.test").lower()
    domain_name = address.rpartition("@")[2]
    domain = db.session.scalar(select(Domain).where(Domain.name == domain_name))
    if domain is None:
        kind = "platform" if domain_name == "mail.pigeonhole.test" else "custom"
        domain = Domain(name=domain_name, kind=kind)
        db.session.add(domain)
    row = EmailAddress(domain=domain, address=address, display_name="Acme Support", usage=usage,
                       forwarded_from=forwarded_from, enabled=enabled, flow_id=flow.id if flow else None)
    if domain.kind == "custom":  # a custom address sends through its own server (none listens in these tests)
        row.outgoing_host, row.outgoing_port, row.outgoing_security = "127.0.0.1", 9, "none"
    db.session.add(row)
    db.session.flush()
    if publish:
        publish_addresses([row.id], None, "test")
    db.session.commit()
    return row


def make_flow(rules: list[dict], name: str | None = None, publish: bool = True):
    flow = editing.create_flow(name or f"Flow {next(_seq)}")
    for rule in rules:
        editing.add_rule(flow.id, rule)
    if publish:
        publishing.publish_flows([flow.id], None)
    db.session.commit()
    return flow


def make_response(title: str = "Refund policy", body: str = "<p>Hello {{ customer_name }}, refunds take 5 days.</p>",
                  subject: str = "") -> StandardResponse:
    group = db.session.scalar(select(ResponseGroup).where(ResponseGroup.name == "Automatic"))
    if group is None:
        group = ResponseGroup(name="Automatic")
        db.session.add(group)
    response = StandardResponse(group=group, title=title, body=body, subject=subject)
    db.session.add(response)
    db.session.commit()
    return response


def make_inbound(address: EmailAddress, *, sender: str = "carol@example.com", name: str = "Carol Customer",
                 subject: str = "Question", text: str = "Hello", headers: dict | None = None,
                 conversation: Conversation | None = None, attachments: int = 0,
                 created_at: datetime | None = None, in_reply_to: str | None = None) -> Message:
    """A stored inbound message (raw bytes in the blob store), in a new or the given conversation."""
    msg = EmailMessage()
    msg["From"] = f"{name} <{sender}>" if name else sender
    msg["To"] = address.address
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "example.com")
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    msg.set_content(text)
    for i in range(attachments):
        msg.add_attachment(b"%PDF-1.4 test", maintype="application", subtype="pdf", filename=f"file{i}.pdf")
    for key, value in (headers or {}).items():
        del msg[key]
        msg[key] = value
    raw = msg.as_bytes()
    sha = blob_store().put(raw)
    contact = db.session.scalar(select(Contact).where(Contact.email == sender.lower()))
    if contact is None:
        contact = Contact(email=sender.lower(), name=name)
        db.session.add(contact)
    when = created_at or datetime.now(timezone.utc)
    if conversation is None:
        conversation = Conversation(address_id=address.id, contact=contact, token=new_conversation_token(),
                                    subject=subject, created_at=when, last_message_at=when)
        db.session.add(conversation)
    else:
        conversation.last_message_at = when
    message = Message(conversation=conversation, address_id=address.id, direction="in",
                      message_id=msg["Message-ID"], in_reply_to=in_reply_to, from_addr=str(msg["From"]),
                      to_addrs=address.address, subject=subject, text=text, raw_sha256=sha, created_at=when)
    db.session.add(message)
    db.session.flush()
    for i in range(attachments):
        db.session.add(Attachment(message_id=message.id, filename=f"file{i}.pdf", content_type="application/pdf",
                                  size=13, sha256=blob_store().put(b"%PDF-1.4 test")))
    db.session.commit()
    return message
