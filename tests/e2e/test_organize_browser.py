"""Organising in the browser (issue 16): tag with suggestions and set the priority from the Organize card (each
change a line in the thread at once), filter the inbox by tag and priority (the filters survive switching
tabs), and merge two conversations of the same customer."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.test_workspace_browser import sign_in
from tests.factories import make_address, make_conversation, make_message, make_queue, make_user

pytestmark = pytest.mark.browser


def test_tags_priority_filters_and_merge(page, unique_ids, db):
    alex = make_user("agent", email="alex@example.test", name="Alex Agent")
    support = make_queue("Support", members=[alex])
    address = make_address("help@mail.pigeonhole.test", queues=[support])
    first = make_conversation(queue=support, address=address, contact_email="carol@example.com",
                              contact_name="Carol Customer", subject="Broken lamp", assignee=alex)
    make_message(first, text="The lamp arrived broken.")
    second = make_conversation(queue=support, address=address, contact_email="carol@example.com",
                               contact_name="Carol Customer", subject="Broken lamp again", assignee=alex)
    make_message(second, text="Any news about the lamp?")
    tagged = make_conversation(queue=support, address=address, contact_email="dave@example.com",
                               subject="Old damaged order")
    make_message(tagged, text="Damaged too.")
    tagged.tags = []
    db.session.commit()

    sign_in(page, "alex@example.test")
    # Someone tagged another conversation "damaged" before: it is suggested while typing.
    page.goto(f"/inbox/c/{tagged.id}")
    page.get_by_label("Add tag").fill("damaged")
    page.get_by_role("button", name="Add tag").click()
    expect(page.locator("#thread .trail-event").last).to_contain_text("Alex Agent added the tag damaged")

    page.goto(f"/inbox/c/{first.id}")
    tag_input = page.get_by_label("Add tag")
    tag_input.click()
    tag_input.press_sequentially("dam")
    expect(page.locator("#tag-suggestions option[value='damaged']")).to_have_count(1)
    tag_input.fill("damaged")
    tag_input.press("Enter")
    expect(page.locator(".tag-list")).to_contain_text("damaged")
    expect(page.locator("#thread .trail-event").last).to_contain_text(
        re.compile(r"Alex Agent added the tag damaged · \d{4}-\d\d-\d\d \d\d:\d\d"))
    page.get_by_label("Priority").select_option(label="Urgent")
    page.get_by_role("button", name="Set priority").click()
    expect(page.locator("#thread .trail-event").last).to_contain_text("Alex Agent set the priority to Urgent")

    # The inbox: filter by tag and priority; the tabs keep the filters.
    page.goto("/inbox/?view=all")
    page.get_by_label("Tag", exact=True).fill("damaged")
    page.get_by_label("Tag", exact=True).press("Enter")
    rows = page.locator("#conversation-rows .conv-row")
    expect(rows).to_have_count(2)
    page.get_by_label("Priority").select_option(label="Urgent")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Broken lamp")
    expect(rows.first.locator(".badge.priority-2")).to_have_text("Urgent")
    page.get_by_role("link", name=re.compile("^Mine")).click()
    expect(page).to_have_url(re.compile(r"view=mine.*"))
    expect(page.get_by_label("Tag", exact=True)).to_have_value("damaged")
    expect(page.get_by_label("Priority")).to_have_value("2")
    expect(rows).to_have_count(1)

    # Merge the customer's second conversation into the first: one thread, in time order.
    page.goto(f"/inbox/c/{second.id}")
    page.get_by_label("Merge into").select_option(str(first.id))
    page.get_by_role("button", name="Merge").click()
    expect(page).to_have_url(re.compile(rf"/inbox/c/{first.id}$"))
    thread = page.locator("#thread")
    expect(thread).to_contain_text("Any news about the lamp?")
    expect(thread.locator(".trail-event").last).to_contain_text(
        f"Alex Agent merged “Broken lamp again” (#{second.id}) into this conversation")
    page.goto(f"/inbox/c/{second.id}")
    expect(page).to_have_url(re.compile(rf"/inbox/c/{first.id}$"))
    assert page.js_errors == []
