"""Times in a real browser follow each agent's profile time zone (Debian's Chromium through Playwright).

Two agents, in New York and in Kolkata, look at the same conversation at the same time in two
browsers: each sees the inbox row and the message tile in their own zone. The Kolkata agent's
composer shows the signature sending will add. Then the New York agent moves to Kolkata in their
Profile, and the very same row (cached per zone) reads in Kolkata time for them too.

In a browser set to Tokyo, an agent who never chose a zone gets Tokyo time from the page after their
first; one who chose Paris keeps Paris.
"""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from playwright.sync_api import expect

from tests.e2e.test_workspace_browser import sign_in
from tests.factories import make_address, make_conversation, make_message, make_queue, make_user

pytestmark = pytest.mark.browser

WHEN = datetime(2025, 1, 2, 15, 4, tzinfo=timezone.utc)  # 10:04 EST, 20:34 IST, 16:04 CET, 00:04 JST (3 Jan)


def _parcel(db, *agents):
    """One conversation with one message at WHEN, in a queue of `agents`."""
    queue = make_queue("Billing", members=list(agents))
    conv = make_conversation(queue=queue, address=make_address(queues=[queue]), contact_email="carol@example.com",
                             subject="Where is my parcel?", when=WHEN)
    message = make_message(conv, text="Hello, my parcel has not arrived.", when=WHEN)
    db.session.commit()
    return conv, message


def _context(browser, live_url, timezone_id):
    return browser.new_context(base_url=live_url, viewport={"width": 1280, "height": 800}, timezone_id=timezone_id)


def test_two_agents_see_the_same_times_in_their_own_zones_and_a_profile_change_moves_them(
        page, browser, live_url, db):
    new_york = make_user("agent", email="nora@example.test", name="Nora")
    kolkata = make_user("agent", email="priya@example.test", name="Priya")
    new_york.time_zone, kolkata.time_zone = "America/New_York", "Asia/Kolkata"
    kolkata.signature_html = "<p>Priya · <b>Billing team</b></p>"
    conv, message = _parcel(db, new_york, kolkata)

    other = _context(browser, live_url, "UTC")
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


def test_in_a_tokyo_browser_an_agent_who_chose_no_zone_gets_tokyo_and_one_who_chose_paris_keeps_paris(
        browser, live_url, db):
    kiyo = make_user("agent", email="kiyo@example.test", name="Kiyo")  # never chose a zone
    pierre = make_user("agent", email="pierre@example.test", name="Pierre")
    pierre.time_zone = "Europe/Paris"
    conv, _message = _parcel(db, kiyo, pierre)

    tokyo, paris = _context(browser, live_url, "Asia/Tokyo"), _context(browser, live_url, "Asia/Tokyo")
    try:
        told = []
        for context in (tokyo, paris):
            context.on("request", lambda r: told.append(r) if r.url.endswith("/profile/browser-zone") else None)
        page = tokyo.new_page()
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        with page.expect_response(lambda r: r.url.endswith("/profile/browser-zone")) as answer:
            sign_in(page, "kiyo@example.test", view=None)
        # The first page was written in UTC (and said so to its script), which told the server Tokyo.
        expect(page.locator("script[data-browser-zone-url]")).to_have_attribute("data-zone", "UTC")
        assert answer.value.status == 204 and answer.value.request.post_data == "zone=Asia%2FTokyo"

        page.goto("/inbox/?view=all")
        row_time = page.locator(f"#conv-{conv.id} time")
        expect(row_time).to_have_text("2025-01-03 00:04")
        expect(row_time).to_have_attribute("title", "2025-01-03 00:04 JST")
        expect(page.get_by_role("columnheader", name="Last activity (JST)")).to_be_visible()
        page.goto("/profile")
        expect(page.get_by_label("Time zone").locator("option:checked")).to_have_text("Browser's time zone (Asia/Tokyo)")
        assert len(told) == 1  # told once: the pages after agree with the browser

        second = paris.new_page()
        sign_in(second, "pierre@example.test")
        expect(second.locator(f"#conv-{conv.id} time")).to_have_text("2025-01-02 16:04")
        expect(second.get_by_role("columnheader", name="Last activity (CET)")).to_be_visible()
        second.reload()
        expect(second.locator(f"#conv-{conv.id} time")).to_have_text("2025-01-02 16:04")
        expect(second.locator("script[data-browser-zone-url]")).to_have_count(0)
        assert len(told) == 1 and not errors
        db.session.expire_all()
        assert (db.session.get(type(pierre), pierre.id).time_zone,
                db.session.get(type(kiyo), kiyo.id).browser_time_zone) == ("Europe/Paris", "Asia/Tokyo")
    finally:
        tokyo.close()
        paris.close()
