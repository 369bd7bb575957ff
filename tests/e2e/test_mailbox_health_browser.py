"""Mailboxes that say what is wrong, in a real browser: the admins' banner, its link, and Poll now."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.models.channels import MailboxState
from app.queues import get_queue
from tests.e2e.test_flow_editor_browser import _sign_in as sign_in
from tests.factories import make_user
from tests.web.test_mailbox_health_pages import backing_off

pytestmark = pytest.mark.browser


def test_admins_see_the_failing_mailbox_follow_the_banner_and_poll_it_now(page, db, browser, live_url):
    make_user("admin", email="ada@example.test")
    make_user("agent", email="al@example.test")
    address = backing_off(db)
    state = db.session.scalars(select(MailboxState).where(MailboxState.address_id == address.id)).one()
    state.last_error = "IMAP at 127.0.0.1:993 (SSL): The server refused the connection."
    state.failing_since = datetime.now(timezone.utc) - timedelta(minutes=30)
    db.session.commit()

    sign_in(page, "ada@example.test")
    banner = page.get_by_role("alert")
    expect(banner).to_contain_text("help@acme.test has not fetched mail since")
    expect(banner).to_contain_text("The server refused the connection.")
    banner.get_by_role("link", name="Ops › Inbound mail").click()
    expect(page.get_by_role("heading", name="Inbound mail", exact=True)).to_be_visible()
    row = page.locator("#mailboxes tr", has_text="help@acme.test")
    expect(row).to_contain_text("5 in a row")
    row.get_by_role("button", name="Poll help@acme.test now").click()
    expect(page.locator("#flashes")).to_contain_text("Polling now")
    expect(page.locator("#mailboxes tr", has_text="help@acme.test").locator("td").nth(5)).to_have_text("due")
    assert get_queue("poll").job_ids == [f"poll-mailbox-{address.id}"]
    assert page.js_errors == []

    agent = browser.new_context(base_url=live_url).new_page()
    sign_in(agent, "al@example.test")
    expect(agent.get_by_role("heading").first).to_be_visible()
    assert agent.locator("#mailbox-alerts").count() == 0
    agent.context.close()
