"""Sign in and out in a real browser (Debian's Chromium through Playwright)."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.browser


def test_login_wrong_then_right_password_navigation_and_logout(page, db):
    make_user("admin", email="ada@example.test", name="Ada")

    page.goto("/inbox/")
    expect(page).to_have_url("/login?next=%2Finbox%2F")
    expect(page.get_by_role("heading", name="Sign in to Pigeonhole")).to_be_visible()

    page.get_by_label("Email").fill("ada@example.test")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
    expect(page.get_by_label("Email")).to_have_value("ada@example.test")  # nothing typed is lost

    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")  # the keyboard works as well as the mouse
    expect(page).to_have_url("/inbox/")
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link")).to_have_text(
        ["Inbox", "Channels", "Flows", "Standard Responses", "Dashboard", "Reports", "Publish", "Ops", "Users"])
    expect(nav.get_by_role("link", name="Inbox")).to_have_attribute("aria-current", "page")

    nav.get_by_role("link", name="Ops").click()
    expect(page.get_by_role("heading", name="Ops")).to_be_visible()
    expect(page.locator("#queue-depths")).to_contain_text("send")

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url("/login")
    expect(page.get_by_text("You are signed out.")).to_be_visible()
    page.goto("/ops/")
    expect(page).to_have_url("/login?next=%2Fops%2F")
    assert page.js_errors == []


def test_agent_sees_only_the_inbox_and_gets_403_on_admin_pages(page, db):
    make_user("agent", email="alex@example.test")
    page.goto("/login")
    page.get_by_label("Email").fill("alex@example.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("navigation", name="Main").get_by_role("link")).to_have_text(["Inbox"])
    response = page.goto("/channels/email/")
    assert response.status == 403
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    assert [e for e in page.js_errors if "403" not in e] == []


def test_htmx_sign_in_with_a_backslash_next_stays_on_the_site(page, db, live_url):
    """`next=/%5C127.0.0.1:9911/x` once sent the browser to 127.0.0.1:9911 through HX-Redirect."""
    make_user("agent", email="alex@example.test")
    page.goto("/login?next=/%5C127.0.0.1:9911/x")
    page.get_by_label("Email").fill("alex@example.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{live_url}/inbox/?view=mine")  # an agent's start page
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()


def _sign_in(page, email, remember=False):
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    if remember:
        page.get_by_label("Keep me signed in").check()
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/inbox/(\?view=mine)?$"))  # agents start on Mine


def test_cookies_copied_before_sign_out_sign_nobody_in_afterwards(page, browser, db, live_url):
    """Issue probe: the session and "Keep me signed in" cookies replayed after Sign out."""
    make_user("agent", email="alex@example.test")
    _sign_in(page, "alex@example.test", remember=True)
    copied = page.context.cookies()
    assert {c["name"] for c in copied} >= {"session", "pigeonhole_remember"}
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You are signed out.")).to_be_visible()

    for kept in (copied, [c for c in copied if c["name"] == "pigeonhole_remember"]):
        thief = browser.new_context(base_url=live_url)
        thief.add_cookies(kept)
        other = thief.new_page()
        other.goto("/inbox/")
        expect(other).to_have_url("/login?next=%2Finbox%2F")
        thief.close()


def test_keep_me_signed_in_survives_the_browser_session_and_sign_out_everywhere_ends_it(page, browser, db, live_url):
    make_user("agent", email="alex@example.test", name="Alex")
    _sign_in(page, "alex@example.test", remember=True)
    # The browser closes: only the lasting cookie stays.
    lasting = [c for c in page.context.cookies() if c["name"] == "pigeonhole_remember"]
    laptop = browser.new_context(base_url=live_url)
    laptop.add_cookies(lasting)
    tab = laptop.new_page()
    tab.goto("/inbox/")
    expect(tab.get_by_role("heading", name="Inbox")).to_be_visible()
    rotated = [c["value"] for c in laptop.cookies() if c["name"] == "pigeonhole_remember"]
    assert rotated and rotated[0] != lasting[0]["value"]

    page.get_by_role("link", name="Profile").click()
    expect(page.get_by_role("heading", name="Profile")).to_be_visible()
    expect(page.locator("#sessions tbody tr")).to_have_count(1)  # one sign-in, restored on the laptop
    page.get_by_role("button", name="Sign Out Everywhere").click()
    expect(page).to_have_url("/login")
    expect(page.get_by_text("You are signed out everywhere.")).to_be_visible()
    tab.reload()
    expect(tab).to_have_url("/login?next=%2Finbox%2F")
    laptop.close()
    assert page.js_errors == []
