"""Demo data for the agent workspace (called by `flask demo seed`; idempotent).

A published address on the platform domain linked to the General queue (so New Mail
has a From address), a few conversations with threaded messages (HTML with a quote and
a remote image, an attachment, a failed delivery: a rendered reply with the server's 550 words, so Retry
sends it), and two groups of Standard Responses.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from flask import current_app
from sqlalchemy import select

from app.blobs import blob_store
from app.channels.domains import ensure_platform_domain
from app.extensions import db
from app.inbox.addresses import link_queue_address
from app.models.auth import Queue, User
from app.models.channels import EmailAddress
from app.models.inbox import Attachment, Contact, Conversation, Message
from app.models.responses import ResponseGroup, StandardResponse
from app.publish.services import publish_addresses
from app.runtime.outbound import send_reply

DEMO_TOKEN = "demo-conversation-"


def seed_workspace(agent: User, queue: Queue) -> list[str]:
    created: list[str] = []
    address = _demo_address(queue, created)
    if db.session.scalar(select(Conversation).where(Conversation.token.like(DEMO_TOKEN + "%"))) is None:
        _conversations(address, agent, queue)
        created.append("3 demo conversations")
    if db.session.scalar(select(ResponseGroup).where(ResponseGroup.name == "General")) is None:
        _responses(queue)
        created.append("Standard Responses (General, Billing)")
    return created


def _demo_address(queue: Queue, created: list[str]) -> EmailAddress:
    domain = ensure_platform_domain()
    name = f"support@{current_app.config['PLATFORM_MAIL_DOMAIN'].lower()}"
    address = db.session.scalar(select(EmailAddress).where(EmailAddress.address == name))
    if address is None:
        address = EmailAddress(domain=domain, address=name, display_name="Demo Support", usage="both",
                               forwarded_from="support@acme.example")
        db.session.add(address)
        db.session.flush()
        publish_addresses([address.id], None, "demo seed")
        created.append(f"address {name} (published)")
    link_queue_address(queue, address.id)
    return address


def _conversations(address: EmailAddress, agent: User, queue: Queue) -> None:
    now = datetime.now(timezone.utc)
    def contact(email: str, name: str) -> Contact:  # the outbound demo may have created Carol already
        return db.session.scalar(select(Contact).where(Contact.email == email)) or Contact(email=email, name=name)

    carol = contact("carol@example.com", "Carol Customer")
    dan = contact("dan@example.org", "Dan Doe")
    db.session.add_all([carol, dan])

    parcel = Conversation(address=address, contact=carol, token=DEMO_TOKEN + "1", subject="Where is my parcel?",
                          queue=queue, created_at=now - timedelta(hours=5), last_message_at=now - timedelta(minutes=20))
    refund = Conversation(address=address, contact=dan, token=DEMO_TOKEN + "2", subject="Refund for order 1042",
                          queue=queue, assignee=agent, created_at=now - timedelta(days=1),
                          last_message_at=now - timedelta(hours=2))
    older = Conversation(address=address, contact=carol, token=DEMO_TOKEN + "3", subject="Change of address",
                         queue=queue, status="resolved", created_at=now - timedelta(days=20),
                         last_message_at=now - timedelta(days=19))
    db.session.add_all([parcel, refund, older])
    db.session.flush()

    def message(conv, minutes_ago, direction, text, html=None, **kw):
        m = Message(conversation_id=conv.id, address_id=address.id, direction=direction, text=text, html=html,
                    subject=conv.subject, created_at=now - timedelta(minutes=minutes_ago),
                    from_addr=kw.pop("from_addr", conv.contact.email if direction == "in" else address.address),
                    to_addrs=kw.pop("to_addrs", address.forwarded_from if direction == "in" else conv.contact.email),
                    message_id=f"<demo.{conv.id}.{minutes_ago}@example.com>", **kw)
        db.session.add(m)
        db.session.flush()
        return m

    message(parcel, 300, "in", "Hello, I ordered a kettle last week and it has not arrived. Order 1042.")
    message(parcel, 240, "out", "We are checking with the courier and come back to you today.", author_id=agent.id,
            delivery_status="sent", sent_at=now - timedelta(minutes=239))
    message(parcel, 20, "in", "Any news? The tracking page still says 'in transit'.",
            html=('<p>Any news? The tracking page still says <b>in transit</b>.</p>'
                  '<p><img src="https://tracking.example/logo.png" alt="courier logo"></p>'
                  '<div class="gmail_quote"><p>On Tue, Demo Support wrote:</p><blockquote>'
                  'We are checking with the courier and come back to you today.</blockquote></div>'),
            cc_addrs="partner@example.com")
    asked = message(refund, 1440, "in", "Please refund order 1042, the kettle arrived broken. Photo attached.")
    photo = b"\x89PNG\r\n\x1a\n demo photo bytes"
    db.session.add(Attachment(message_id=asked.id, filename="broken-kettle.png", content_type="image/png",
                              size=len(photo), sha256=blob_store().put(photo)))
    _failed_reply(refund, agent, now)
    message(refund, 120, "note", "Customer called: mailbox full, will retry tomorrow.", author_id=agent.id,
            from_addr=agent.name)
    message(older, 28800, "in", "I moved: my new address is 1 Main Street.")
    message(older, 27400, "out", "Thanks, we updated your address.", author_id=agent.id, delivery_status="sent")


def _failed_reply(conversation: Conversation, agent: User, now: datetime) -> Message:
    """A reply the relay refused for good: rendered and queued like any reply (its bytes stored, so
    Retry sends it), then failed with the server's words, as the send job records a 5xx answer."""
    failed = send_reply(conversation.id, agent.id, "<p>Your refund is on its way.</p>", check_transport=False)
    failed.created_at = failed.last_attempt_at = now - timedelta(minutes=150)
    failed.delivery_status, failed.delivery_attempts, failed.next_attempt_at = "failed", 1, None
    failed.smtp_code, failed.smtp_reply = 550, "5.1.1 <dan@example.org>: Recipient address rejected: mailbox full"
    failed.delivery_error = f"{failed.smtp_code} {failed.smtp_reply}"
    conversation.last_message_at = now - timedelta(hours=2)
    db.session.flush()
    return failed


def _responses(queue: Queue) -> None:
    general = ResponseGroup(name="General", shortcut="general", description="Everyday answers",
                            visible_to_all=True, queue_ids=[])
    billing = ResponseGroup(name="Billing", shortcut="billing", description="Refunds and invoices",
                            visible_to_all=False, queue_ids=[queue.id])
    db.session.add_all([general, billing])
    db.session.add_all([
        StandardResponse(group=general, title="Thanks for waiting",
                         body="<p>Hello {{customer.first_name}},</p><p>thank you for your patience.</p>"
                              "<p>{{agent.first_name}}</p>"),
        StandardResponse(group=general, title="Shipping times", subject="Your delivery",
                         body="<p>Hello {{customer.first_name}},</p><p>parcels usually arrive within "
                              "<b>3 working days</b>.</p>"),
        StandardResponse(group=billing, title="Refund issued", subject="Your refund",
                         body="<p>Dear {{customer.first_name}} {{customer.last_name}},</p><p>we have issued "
                              "your refund; it shows on your statement within 5 days.</p>"),
    ])
