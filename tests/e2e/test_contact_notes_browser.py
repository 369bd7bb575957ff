"""Contacts and notes in the browser: the contact panel, an internal note with an @mention chosen from
suggestions, edited by its author, and the colleague's notification in a second browser."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.test_workspace_browser import sign_in
from tests.factories import make_address, make_conversation, make_message, make_queue, make_user

pytestmark = pytest.mark.browser


def test_panel_note_mention_edit_and_notification(page, unique_ids, browser, live_url, db):
    alex = make_user("agent", email="alex@example.test", name="Alex Agent")
    bea = make_user("agent", email="bea@example.test", name="Bea Buddy")
    make_user("agent", email="olga@example.test", name="Olga Outside")  # not in Support: never suggested
    support = make_queue("Support", members=[alex, bea])
    address = make_address("help@mail.pigeonhole.test", queues=[support])
    conv = make_conversation(queue=support, address=address, contact_email="carol@acme.example",
                             contact_name="Carol Customer", subject="Parcel late", assignee=alex)
    make_message(conv, text="Where is my parcel?")
    make_conversation(queue=support, address=address, contact_email="carol@acme.example", subject="Old refund",
                      status="resolved")

    sign_in(page, "alex@example.test")
    page.goto(f"/inbox/c/{conv.id}")
    panel = page.locator("#contact-panel")
    expect(panel).to_contain_text("Carol Customer")
    expect(panel.locator(".contact-org")).to_have_text("acme.example")
    expect(panel.locator(".contact-others")).to_contain_text("Old refund")
    expect(panel.locator(".contact-others")).to_contain_text("resolved")

    body = page.locator("#note-body")
    body.click()
    body.press_sequentially("Please check @b")
    suggestions = page.locator(".mention-suggestions [role=option]")
    expect(suggestions).to_have_count(1)
    expect(suggestions.first).to_have_text("Bea Buddy (@bea)")
    body.press("Enter")
    expect(body).to_have_value("Please check @bea ")
    body.press_sequentially("see https://example.com/track")
    page.get_by_role("button", name="Add note").click()
    note = page.locator("#thread .tile-note").last
    expect(note.locator(".mention")).to_have_text("@bea")
    expect(note.locator("a[href='https://example.com/track']")).to_have_attribute("rel", "noopener noreferrer")

    # Its author edits it; the tile says it was edited.
    note.get_by_role("button", name="Edit").click()
    editor = note.get_by_label("Edit note")
    editor.fill("Please check @bea\nTracking says Tuesday")
    page.get_by_role("button", name="Save note").click()
    note = page.locator("#thread .tile-note").last
    expect(note.locator(".note-body")).to_contain_text("Tracking says Tuesday")
    expect(note.locator(".note-edited")).to_contain_text("Edited")
    expect(note.locator(".note-body br")).to_have_count(1)

    # Bea, in another browser, has a notification that leads to the note.
    other = browser.new_context(base_url=live_url, viewport={"width": 1280, "height": 800})
    try:
        bea_page = other.new_page()
        sign_in(bea_page, "bea@example.test")
        link = bea_page.locator("#notifications-link")
        expect(link.locator(".notification-count")).to_have_text("1")
        link.click()
        item = bea_page.locator(".notification.unread")
        expect(item).to_contain_text("Alex Agent mentioned you in “Parcel late”")
        item.get_by_role("link").click()
        expect(bea_page).to_have_url(re.compile(rf"/inbox/c/{conv.id}#message-\d+$"))
        expect(bea_page.locator("#thread .tile-note .note-body")).to_contain_text("Tracking says Tuesday")
        # Bea sees the note but may not edit it.
        expect(bea_page.locator("#thread .tile-note .note-tools")).to_be_hidden()
        expect(bea_page.locator("#notifications-link .notification-count")).to_have_count(0)
    finally:
        other.close()
    assert not page.js_errors
