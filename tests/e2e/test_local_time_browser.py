"""Times in a real browser follow each agent's profile time zone (Debian's Chromium through Playwright).

Two agents, in New York and in Kolkata, look at the same conversation at the same time in two
browsers: each sees the inbox row and the message tile in their own zone. The Kolkata agent's
composer shows the signature sending will add. Then the New York agent moves to Kolkata in their
Profile, and the very same row (cached per zone) reads in Kolkata time for them too.
"""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from playwright.sync_api import expect

from tests.e2e.test_workspace_browser import sign_in
from tests.factories import make_address, make_conversation, make_message, make_queue, make_user

pytestmark = pytest.mark.browser

WHEN = datetime(2025, 1, 2, 15, 4, tzinfo=timezone.utc)  # 10:04 EST, 20:34 IST


def test_two_agents_see_the_same_times_in_their_own_zones_and_a_profile_change_moves_them(
        page, browser, live_url, db):
    new_york = make_user("agent", email="nora@example.test", name="Nora")
    kolkata = make_user("agent", email="priya@example.test", name="Priya")
    new_york.time_zone, kolkata.time_zone = "America/New_York", "Asia/Kolkata"
    kolkata.signature_html = "<p>Priya · <b>Billing team</b></p>"
    queue = make_queue("Billing", members=[new_york, kolkata])
    conv = make_conversation(queue=queue, address=make_address(queues=[queue]), contact_email="carol@example.com",
                             subject="Where is my parcel?", when=WHEN)
    message = make_message(conv, text="Hello, my parcel has not arrived.", when=WHEN)
    db.session.commit()

    other = browser.new_context(base_url=live_url, viewport={"width": 1280, "height": 800})
    try:
        second = other.new_page()
        sign_in(page, "nora@example.test")
        sign_in(second, "priya@example.test")
        for tab, shown, zone in ((page, "2025-01-02 10:04", "EST"), (second, "2025-01-02 20:34", "IST")):
            row_time = tab.locator(f"#conv-{conv.id} time")
            expect(row_time).to_have_text(shown)
            expect(row_time).to_have_attribute("datetime", "2025-01-02T15:04:00+00:00")
            expect(row_time).to_have_attribute("title", f"{shown} {zone}")
            expect(tab.get_by_role("columnheader", name=f"Last activity ({zone})")).to_be_visible()
            tab.get_by_role("link", name="Where is my parcel?").click()
            expect(tab.locator(f"#message-{message.id} summary time")).to_have_text(shown)

        # The Kolkata agent's Reply shows her signature under the editor, as what sending will add.
        second.locator(".compose-bar").get_by_role("button", name="Reply", exact=True).click()
        preview = second.locator(".signature-preview")
        expect(preview).to_be_visible()
        expect(preview).to_contain_text("will be added below your message")
        expect(preview.locator("b")).to_have_text("Billing team")
        expect(second.locator(".composer .editor")).not_to_contain_text("Billing team")

        # Nora moves to Kolkata: the same row now reads in Kolkata time for her as well.
        page.goto("/profile")
        page.get_by_label("Time zone").select_option("Asia/Kolkata")
        page.get_by_role("button", name="Save Profile").click()
        expect(page.get_by_text("Profile saved.")).to_be_visible()
        page.goto("/inbox/?view=all")
        expect(page.locator(f"#conv-{conv.id} time")).to_have_text("2025-01-02 20:34")
        second.goto("/inbox/?view=all")
        expect(second.locator(f"#conv-{conv.id} time")).to_have_text("2025-01-02 20:34")
        assert not page.js_errors
    finally:
        other.close()
