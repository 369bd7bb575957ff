"""Publish versions and approvals in a real browser: publish twice, compare version 1 with what is
live, restore it as draft and publish it again; then an approval walked by two admins in two
browser contexts (one asks, the other declines without a reason, then approves)."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from app.channels import addresses, wizard
from app.runtime.live import published_address
from tests.channel_factories import make_address, platform_values
from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.browser


def _sign_in(page, email):
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).not_to_have_url("/login")


def _publish(page, comment):
    page.goto("/channels/publish/")
    page.get_by_role("button", name="Publish", exact=True).click()
    dialog = page.get_by_role("dialog", name="Publish")
    dialog.get_by_label("Comments").fill(comment)
    dialog.get_by_role("button", name="Proceed").click()
    expect(dialog.get_by_role("button", name="Confirm")).to_be_visible()
    return dialog


def _no_horizontal_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_publish_twice_compare_restore_version_1_and_publish_it(page, unique_ids, db):
    admin = make_user("admin", email="ada@example.test", name="Ada Admin")
    help_ = make_address(admin, values=platform_values("help"))
    _sign_in(page, "ada@example.test")

    _publish(page, "First launch").get_by_role("button", name="Confirm").click()
    expect(page.get_by_text("Published 1 change. This is version 1.")).to_be_visible()

    setup = wizard.start_edit(help_.id, admin.id)
    wizard.update_address_step(setup, platform_values("help", display_name="Acme Care"))
    addresses.save_setup(setup)
    db.session.commit()
    _publish(page, "Friendlier name").get_by_role("button", name="Confirm").click()
    expect(page.get_by_text("Published 1 change. This is version 2.")).to_be_visible()

    page.get_by_role("link", name="History").click()
    expect(page.get_by_role("heading", name="History")).to_be_visible()
    history = page.get_by_role("table")
    expect(history).to_contain_text("First launch")
    expect(history).to_contain_text("Friendlier name")
    page.get_by_role("link", name="Version 1").click()
    expect(page.get_by_role("heading", name="Version 1")).to_be_visible()
    expect(page.get_by_role("row", name="Display Name Acme Help")).to_be_visible()

    page.get_by_role("link", name="Compare with current").click()
    expect(page.get_by_role("heading", name="Version 1 compared with current")).to_be_visible()
    row = page.get_by_role("row").filter(has_text="Display Name")
    expect(row.get_by_role("cell")).to_have_text(["Acme Help", "Acme Care"])
    page.set_viewport_size({"width": 390, "height": 800})
    assert _no_horizontal_scroll(page)
    page.set_viewport_size({"width": 1280, "height": 800})

    page.get_by_role("link", name="Restore as draft").click()
    expect(page.get_by_text("Passwords (mailbox and SMTP) and sign-ins stay as they are now")).to_be_visible()
    page.get_by_role("button", name="Restore as draft").click()
    expect(page.get_by_text("Version 1 restored as draft: 1 draft changed.")).to_be_visible()
    expect(page.get_by_text("Display Name: Acme Care → Acme Help")).to_be_visible()
    db.session.expire_all()
    assert published_address(help_.id).display_name == "Acme Care"  # restoring never goes live by itself

    _publish(page, "Back to version 1").get_by_role("button", name="Confirm").click()
    expect(page.get_by_text("Published 1 change. This is version 3.")).to_be_visible()
    db.session.expire_all()
    assert published_address(help_.id).display_name == "Acme Help"
    page.goto("/channels/publish/versions/1/compare")
    expect(page.get_by_text("Version 1 is the same as what is live now.")).to_be_visible()
    assert page.js_errors == []


def test_an_approval_walked_by_two_admins(page, browser, live_url, db):
    make_user("admin", email="ada@example.test", name="Ada Admin")
    make_user("admin", email="bob@example.test", name="Bob Admin")
    help_ = make_address(make_user("admin"), values=platform_values("help"))
    _sign_in(page, "ada@example.test")
    page.goto("/channels/publish/")
    page.get_by_label("Require a second admin to approve each Publish").check()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Publish approvals are on: another admin approves each Publish.")).to_be_visible()

    dialog = _publish(page, "Launch help")
    expect(dialog).to_contain_text("another admin must approve this request before it goes live")
    dialog.get_by_role("button", name="Confirm").click()
    expect(page.get_by_text("Publish requested: it goes live when another admin approves it.")).to_be_visible()
    request = page.get_by_role("region", name="Waiting for approval")
    expect(request).to_contain_text("Ada Admin asked to publish")
    expect(request).to_contain_text("Launch help")
    expect(request.get_by_role("button", name="Approve")).to_have_count(0)
    expect(page.get_by_role("button", name="Publish", exact=True)).to_be_disabled()
    assert published_address(help_.id) is None

    context = browser.new_context(base_url=live_url, viewport={"width": 390, "height": 800})
    try:
        bob = context.new_page()
        errors = []
        bob.on("console", lambda msg: errors.append(msg.text)
               if msg.type == "error" and "Failed to load resource" not in msg.text else None)
        _sign_in(bob, "bob@example.test")
        bob.goto("/channels/publish/")
        waiting = bob.get_by_role("region", name="Waiting for approval")
        expect(waiting).to_contain_text("help@mail.pigeonhole.test")
        assert _no_horizontal_scroll(bob)
        waiting.get_by_role("button", name="Decline").click()
        expect(bob.get_by_text("Write why you decline this Publish request.")).to_be_visible()
        bob.get_by_role("region", name="Waiting for approval").get_by_role("button", name="Approve").click()
        expect(bob.get_by_text("Approved: published as version 1.")).to_be_visible()
        expect(bob.get_by_role("region", name="Waiting for approval")).to_have_count(0)
        assert errors == []
    finally:
        context.close()

    db.session.expire_all()
    assert published_address(help_.id) is not None
    page.goto("/channels/publish/history")
    row = page.get_by_role("row").filter(has_text="Launch help")
    expect(row).to_contain_text("Ada Admin")
    expect(row).to_contain_text("Approved by Bob Admin")
    assert page.js_errors == []
