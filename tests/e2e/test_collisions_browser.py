"""Two agents in two browser contexts on one conversation (issue 16, item 4): one's own Status and Transfer update
the header badge and the arrival card without a reload; taking a colleague's conversation asks first and names who."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import expect

from tests.e2e.test_workspace_browser import sign_in
from tests.factories import make_address, make_conversation, make_message, make_queue, make_user

pytestmark = pytest.mark.browser


def test_badge_and_arrival_follow_own_actions_and_taking_from_a_colleague_asks(page, browser, live_url, db):
    alex = make_user("agent", email="alex@example.test", name="Alex Agent")
    bea = make_user("agent", email="bea@example.test", name="Bea Agent")
    support = make_queue("Support", members=[alex, bea])
    make_queue("Returns", members=[alex, bea])
    conv = make_conversation(queue=support, address=make_address("help@mail.pigeonhole.test", queues=[support]),
                             contact_email="carol@example.com", contact_name="Carol Customer")
    make_message(conv)

    sign_in(page, "alex@example.test")
    page.goto(f"/inbox/c/{conv.id}")
    page.get_by_label("Status").select_option("pending")
    # The page hears of its own change too and refreshes the card (the same card): wait for that refresh,
    # so that Playwright's choice below (made within a millisecond, unlike a person's) is not made at the
    # instant of that swap.
    try:
        with page.expect_response(lambda r: r.url.endswith(f"/inbox/c/{conv.id}/panel"), timeout=3000):
            page.get_by_role("button", name="Set status").click()
    except PlaywrightTimeoutError:
        pass  # the event stream was not open yet: no refresh comes
    expect(page.locator("#status-badge")).to_have_text("pending")
    page.wait_for_timeout(100)
    page.get_by_label("Queue", exact=True).select_option(label="Returns")
    page.get_by_role("button", name="Transfer").click()
    expect(page.locator("#arrival-queue dd")).to_have_text("Returns")

    other = browser.new_context(base_url=live_url, viewport={"width": 1280, "height": 800})
    try:
        bea_page = other.new_page()
        sign_in(bea_page, "bea@example.test")
        bea_page.goto(f"/inbox/c/{conv.id}")
        bea_page.get_by_role("button", name="Assign to me").click()
        expect(bea_page.locator("#arrival-assignee dd")).to_have_text("Bea Agent")
    finally:
        other.close()

    page.get_by_role("button", name="Assign to me").click()  # Alex's page still shows it unassigned
    question = page.locator(".ask-first")
    expect(question).to_contain_text(re.compile(r"Bea Agent took this conversation \d+ s ago\."))
    expect(page.locator("#arrival-assignee dd")).to_have_text("Bea Agent")  # nothing taken yet; Bea's change shown
    question.get_by_role("button", name="Take it anyway").click()
    expect(page.locator("#arrival-assignee dd")).to_have_text("Alex Agent")
    expect(page.locator(".ask-first")).to_have_count(0)
