"""Forwarding in a real browser: the address's ⋮ › Forwarding page with each provider's steps; Gmail's confirmation
mail, sent through the real SMTP ingress, appears as a notice with its link and code (the server never opens it) and
is dismissed; forwarded mail turns the status to "Forwarded mail seen from …"; the wizard's Review leads there too."""
from __future__ import annotations

import re
import smtplib

import pytest
from playwright.sync_api import expect

from tests.e2e.test_channels_browser import admin_page, open_channels, row_menu  # noqa: F401
from tests.mail.conftest import make_address, message
from tests.mail.test_forwarding import CONFIRM_LINK, FIXTURE, PLATFORM
from tests.mail.test_ingress import running, work_ingest_queue

pytestmark = pytest.mark.browser


def deliver(app, controller, raw: bytes, sender: str) -> None:
    with smtplib.SMTP(controller.hostname, controller.port, timeout=10) as smtp:
        assert smtp.sendmail(sender, [PLATFORM], raw) == {}
    work_ingest_queue(app)


def test_admin_follows_the_forwarding_steps_confirms_gmail_and_sees_forwarded_mail(app, db, admin_page,  # noqa: F811
                                                                                   unique_ids):
    page = admin_page
    make_address(PLATFORM, forwarded_from="sales@acme.example")
    open_channels(page)
    row = page.get_by_role("row").filter(has_text=PLATFORM)
    expect(row).to_contain_text("Nothing received yet")
    row_menu(page, PLATFORM).get_by_role("link", name="Forwarding").click()
    expect(page.get_by_role("heading", name="Forwarding", exact=True)).to_be_visible()
    expect(page.locator("#forwarding-status-text")).to_have_text("Nothing received yet")
    providers = page.get_by_role("navigation", name="Providers")
    providers.get_by_role("link", name="Microsoft 365").click()
    expect(page).to_have_url(re.compile(r"#fwd-microsoft$"))
    expect(page.get_by_role("heading", name=re.compile("^Microsoft 365"))).to_be_visible()
    expect(page.get_by_text("Redirect to", exact=True).first).to_be_visible()

    with running(app) as controller:
        deliver(app, controller, FIXTURE.read_bytes(), "forwarding-noreply@google.com")
        page.reload()
        notice = page.locator("#forwarding-notices")
        expect(notice).to_contain_text("sales@acme.example asks to forward its mail to " + PLATFORM)
        expect(notice).to_contain_text("Confirmation code: 187412345")
        link = notice.get_by_role("link", name="Confirm forwarding at Google")
        expect(link).to_have_attribute("href", CONFIRM_LINK)
        expect(link).to_have_attribute("rel", "noopener noreferrer")
        expect(page.get_by_role("heading", name="Forwarding confirmations")).to_be_visible()
        # Still nothing forwarded: the confirmation is not a customer's mail, and opened no conversation.
        expect(page.locator("#forwarding-status-text")).to_have_text("Nothing received yet")

        forwarded = message(subject="Order 17", to="Acme Sales <sales@acme.example>",
                            X_Forwarded_For=f"sales@acme.example {PLATFORM}", Delivered_To="sales@acme.example")
        deliver(app, controller, forwarded, "carla@example.com")
    page.reload()
    expect(page.locator("#forwarding-status-text")).to_contain_text("Forwarded mail seen from sales@acme.example on")

    # Dismissed from the banner with the keyboard: the notice is gone and the page says so.
    dismiss = page.locator("#forwarding-notices").get_by_role("button", name=f"Dismiss the forwarding confirmation for {PLATFORM}")
    dismiss.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_text("Forwarding confirmation dismissed.")).to_be_visible()
    expect(page.locator("#forwarding-notices")).to_have_count(0)
    expect(page.get_by_role("heading", name="Forwarding confirmations")).to_have_count(0)

    open_channels(page)
    expect(page.get_by_role("row").filter(has_text=PLATFORM)).to_contain_text(
        "Forwarded mail seen from sales@acme.example on")
    assert page.js_errors == []


def test_the_wizards_review_shows_how_to_forward_and_links_the_page(app, db, admin_page):  # noqa: F811
    page = admin_page
    make_address(PLATFORM, forwarded_from="sales@acme.example")
    open_channels(page)
    row_menu(page, PLATFORM).get_by_role("link", name="Edit").click()
    for step in ("design", "review"):
        page.get_by_role("button", name="Next").click()
        expect(page).to_have_url(re.compile(rf"/channels/email/setup/[\w-]+/{step}$"))
    summary = page.get_by_text(f"How to forward sales@acme.example to {PLATFORM}")
    summary.click()
    expect(page.get_by_role("heading", name=re.compile("^Google Workspace and Gmail"))).to_be_visible()
    page.locator("details.forwarding-review").get_by_role("link", name="Forwarding", exact=True).click()
    expect(page.get_by_role("heading", name="Forwarding", exact=True)).to_be_visible()
    assert page.js_errors == []


def test_the_forwarding_page_fits_a_phone(app, db, admin_page):  # noqa: F811
    page = admin_page
    address = make_address(PLATFORM, forwarded_from="sales@acme.example")
    page.set_viewport_size({"width": 390, "height": 800})
    page.goto(f"/channels/email/addresses/{address.id}/forwarding")
    expect(page.get_by_role("heading", name="Forwarding", exact=True)).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    assert page.js_errors == []
