"""Admin › Users in a real browser: create a user, who sets a password with the one-time link and signs
in; deactivate them (their open browser is signed out); reactivate and reset with a new link."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.factories import PASSWORD, make_queue, make_user

pytestmark = pytest.mark.browser

FIRST, SECOND = "lantern over the quiet harbour", "seven kites above the dunes"


def _sign_in(page, email, password):
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def _set_password(page, link, password):
    page.goto(link)
    expect(page.get_by_role("heading", name="Set your password")).to_be_visible()
    page.get_by_label("New password", exact=True).fill(password)
    page.get_by_label("New password again").fill(password)
    page.get_by_role("button", name="Set Password").click()
    expect(page).to_have_url("/login")
    expect(page.get_by_text("Your password is set. Sign in with it.")).to_be_visible()


def test_admin_creates_deactivates_and_resets_a_user(page, browser, db, live_url):
    make_user("admin", email="ada@example.test", name="Ada")
    make_queue("Billing")
    _sign_in(page, "ada@example.test", PASSWORD)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Users").click()
    expect(page.get_by_role("heading", name="Users")).to_be_visible()

    page.get_by_role("link", name="New User").click()
    page.get_by_label("Name", exact=True).fill("Nina Novak")
    page.get_by_label("Email", exact=True).fill("nina@example.test")
    page.get_by_label("Email capacity").fill("20")
    page.get_by_label("Billing").check()
    page.get_by_role("button", name="Create and Show Link").click()
    expect(page.get_by_text("Email capacity is between 1 and 15.")).to_be_visible()
    expect(page.get_by_label("Name", exact=True)).to_have_value("Nina Novak")  # nothing typed is lost
    page.get_by_label("Email capacity").fill("6")
    page.get_by_role("button", name="Create and Show Link").click()
    link = page.get_by_label("One-time link").input_value()
    assert link.startswith(f"{live_url}/password/")

    nina = browser.new_context(base_url=live_url).new_page()
    _set_password(nina, link, FIRST)
    _sign_in(nina, "nina@example.test", FIRST)
    expect(nina).to_have_url("/inbox/?view=mine")  # an agent's start page

    # The admin deactivates her: her open browser is signed out at its next request.
    page.get_by_role("link", name="Back to Nina Novak").click()
    page.get_by_role("button", name="Deactivate…").click()
    dialog = page.get_by_role("dialog", name="Deactivate Nina Novak?")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Release them to their queues (unassigned)").check()
    dialog.get_by_role("button", name="Deactivate").click()
    expect(page.get_by_text("Nina Novak is deactivated and signed out everywhere.")).to_be_visible()
    nina.reload()
    expect(nina).to_have_url("/login?next=%2Finbox%2F%3Fview%3Dmine")
    _sign_in(nina, "nina@example.test", FIRST)
    expect(nina.get_by_role("alert")).to_have_text("Wrong email or password.")

    # Reactivated, she gets a new link; the first one no longer works.
    page.get_by_label("Show").select_option("deactivated")
    expect(page).to_have_url("/admin/users/?q=&status=deactivated")  # the search is in the address
    page.get_by_role("link", name="Nina Novak").click()
    page.get_by_role("button", name="Reactivate").click()
    expect(page.get_by_text("Nina Novak is active again and can sign in.")).to_be_visible()
    page.get_by_role("button", name="Make Reset Link").click()
    second_link = page.get_by_label("One-time link").input_value()
    assert second_link != link
    nina.goto(link)
    expect(nina.get_by_text("This link does not work any more")).to_be_visible()
    _set_password(nina, second_link, SECOND)
    _sign_in(nina, "nina@example.test", SECOND)
    expect(nina).to_have_url("/inbox/?view=mine")  # an agent's start page

    page.get_by_role("link", name="Audit log").click()
    expect(page.locator("#audit-entries tbody tr")).to_have_count(7)
    expect(page.locator("#audit-entries tbody tr").first).to_contain_text("Password set with a reset link")
    assert page.js_errors == []
    nina.context.close()
