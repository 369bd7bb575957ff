"""Enable Channel's "When disabled" choice in a real browser: under Enable Channel, hold by default, chosen by
its label with the keyboard, shown on Review, on the address list and in Publish (issue 20, defect 5)."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.test_channels_browser import admin_page, next_step, open_channels  # noqa: F401 (fixture)

pytestmark = pytest.mark.browser


def test_disable_a_new_address_and_choose_refuse_with_the_keyboard(admin_page, unique_ids):  # noqa: F811
    page = admin_page
    open_channels(page)
    page.locator("#platform-domain").get_by_role("button", name="New Email Address").click()
    expect(page.get_by_role("heading", name="New Email Address")).to_be_visible()
    page.get_by_label("Email Address").fill("paused")
    page.get_by_label("Display Name").fill("Paused Help")
    page.get_by_label("Forwarded from").fill("paused@acme.example")
    page.get_by_role("group", name="Enable Channel").get_by_label("No").check()
    when = page.get_by_role("group", name="When disabled")
    expect(when).to_contain_text("accepted and kept")
    expect(when).to_contain_text("bounces it back to the customer")
    expect(when.get_by_label("Hold new mail")).to_be_checked()
    when.get_by_label("Hold new mail").focus()
    page.keyboard.press("ArrowRight")  # radios move with the arrow keys
    expect(when.get_by_label("Refuse new mail")).to_be_checked()
    next_step(page, "design")
    next_step(page, "review")
    expect(page.locator("dl")).to_contain_text("When disabled")
    expect(page.locator("dl")).to_contain_text("Refuse new mail")
    page.get_by_role("button", name="Save").click()
    row = page.get_by_role("row").filter(has_text="paused@mail.pigeonhole.test")
    expect(row).to_contain_text("Refuse new mail")
    page.goto("/channels/publish/")
    expect(page.get_by_text("disabled, refuse new mail")).to_be_visible()
    assert page.js_errors == []
