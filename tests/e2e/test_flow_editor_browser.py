"""The flow editor in a real browser: build a two-rule flow without reloads, publish it, run it, read the run log."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.flows import runner
from app.models.flows import Flow
from tests.factories import PASSWORD, make_queue, make_user
from tests.flow_factories import make_address, make_inbound

pytestmark = pytest.mark.browser


def _sign_in(page, email):
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/inbox/(\?view=mine)?$"))  # agents land on Mine


def _add_rule(page, name, subject=None, queue=None, assign=None):
    page.get_by_role("button", name="Add rule").click()
    form = page.locator("#rule-form")
    expect(form).to_be_visible()
    form.get_by_label("Rule name").fill(name)
    if subject:
        form.get_by_label("Subject text").fill(subject)
    if queue:
        form.get_by_label("Set queue").select_option(label=queue)
    if assign:
        form.get_by_label("Assign to").select_option(label=assign)
    form.get_by_role("button", name="Save rule").click()
    expect(page.locator("#rule-form")).to_have_count(0)


def test_build_publish_and_run_a_two_rule_flow(page, db):
    make_user("admin", email="ada@example.test", name="Ada")
    ann = make_user("agent", name="Ann")
    make_queue("Billing", members=[ann])
    make_queue("General")

    _sign_in(page, "ada@example.test")
    page.goto("/flows/new")
    page.get_by_label("Name").fill("Support triage")
    page.get_by_role("button", name="Create flow").click()
    expect(page.get_by_role("heading", name="Flow: Support triage")).to_be_visible()
    expect(page.locator("#publish-state")).to_have_text("Never published")

    # An invalid rule stays open with the error next to its field.
    page.get_by_role("button", name="Add rule").click()
    page.locator("#rule-form").get_by_label("Rule name").fill("Broken")
    page.locator("#rule-form").get_by_label("Subject", exact=True).select_option(label="matches the regular expression")
    page.locator("#rule-form").get_by_label("Subject text").fill("(refund")
    page.locator("#rule-form").get_by_label("Set queue").select_option(label="Billing")
    page.get_by_role("button", name="Save rule").click()
    expect(page.locator("#subject_value-error")).to_contain_text("not a valid regular expression")
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator("#rule-form")).to_have_count(0)

    url_before = page.url
    _add_rule(page, "Everything else", queue="General")
    _add_rule(page, "Refunds", subject="refund", queue="Billing", assign="The least-loaded member of the queue")
    rules = page.locator("ol.rules > li h3")
    expect(rules).to_have_text(["1. Everything else", "2. Refunds"])
    page.get_by_role("button", name="Move rule Refunds up").click()
    expect(rules).to_have_text(["1. Refunds", "2. Everything else"])
    assert page.url == url_before  # no reloads: all of it was HTMX
    expect(page.locator("ol.rules")).to_contain_text(
        "When subject contains “refund” Then set queue Billing · assign to the least-loaded member")

    page.get_by_role("button", name="Publish").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Publish").click()
    expect(dialog.locator(".field-error")).to_have_text("Say what changed and why.")
    dialog.get_by_label("Comment").fill("Refunds go to Billing")
    dialog.get_by_role("button", name="Publish").click()
    expect(page.locator("#publish-state")).to_have_text("Published", timeout=15000)
    expect(page.locator("#flashes")).to_contain_text("Support triage: first publication, 2 rules")

    # Mail arrives at an address served by the flow; the flows worker runs it.
    flow = db.session.scalar(select(Flow).where(Flow.name == "Support triage"))
    message = make_inbound(make_address(flow=flow), subject="Refund for order 42", text="Please refund me.")
    runner.run_flow(message.conversation_id)
    db.session.commit()

    page.goto(f"/flows/conversations/{message.conversation_id}/runs")
    routing = page.locator("#routing")
    expect(routing).to_contain_text("Billing")
    expect(routing).to_contain_text("Ann")
    log = page.locator("ol.run-log")
    expect(log).to_contain_text("flow Support triage")
    expect(log).to_contain_text("Rules matched: Refunds")
    expect(log).to_contain_text("Set queue: Billing")
    expect(log).to_contain_text("Assign: assigned to Ann (least loaded)")
    assert page.js_errors == []
