"""Factories as callables with unique sequences: `make_user(role="admin")`."""
from __future__ import annotations

import itertools

from app.auth.services import create_user
from app.extensions import db
from app.inbox.addresses import link_queue_address
from app.models.auth import Queue

_seq = itertools.count(1)
PASSWORD = "correct horse battery staple"


def make_user(role: str = "agent", email: str | None = None, password: str = PASSWORD, name: str = ""):
    n = next(_seq)
    user = create_user(email or f"user{n}@example.test", password, role, name or f"User {n}")
    db.session.commit()
    return user


def make_queue(name: str | None = None, members=()):
    queue = Queue(name=name or f"Queue {next(_seq)}", members=list(members))
    db.session.add(queue)
    db.session.commit()
    return queue


# --- outbound: live addresses and conversations to send from ------------------------------------

def make_sending_address(address: str | None = None, *, platform: bool = True, publish: bool = True, **fields):
    """An email address (platform domain by default), published unless `publish=False`."""
    from app.channels.domains import ensure_platform_domain
    from app.publish.services import publish_addresses
    from app.models.channels import Domain, EmailAddress

    n = next(_seq)
    if platform:
        domain = ensure_platform_domain()
        address = address or f"support{n}@{domain.name}"
    else:
        name = (address or f"help{n}@acme{n}.test").split("@")[1]
        domain = db.session.query(Domain).filter_by(name=name).one_or_none() or Domain(name=name, kind="custom")
        address = address or f"help{n}@{name}"
    fields.setdefault("display_name", f"Support {n}")
    row = EmailAddress(domain=domain, address=address, **fields)
    db.session.add(row)
    db.session.commit()
    if publish:
        publish_addresses([row.id], None, "test")
        db.session.commit()
    return row


def make_sending_conversation(address, *, email: str | None = None, name: str = "Carol Customer", subject: str = "Order 1234",
                      inbound: bool = True):
    """A conversation of `address` with a customer, opened by one inbound message (unless `inbound=False`)."""
    from datetime import datetime, timedelta, timezone

    from app.mail.tokens import new_conversation_token
    from app.models.inbox import Contact, Conversation, Message

    n = next(_seq)
    email = (email or f"customer{n}@example.com").lower()
    contact = db.session.query(Contact).filter_by(email=email).one_or_none() or Contact(email=email, name=name)
    conversation = Conversation(address_id=address.id, contact=contact, token=new_conversation_token(),
                                subject=subject)
    db.session.add(conversation)
    if inbound:
        db.session.add(Message(
            conversation=conversation, address_id=address.id, direction="in",
            message_id=f"<cust-{n}@example.com>", from_addr=f"{name} <{email}>", to_addrs=address.address,
            subject=subject, text="Where is my parcel?\n", html="<p>Where is my parcel?</p>",
            created_at=datetime.now(timezone.utc) - timedelta(minutes=5)))
    db.session.commit()
    return conversation


# --- Workspace (issue 6): addresses, conversations, messages, attachments, responses ----------

def make_address(address: str | None = None, *, usage: str = "both", display_name: str = "Support",
                 publish: bool = True, kind: str = "platform", forwarded_from: str | None = None, queues=()):
    """An email address, published (live) unless `publish=False`, linked to `queues` for New Mail."""
    from sqlalchemy import select

    from app.publish.services import publish_addresses
    from app.models.channels import Domain, EmailAddress

    address = (address or f"support{next(_seq)}@mail.pigeonhole.test").lower()
    domain_name = address.rsplit("@", 1)[1]
    domain = db.session.scalar(select(Domain).where(Domain.name == domain_name))
    if domain is None:
        domain = Domain(name=domain_name, kind=kind)
        db.session.add(domain)
    row = EmailAddress(domain=domain, address=address, display_name=display_name, usage=usage,
                       forwarded_from=forwarded_from)
    db.session.add(row)
    db.session.flush()
    for queue in queues:
        link_queue_address(queue, row.id)
    if publish:
        publish_addresses([row.id], None, "test")
    db.session.commit()
    return row


def make_conversation(*, queue=None, address=None, contact_email: str | None = None, contact_name: str = "",
                      subject: str = "Where is my parcel?", status: str = "open", assignee=None, when=None):
    from datetime import datetime, timezone

    from sqlalchemy import select

    from app.mail.tokens import new_conversation_token
    from app.models.inbox import Contact, Conversation

    address = address or make_address()
    email = (contact_email or f"customer{next(_seq)}@example.com").lower()
    contact = db.session.scalar(select(Contact).where(Contact.email == email))
    if contact is None:
        contact = Contact(email=email, name=contact_name)
    when = when or datetime.now(timezone.utc)
    conv = Conversation(address=address, contact=contact, token=new_conversation_token(), subject=subject,
                        status=status, queue=queue, assignee=assignee, created_at=when, last_message_at=when)
    db.session.add(conv)
    db.session.commit()
    return conv


def make_message(conversation, *, direction: str = "in", text: str = "Hello, where is my parcel?",
                 html: str | None = None, from_addr: str | None = None, to_addrs: str | None = None,
                 cc_addrs: str = "", reply_to: str = "", subject: str | None = None, when=None,
                 delivery_status: str | None = None, delivery_error: str | None = None, author=None,
                 message_id: str | None = None, attachments=()):
    """A message in `conversation`; `attachments`: (filename, content_type, bytes[, content_id]) tuples."""
    from datetime import datetime, timezone

    from app.blobs import blob_store
    from app.models.inbox import Attachment, Message

    when = when or datetime.now(timezone.utc)
    customer = conversation.contact.email
    ours = conversation.address.address
    msg = Message(
        conversation_id=conversation.id, address_id=conversation.address_id, direction=direction,
        message_id=message_id or f"<m{next(_seq)}@example.com>",
        from_addr=from_addr if from_addr is not None else (customer if direction == "in" else ours),
        to_addrs=to_addrs if to_addrs is not None else (ours if direction == "in" else customer),
        cc_addrs=cc_addrs, reply_to=reply_to, subject=subject if subject is not None else conversation.subject,
        text=text, html=html, created_at=when, delivery_status=delivery_status, delivery_error=delivery_error,
        author_id=author.id if author is not None else None,
    )
    db.session.add(msg)
    db.session.flush()
    for item in attachments:
        filename, content_type, data = item[:3]
        content_id = item[3] if len(item) > 3 else None
        db.session.add(Attachment(message_id=msg.id, filename=filename, content_type=content_type, size=len(data),
                                  sha256=blob_store().put(data), content_id=content_id, inline=bool(content_id)))
    if when > conversation.last_message_at:
        conversation.last_message_at = when
    db.session.commit()
    return msg


def make_response(title: str = "Shipping times", body: str = "Hello {{customer.first_name}}, it ships today.",
                  subject: str = "", group=None, group_name: str | None = None, shortcut: str = "",
                  visible_to_all: bool = True, queue_ids=()):
    from app.models.responses import ResponseGroup, StandardResponse
    from app.responses.services import clean_body

    if group is None:
        group = ResponseGroup(name=group_name or f"Group {next(_seq)}", shortcut=shortcut,
                              visible_to_all=visible_to_all, queue_ids=list(queue_ids))
        db.session.add(group)
    response = StandardResponse(group=group, title=title, subject=subject, body=clean_body(body))
    db.session.add(response)
    db.session.commit()
    return response
