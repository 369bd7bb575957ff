"""Factories as callables with unique sequences: `make_user(role="admin")`."""
from __future__ import annotations

import itertools

from app.auth.services import create_user
from app.extensions import db
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


# --- outbound (issue 5): live addresses and conversations to send from --------------------------

def make_address(address: str | None = None, *, platform: bool = True, publish: bool = True, **fields):
    """An email address (platform domain by default), published unless `publish=False`."""
    from app.channels.services import ensure_platform_domain, publish_addresses
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


def make_conversation(address, *, email: str | None = None, name: str = "Carol Customer", subject: str = "Order 1234",
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
