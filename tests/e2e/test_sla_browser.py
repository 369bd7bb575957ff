"""Service levels in the browser (issue 17): an admin sets an SLA policy on the queue's Service levels page,
mail arrives, its inbox row shows the timer, and the inbox sorts by Due soonest; with the queue's business
hours, time zone and a holiday set on the queue's page, the due time counts business minutes only."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from playwright.sync_api import expect

from app.blobs import blob_store
from app.flows.runner import run_flow
from app.models.inbox import Conversation
from app.runtime import sla
from app.runtime.ingest import RawItem, ingest
from tests.e2e.test_workspace_browser import sign_in
from tests.factories import make_address, make_conversation, make_message, make_queue, make_user

pytestmark = pytest.mark.browser


def _mail_arrives(address, subject: str, message_id: str, db) -> int:
    """Carol's mail to `address` arrives: ingest, then the flow step that puts it in its queue. Its id."""
    raw = (f"From: Carol <carol@example.com>\r\nTo: {address.address}\r\nSubject: {subject}\r\n"
           f"Message-ID: {message_id}\r\n\r\nPlease answer.\r\n").encode()
    [result] = ingest(address.id, [RawItem(blob_store().put(raw), len(raw), "cli", "test", raw=raw)])
    run_flow(result.conversation_id)
    db.session.commit()
    return result.conversation_id


def test_policy_set_in_the_browser_gives_arriving_mail_a_timer_and_due_soonest_sorts(page, unique_ids, db):
    admin = make_user("admin", email="ada@example.test", name="Ada Admin")
    support = make_queue("Support", members=[admin])
    support.is_default = True
    address = make_address("help@mail.pigeonhole.test", queues=[support])
    older = make_conversation(queue=support, address=address, subject="Old question",
                              when=datetime.now(timezone.utc) - timedelta(hours=3))
    make_message(older, when=older.created_at)
    db.session.commit()

    sign_in(page, "ada@example.test")
    page.goto("/flows/queues/")
    page.get_by_role("link", name="Service levels of Support").click()
    expect(page.get_by_role("heading", name="Service levels: Support")).to_be_visible()
    expect(page.get_by_text("No SLA policies yet")).to_be_visible()
    page.get_by_label("Policy name").fill("Standard")
    page.get_by_label("First response within (business minutes)").fill("45")
    page.get_by_label("Resolution within (business minutes)").fill("600")
    page.get_by_role("button", name="Add policy").click()
    expect(page.locator("#sla-policies")).to_contain_text("Standard")
    expect(page.locator("#sla-policies")).to_contain_text("45 min")
    expect(page.locator("#sla-policies")).to_contain_text("10 h")

    _mail_arrives(address, "Refund please", "<refund@example.com>", db)
    # The older conversation was already in the queue when the policy was saved: it is overdue now
    db.session.refresh(older)
    sla.customer_wrote(older, older.created_at)
    db.session.commit()

    page.goto("/inbox/?view=all")
    rows = page.locator("#conversation-rows .conv-row")
    expect(rows).to_have_count(2)
    fresh = rows.filter(has_text="Refund please")
    expect(fresh.locator(".sla-timer time")).to_have_text(re.compile(r"First response due in 4[45] min"))
    expect(fresh.locator(".sla-timer time")).to_have_attribute("datetime", re.compile(r"^\d{4}-\d\d-\d\dT"))
    expect(rows.first).to_contain_text("Refund please")  # newest activity first
    page.get_by_label("Sort").select_option(label="Due soonest")
    expect(page).to_have_url(re.compile(r"sort=due"))
    expect(rows.first).to_contain_text("Old question")
    expect(rows.first.locator(".sla-timer.sla-breached")).to_contain_text("overdue")
    expect(rows.first.locator(".sla-timer")).to_contain_text("(breached)")
    expect(rows.nth(1)).to_contain_text("Refund please")
    assert page.js_errors == []


def test_business_hours_and_a_holiday_set_in_the_browser_give_the_due_time_in_business_minutes(page, unique_ids, db):
    admin = make_user("admin", email="ada@example.test", name="Ada Admin")
    admin.time_zone = "America/New_York"  # the admin reads times in New York; the queue counts in Berlin
    support = make_queue("Support", members=[admin])
    support.is_default = True
    address = make_address("help@mail.pigeonhole.test", queues=[support])
    db.session.commit()

    sign_in(page, "ada@example.test")
    page.goto("/flows/queues/")
    page.get_by_role("link", name="Support", exact=True).click()
    expect(page.get_by_role("heading", name="Queue Support")).to_be_visible()
    page.get_by_label("Time zone").fill("Europe/Berlin")
    page.get_by_label("Business hours").fill("Mon-Fri 09:00-17:00")
    page.get_by_label("Holidays").fill("2026-03-30")  # the Monday after the clocks go forward in Berlin
    page.get_by_role("button", name="Save queue").click()
    expect(page.get_by_text("Queue “Support” saved.")).to_be_visible()

    page.get_by_role("link", name="Service levels of Support").click()
    calendar = page.locator("p.hint").filter(has_text="business minutes of the queue's hours")
    expect(calendar).to_contain_text("Europe/Berlin: Mon 09:00-17:00;")
    expect(calendar).to_contain_text("Fri 09:00-17:00; holidays 2026-03-30")
    page.get_by_label("Policy name").fill("Office hours")
    page.get_by_label("First response within (business minutes)").fill("120")
    page.get_by_role("button", name="Add policy").click()
    expect(page.locator("#sla-policies")).to_contain_text("Office hours")
    expect(page.locator("#sla-policies")).to_contain_text("2 h")

    conversation_id = _mail_arrives(address, "Late on Friday", "<late-friday@example.com>", db)
    # The mail arrived on Friday 27 March 2026, 16:30 in Berlin (CET, 15:30 UTC): ingest stamped the real
    # "now", so the wait starts again at the chosen time, as the SLA web tests do.
    conversation = db.session.get(Conversation, conversation_id)
    assert conversation.queue_id == support.id and conversation.first_response_due_at is not None
    conversation.sla_waiting_since = None
    sla.customer_wrote(conversation, datetime(2026, 3, 27, 15, 30, tzinfo=timezone.utc))
    db.session.commit()
    # By hand: 30 business minutes on Friday (16:30-17:00); Saturday and Sunday closed (Berlin moves to
    # CEST on Sunday 29 March); Monday 30 March a holiday; the other 90 on Tuesday from 09:00: Tuesday
    # 31 March 10:30 CEST = 08:30 UTC (04:30 EDT in New York).
    due = datetime(2026, 3, 31, 8, 30, tzinfo=timezone.utc)
    assert conversation.first_response_due_at == due and conversation.sla_due_at == due

    page.goto("/inbox/?view=all")
    row = page.locator("#conversation-rows .conv-row").filter(has_text="Late on Friday")
    expect(row.locator(".sla-timer time")).to_have_attribute("datetime", due.isoformat())
    expect(row.locator(".sla-timer time")).to_have_attribute("title", "Due 2026-03-31 04:30 EDT")
    row.get_by_role("link", name="Late on Friday").click()
    expect(page.get_by_role("heading", name="Late on Friday")).to_be_visible()
    expect(page.locator("#sla-header time")).to_have_attribute("datetime", due.isoformat())
    expect(page.locator("#sla-header time")).to_have_attribute("title", "Due 2026-03-31 04:30 EDT")
    assert page.js_errors == []
