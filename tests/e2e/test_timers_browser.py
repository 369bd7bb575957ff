"""Timers in the browser (docs/escalation.md): an admin opens Flows › Queue › Timers, enables Agent Inactivity with
its duration and message, adds an alert (a bad address is refused with the typed values kept), and the rule then
takes a conversation from an idle agent, who sees why among the Notifications and marks it read."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.flows.timers import run_due_timers
from app.models.escalation import QueueAlert, QueueTimer
from tests.e2e.test_workspace_browser import sign_in
from tests.factories import make_address, make_conversation, make_message, make_queue, make_user

pytestmark = pytest.mark.browser


def test_set_a_timer_and_an_alert_in_the_browser(page, unique_ids, db):
    make_user("admin", email="ada@example.test", name="Ada Admin")
    alex = make_user("agent", email="alex@example.test", name="Alex Agent")
    bea = make_user("agent", email="bea@example.test", name="Bea Agent")
    support = make_queue("Support", members=[alex, bea])
    address = make_address("help@mail.pigeonhole.test", queues=[support])
    conv = make_conversation(queue=support, address=address, contact_email="carol@example.com",
                             contact_name="Carol Customer", assignee=alex)
    make_message(conv, text="Where is my lamp?", when=datetime.now(timezone.utc) - timedelta(minutes=50))

    sign_in(page, "ada@example.test")
    page.goto("/flows/queues/")
    page.get_by_role("link", name="Support", exact=True).click()
    page.get_by_role("link", name="Timers").click()
    expect(page.get_by_role("heading", name="Timers · Queue Support")).to_be_visible()

    page.get_by_label("Enable Agent Inactivity").check()
    inactivity = page.locator("form[aria-labelledby='agent_inactivity-title']")
    inactivity.get_by_label("Duration (minutes)").fill("45")
    inactivity.get_by_label("Message").fill("{{ customer_name }} went back to {{ queue }} after {{ elapsed_time }}")
    inactivity.get_by_role("button", name="Save Agent Inactivity").click()
    expect(page.get_by_text("Agent Inactivity saved.")).to_be_visible()
    expect(page.get_by_label("Enable Agent Inactivity")).to_be_checked()
    expect(page.locator("form[aria-labelledby='agent_inactivity-title']").get_by_label("Duration (minutes)")).to_have_value("45")

    page.get_by_label("Figure").select_option(label="Backlog")
    page.get_by_label("Threshold").fill("10")
    page.get_by_label("Mail to").fill("not an address")
    page.get_by_role("button", name="Add alert").click()
    expect(page.get_by_role("alert").filter(has_text="is not an email address")).to_be_visible()
    expect(page.get_by_label("Threshold")).to_have_value("10")
    page.get_by_label("Mail to").fill("lead@example.com")
    page.get_by_role("button", name="Add alert").click()
    expect(page.get_by_text("Backlog alert saved.")).to_be_visible()
    expect(page.locator("table.list")).to_contain_text("lead@example.com")

    rule = db.session.scalar(select(QueueTimer))
    assert (rule.kind, rule.enabled, rule.minutes) == ("agent_inactivity", True, 45)
    assert db.session.scalar(select(QueueAlert.metric)) == "backlog"

    # The rule at work: the conversation leaves Alex, who is told why.
    assert run_due_timers()["agent_inactivity"] == 1
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, "alex@example.test")
    link = page.locator("#notifications-link")
    expect(link).to_contain_text("1")  # the one unread badge
    link.click()
    notice = page.locator(".notification-list li").filter(has_text="Carol Customer went back to Support after 50 minutes")
    expect(notice).to_contain_text("Timer")
    notice.get_by_role("button", name="Mark as read").click()
    expect(page.locator("#notifications-link .notification-count")).to_have_count(0)
