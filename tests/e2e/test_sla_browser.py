"""Service levels in the browser (issue 17): an admin sets an SLA policy on the queue's Service levels page,
mail arrives, its inbox row shows the timer, and the inbox sorts by Due soonest."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from playwright.sync_api import expect

from app.blobs import blob_store
from app.flows.runner import run_flow
from app.runtime import sla
from app.runtime.ingest import RawItem, ingest
from tests.e2e.test_workspace_browser import sign_in
from tests.factories import make_address, make_conversation, make_message, make_queue, make_user

pytestmark = pytest.mark.browser


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

    # Mail arrives (ingest, then the flow step that puts it in its queue)
    raw = (b"From: Carol <carol@example.com>\r\nTo: help@mail.pigeonhole.test\r\nSubject: Refund please\r\n"
           b"Message-ID: <refund@example.com>\r\n\r\nI would like a refund.\r\n")
    [result] = ingest(address.id, [RawItem(blob_store().put(raw), len(raw), "cli", "test", raw=raw)])
    run_flow(result.conversation_id)
    db.session.commit()
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
