"""The demo data `flask demo seed` creates. Idempotent: running it twice changes nothing.

Each area's demo data has its own module (`flows.py`, `inbox.py`); `seed()` runs them in order.
"""
from __future__ import annotations

from datetime import timedelta

from flask import current_app
from sqlalchemy import select

from app.auth.services import create_user, ensure_queue
from app.channels.domains import ensure_platform_domain
from app.demo.flows import DEMO_FLOW, seed_demo as seed_flows
from app.demo.inbox import seed_workspace
from app.extensions import db
from app.mail.html import sanitize_html
from app.mail.tokens import new_conversation_token
from app.models._types import utcnow
from app.models.auth import Queue, Role, User
from app.models.channels import EmailAddress
from app.models.flows import Flow
from app.models.inbox import Contact, Conversation, Message
from app.publish.services import publish, publish_addresses
from app.runtime.live import published_addresses
from app.runtime.outbound import CannotSend, send_reply

DEMO_USERS = [
    ("admin@demo.test", Role.ADMIN, "Ada Admin"),
    ("supervisor@demo.test", Role.SUPERVISOR, "Sam Supervisor"),
    ("agent@demo.test", Role.AGENT, "Alex Agent"),
]


def seed() -> list[str]:
    """Create what is missing; return one line per thing created."""
    created = []
    password = current_app.config["DEMO_PASSWORD"]
    users = {}
    for email, role, name in DEMO_USERS:
        user = db.session.scalar(select(User).where(User.email == email))
        if user is None:
            user = create_user(email, password, role, name)
            created.append(f"user {email} ({role.value})")
        users[email] = user
    general = ensure_queue("General", members=[users["agent@demo.test"], users["supervisor@demo.test"]])
    ensure_platform_domain()

    created += seed_flows(users)
    created += _seed_channel(users["admin@demo.test"])
    created += _seed_outbound(users)  # before the workspace's demo replies
    created += seed_workspace(users["agent@demo.test"], general)
    return created


# --- Outbound: one reply on its way, so the demo's Outbox shows sent mail -------------------------

DEMO_QUESTION_ID = "<demo-question-1@example.com>"


def _seed_outbound(users: dict) -> list[str]:
    """A platform address (when none can send yet), a customer's question and a queued reply.

    The reply goes out through `SMTP_RELAY_URL` (the local sink under scripts/run) as soon
    as the cron sweep hands it to a worker. Does nothing once any message was queued; run
    again after a seed without a relay, it queues the reply in the same conversation.
    """
    question = db.session.scalar(select(Message).where(Message.message_id == DEMO_QUESTION_ID))
    if question is not None and db.session.scalar(select(Message.id).where(
            Message.conversation_id == question.conversation_id, Message.direction == "out").limit(1)) is not None:
        return []  # the demo reply was queued already
    created = []
    live = [a for a in published_addresses("platform") if a.can_send]
    if question is not None:
        address = question.conversation.address
    elif live:
        address = db.session.get(EmailAddress, live[0].id)
    else:
        domain = ensure_platform_domain()
        address = EmailAddress(
            domain=domain, address=f"acme-support@{domain.name}", display_name="Acme Support",
            forwarded_from="support@acme.example", send_vcard=True, template_enabled=True,
            header_html="<p>Hello {{ customer_name }},</p>",
            footer_html="<p>Kind regards,<br>{{ agent_name }}<br>Acme Support · {{ conversation_reference }}</p>")
        db.session.add(address)
        db.session.flush()
        publish_addresses([address.id], users["admin@demo.test"].id, "Demo address")
        created.append(f"address {address.address} (published)")
    if question is not None:
        conversation = question.conversation
    else:
        contact = db.session.scalar(select(Contact).where(Contact.email == "carol@example.com"))
        contact = contact or Contact(email="carol@example.com", name="Carol Customer")
        general = db.session.scalar(select(Queue).where(Queue.name == "General"))
        asked = utcnow() - timedelta(minutes=20)
        conversation = Conversation(address_id=address.id, contact=contact, token=new_conversation_token(),
                                    subject="Where is my parcel?", queue=general, created_at=asked,
                                    last_message_at=asked)
        conversation.messages.append(Message(
            address_id=address.id, direction="in", message_id=DEMO_QUESTION_ID,
            from_addr="Carol Customer <carol@example.com>", to_addrs=address.address, subject="Where is my parcel?",
            text="Hello, I ordered last week and nothing has arrived yet. Where is my parcel?\n",
            html="<p>Hello, I ordered last week and nothing has arrived yet. Where is my parcel?</p>",
            created_at=asked))
        db.session.add(conversation)
        db.session.flush()
    agent = users["agent@demo.test"]
    try:
        send_reply(conversation.id, agent.id, "<p>Thanks for your patience. Your parcel left our warehouse this "
                                              "morning and should arrive within two working days.</p>")
    except CannotSend as exc:
        created.append(f"demo reply not queued: {exc}")
    else:
        created.append("reply to carol@example.com queued (see Ops › Outbox once the worker sent it)")
    return created


DEMO_HEADER = ('<p style="font-weight:bold;color:#2458c6">{{ display_name }}</p>'
               '<p>Hello {{ customer_name }},</p>')
DEMO_FOOTER = ('<p>{{ agent_name }}, {{ display_name }}<br>'
               'Reference {{ conversation_reference }} · <a href="mailto:support@demo.test">support@demo.test</a></p>')


def _seed_channel(admin: User) -> list[str]:
    """A published, enabled platform address `support@<platform domain>`, forwarded from support@demo.test,
    with a header and footer, served by the demo flow that routes by intent (published too)."""
    domain = ensure_platform_domain()
    flow = db.session.scalar(select(Flow).where(Flow.name == DEMO_FLOW))
    name = f"support@{domain.name}"
    if db.session.scalar(select(EmailAddress).where(EmailAddress.address == name)) is not None:
        return []
    address = EmailAddress(domain=domain, address=name, display_name="Demo Support", usage="both", enabled=True,
                           send_vcard=True, forwarded_from="support@demo.test", template_enabled=True,
                           header_html=sanitize_html(DEMO_HEADER), footer_html=sanitize_html(DEMO_FOOTER),
                           flow_id=flow.id)
    db.session.add(address)
    db.session.flush()
    address.touch_draft()
    publish(admin.id, "Demo setup: the support address and its flow", address_ids=[address.id],
            flow_ids=[flow.id] if flow.published_at is None else [])
    return [f"address {name} (published, forwarded from support@demo.test)"]
