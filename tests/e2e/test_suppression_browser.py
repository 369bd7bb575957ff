"""Suppressed recipients in a real browser (Debian's Chromium through Playwright): Carol's address bounced
(a Postfix 5.1.1 DSN through ingest). The agent's Reply warns at once, adding Erin (bounced too) to CC warns
as it is typed, Send asks first, and "Send anyway" sends."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.models.inbox import Message
from tests.e2e.test_workspace_browser import sign_in
from tests.factories import make_address, make_conversation, make_message, make_queue, make_user
from tests.suppression_fixtures import bounce

pytestmark = pytest.mark.browser


def test_the_agent_is_warned_asked_and_may_send_anyway(page, db, app):
    agent = make_user("agent", email="alex@example.test", name="Alex Agent")
    queue = make_queue("Support", members=[agent])
    address = make_address("help@mail.pigeonhole.test", queues=[queue])
    start = datetime.now(timezone.utc) - timedelta(hours=2)
    conv = make_conversation(queue=queue, address=address, contact_email="carol@example.com",
                             contact_name="Carol Customer", subject="Where is my parcel?", when=start)
    make_message(conv, text="Hello, my parcel has not arrived.", when=start)
    bounce(conv, "carol@example.com")
    bounce(conv, "erin@example.com")
    today = f"{datetime.now(timezone.utc):%d %b %Y}"

    sign_in(page, "alex@example.test")
    page.locator(f"#conv-{conv.id}").get_by_role("link", name="Where is my parcel?").click()
    page.locator(".compose-bar").get_by_role("button", name="Reply", exact=True).click()
    composer = page.locator(".composer")
    expect(composer.get_by_label("To", exact=True)).to_have_value("carol@example.com")
    warnings = composer.locator(".recipient-error")
    expect(warnings.nth(0)).to_contain_text(
        f"Mail to carol@example.com bounced on {today}: mailbox does not exist (5.1.1).")

    composer.get_by_label("CC", exact=True).fill("erin@example.com")
    composer.get_by_label("CC", exact=True).press("Tab")  # checked once the field is left
    expect(warnings.nth(1)).to_contain_text(f"Mail to erin@example.com bounced on {today}")
    composer.get_by_label("CC", exact=True).fill("dave@example.com")
    composer.get_by_label("CC", exact=True).press("Tab")  # checked once the field is left
    expect(warnings.nth(1)).to_be_empty()
    composer.get_by_label("CC", exact=True).fill("erin@example.com")
    composer.get_by_label("CC", exact=True).press("Tab")  # checked once the field is left
    expect(warnings.nth(1)).to_contain_text("erin@example.com")
    editor = composer.get_by_role("textbox", name="Message")
    editor.click()
    editor.press_sequentially("Hi Carol, it left this morning.")
    expect(composer.locator(".draft-status")).to_contain_text("Saved")

    composer.get_by_role("button", name="Send", exact=True).click()
    confirm = page.locator(".composer .suppressed-warning")
    expect(confirm).to_contain_text("Mail to these addresses bounced before")
    expect(confirm.get_by_role("listitem")).to_have_count(2)
    assert db.session.scalar(select(Message).where(Message.author_id == agent.id)) is None
    confirm.get_by_role("button", name="Send anyway").click()
    expect(page.locator(".composer")).to_have_count(0)
    expect(page.locator(".tile-out").last).to_contain_text("Hi Carol, it left this morning.")
    db.session.expire_all()
    sent = db.session.scalar(select(Message).where(Message.author_id == agent.id))
    assert sent.to_addrs == "carol@example.com" and sent.cc_addrs == "erin@example.com"
    assert page.js_errors == []
