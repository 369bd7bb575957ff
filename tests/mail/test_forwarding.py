"""Forwarding guidance at ingest: Gmail's forwarding confirmation through the real SMTP ingress becomes a notice for
admins (no conversation, no flow, no automatic reply), and forwarded mail gives the address its Forwarding status."""
from __future__ import annotations

import smtplib
from email.parser import BytesHeaderParser
from email.policy import compat32
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.mail.forwarding import forwarded_for, recognise_confirmation
from app.mail.parse import parse_message
from app.models.flows import FlowRun
from app.models.inbound import ForwardingConfirmation, InboundRaw
from app.models.inbox import Conversation, Message
from app.queues import get_queue
from tests.mail.conftest import make_address, message
from tests.mail.test_ingress import running, work_ingest_queue

FIXTURE = Path(__file__).resolve().parent.parent / "data" / "mail" / "gmail-forwarding-confirmation.eml"
PLATFORM = "acme-support@mail.pigeonhole.test"
CONFIRM_LINK = ("https://mail-settings.google.com/mail/vf-%5BANGjdJ9hYqN3sX0d7uK2bV4eR8tW1mZ6cF5gP3oL%5D-"
                "Qp3kz7bV9mWcJ0uY1rT2sE4dA6xN8hK")


def headers(raw: bytes):
    return BytesHeaderParser(policy=compat32).parsebytes(raw)


# --- recognition (app.mail.forwarding) -----------------------------------------------------------------

def test_gmail_confirmation_is_recognised_with_its_confirm_link_and_code():
    parsed = parse_message(FIXTURE.read_bytes())
    found = recognise_confirmation(parsed.from_addr, parsed.subject, parsed.text)
    assert found is not None and found.provider == "gmail"
    assert found.requested_by == "sales@acme.example"
    assert found.code == "187412345"
    assert found.link == CONFIRM_LINK  # the confirm link, not the cancel one ("/mail/uf-") nor support.google.com


@pytest.mark.parametrize("sender, subject, text, expected_link", [
    # A customer writing about Gmail forwarding is a customer.
    ("carla@example.com", "Gmail Forwarding Confirmation", "https://mail.google.com/mail/vf-abc", "none"),
    # A forged confirmation: recognised (kept from the agents), but a link off Google's hosts is never shown.
    ("forwarding-noreply@google.com", "(#1234567) Gmail Forwarding Confirmation - Receive Mail from x@y.example",
     "Confirmation code: 1234567\nhttps://evil.example/mail/vf-abc\nhttps://google.com.evil.example/mail/vf-x\n"
     "http://mail.google.com/mail/vf-plain-http", None),
    ("forwarding-noreply@google.com", "(#1234567) Gmail Forwarding Confirmation - Receive Mail from x@y.example",
     "https://isolated.mail.google.com/mail/vf-%5Babc%5D-def", "https://isolated.mail.google.com/mail/vf-%5Babc%5D-def"),
])
def test_recognition_needs_googles_sender_and_subject_and_keeps_only_googles_links(sender, subject, text,
                                                                                  expected_link):
    found = recognise_confirmation(sender, subject, text)
    if expected_link == "none":
        assert found is None
    else:
        assert found is not None and found.link == expected_link and found.code == "1234567"


def test_forwarded_for_reads_gmail_microsoft_and_plain_forwards():
    gmail = message(to="sales@acme.example", X_Forwarded_For=f"sales@acme.example {PLATFORM}",
                    X_Forwarded_To=PLATFORM, Delivered_To="sales@acme.example")
    assert forwarded_for(headers(gmail), PLATFORM) == "sales@acme.example"
    rules = message(to="Sales <sales@acme.example>", X_MS_Exchange_Inbox_Rules_Loop="sales@acme.example")
    assert forwarded_for(headers(rules), PLATFORM) == "sales@acme.example"
    alias = message(to="Acme Sales <SALES@acme.example>")  # a server-side alias adds nothing; To: is kept
    assert forwarded_for(headers(alias), PLATFORM, expected="sales@acme.example") == "sales@acme.example"
    assert forwarded_for(headers(alias), PLATFORM) is None
    direct = message(to=PLATFORM)
    assert forwarded_for(headers(direct), PLATFORM, expected="sales@acme.example") is None


# --- through the real SMTP ingress -------------------------------------------------------------------

@pytest.fixture
def ingress(app, db):
    make_address(PLATFORM, forwarded_from="sales@acme.example")
    with running(app) as controller:
        yield controller


def deliver(app, ingress, raw: bytes, sender="carla@example.com"):
    with smtplib.SMTP(ingress.hostname, ingress.port, timeout=10) as smtp:
        assert smtp.sendmail(sender, [PLATFORM], raw) == {}
    work_ingest_queue(app)


def count(db, model):
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model))


def test_gmail_confirmation_through_the_ingress_is_shown_to_admins_not_opened_as_a_conversation(
        app, db, ingress, client, login_as):
    deliver(app, ingress, FIXTURE.read_bytes(), sender="forwarding-noreply@google.com")
    row = db.session.scalars(select(InboundRaw)).one()
    assert row.status == "fwd_confirmation" and row.error is None
    assert count(db, Conversation) == 0 and count(db, FlowRun) == 0
    assert get_queue("flows").job_ids == []  # no flow step, so no automatic reply either
    assert db.session.scalar(select(func.count()).select_from(Message).where(Message.direction == "out")) == 0
    kept = db.session.scalars(select(ForwardingConfirmation)).one()
    assert (kept.provider, kept.requested_by, kept.code, kept.link) == ("gmail", "sales@acme.example", "187412345",
                                                                         CONFIRM_LINK)
    assert kept.message_id == row.message_row_id

    login_as("admin")
    page = client.get("/inbox/", follow_redirects=True).get_data(as_text=True)
    assert 'id="forwarding-notices"' in page
    assert f'href="{CONFIRM_LINK}"' in page and "187412345" in page and "sales@acme.example" in page
    forwarding = client.get(f"/channels/email/addresses/{kept.address_id}/forwarding").get_data(as_text=True)
    assert f'href="{CONFIRM_LINK}"' in forwarding and "Forwarding confirmations" in forwarding
    # The confirmation is not evidence of forwarded mail.
    assert "Nothing received yet" in forwarding

    # Delivered again (the provider retries): a duplicate, one notice.
    deliver(app, ingress, FIXTURE.read_bytes(), sender="forwarding-noreply@google.com")
    assert count(db, ForwardingConfirmation) == 1 and count(db, Conversation) == 0


def test_an_agent_sees_no_confirmation_notice(app, db, ingress, client, login_as):
    deliver(app, ingress, FIXTURE.read_bytes(), sender="forwarding-noreply@google.com")
    login_as("agent")
    page = client.get("/inbox/", follow_redirects=True).get_data(as_text=True)
    assert "forwarding-notices" not in page and CONFIRM_LINK not in page


def test_forwarded_mail_gives_the_address_its_forwarding_status(app, db, ingress, client, login_as):
    login_as("admin")
    address_id = make_address_id(db)
    listing = client.get("/channels/email/").get_data(as_text=True)
    assert "Nothing received yet" in listing

    deliver(app, ingress, message(subject="Straight to you", to=PLATFORM))
    page = client.get(f"/channels/email/addresses/{address_id}/forwarding").get_data(as_text=True)
    assert "Mail arrived on" in page and "but none shows it was forwarded" in page and "Forwarded mail seen" not in page

    forwarded = message(subject="Order 17", to="Acme Sales <sales@acme.example>",
                        X_Forwarded_For=f"sales@acme.example {PLATFORM}", Delivered_To="sales@acme.example")
    deliver(app, ingress, forwarded)
    assert db.session.scalars(select(Conversation).where(Conversation.subject == "Order 17")).one()
    row = db.session.scalars(select(InboundRaw).order_by(InboundRaw.id.desc())).first()
    assert row.forwarded_for == "sales@acme.example"
    page = client.get(f"/channels/email/addresses/{address_id}/forwarding").get_data(as_text=True)
    assert "Forwarded mail seen from sales@acme.example on" in page
    listing = client.get("/channels/email/").get_data(as_text=True)
    assert "Forwarded mail seen from sales@acme.example on" in listing


def make_address_id(db):
    from app.models.channels import EmailAddress

    return db.session.scalar(select(EmailAddress.id).where(EmailAddress.address == PLATFORM))


def test_a_hostile_trace_header_is_read_without_exhausting_the_stack():
    """A corpus message's header of thousands of empty list members made the standard parser recurse until
    RecursionError, and its ingest failed."""
    from email.message import Message

    from app.mail.forwarding import forwarded_for

    headers = Message()
    headers["To"] = "support@mail.pigeonhole.test"
    headers["X-Forwarded-For"] = "(" * 3000 + "," * 3000 + " sales@acme.example"
    assert forwarded_for(headers, "support@mail.pigeonhole.test") in (None, "sales@acme.example")
    headers.replace_header("X-Forwarded-For", "," * 5000 + " sales@acme.example support@mail.pigeonhole.test")
    assert forwarded_for(headers, "support@mail.pigeonhole.test") == "sales@acme.example"
