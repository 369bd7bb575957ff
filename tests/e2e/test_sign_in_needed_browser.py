"""An OAuth mailbox whose refresh token is revoked: admins are told at once, once, and again when signed in.

Real parts: the test authorization server revokes the grant, Dovecot checks the tokens,
the poll meets the dead grant, an aiosmtpd relay receives the admins' mail, and Chromium
shows the banner (to the admin, not to the agent).
"""
from __future__ import annotations

from email import message_from_bytes, policy

import pytest
from playwright.sync_api import expect

from app.runtime.poll import poll_address
from tests.e2e.test_flow_editor_browser import _sign_in as sign_in_page
from tests.factories import make_user
from tests.mail.test_oauth_mailboxes import credential, oauth_address, sign_in
from tests.oauth_fixtures import PASSWORD, oauth_app, oauth_world  # noqa: F401
from tests.servers import SMTPServer

pytestmark = pytest.mark.browser


@pytest.fixture
def relay(oauth_app, tmp_path):
    server = SMTPServer(tmp_path / "relay")
    oauth_app.config["SMTP_RELAY_URL"] = f"smtp://127.0.0.1:{server.port}?tls=none"
    oauth_app.config["PUBLIC_BASE_URL"] = "https://pigeonhole.example"
    yield server
    server.stop()


def mails(relay):
    return [message_from_bytes(m["data"], policy=policy.default) for m in relay.messages]


def test_a_revoked_sign_in_shows_a_banner_to_admins_and_mails_them_once_then_once_more_when_signed_in(
        oauth_app, db, oauth_world, relay, page, browser, live_url):
    make_user("admin", email="ada@example.test")
    make_user("agent", email="al@example.test")
    db.session.commit()
    user = oauth_world.new_mailbox()
    address = oauth_address(oauth_world, user, usage="inbound")
    sign_in(db, oauth_world, address, user)
    assert poll_address(address.id).error is None

    oauth_world.idp.revoke_refresh_tokens(user)
    oauth_world.idp.expire_access_tokens()
    for _ in range(3):  # every poll meets the dead grant: one mail, not one per poll
        assert "Sign in again" in poll_address(address.id).error
    assert len(relay.messages) == 1
    assert relay.messages[0]["rcpt_tos"] == ["ada@example.test"]
    alert = mails(relay)[0]
    assert alert["Subject"] == f"Sign-in needed for {user}"
    body = alert.get_content()
    assert f"Sign-in needed for {user}: Test Identity Provider refused" in body and "invalid_grant" in body
    assert "Open the address and press Sign in again." in body
    assert f"https://pigeonhole.example/channels/email/addresses/{address.id}/edit" in body
    assert credential(db, address).alerted_at is not None

    sign_in_page(page, "ada@example.test")
    banner = page.locator("#mailbox-alerts")
    expect(banner).to_contain_text(f"Sign-in needed for {user}: Test Identity Provider refused")
    expect(banner).to_contain_text("Open the address and press Sign in again.")
    link = banner.get_by_role("link", name=f"Open {user}")
    assert link.get_attribute("href") == f"/channels/email/addresses/{address.id}/edit"
    link.click()
    page.wait_for_url("**/channels/email/setup/*/address")
    assert page.js_errors == []

    agent = browser.new_context(base_url=live_url).new_page()
    sign_in_page(agent, "al@example.test")
    expect(agent.get_by_role("heading").first).to_be_visible()
    assert agent.locator("#mailbox-alerts").count() == 0
    agent.context.close()

    sign_in(db, oauth_world, address, user)  # an admin signs in again: the all-clear, once
    assert len(relay.messages) == 2
    recovered = mails(relay)[1]
    assert recovered["Subject"] == f"{user} is signed in again"
    assert credential(db, address).alerted_at is None
    assert poll_address(address.id).error is None and len(relay.messages) == 2
    page.goto("/inbox/")
    expect(page.get_by_role("heading").first).to_be_visible()
    assert page.locator("#mailbox-alerts").count() == 0


def test_an_alert_the_relay_refuses_is_tried_again_at_the_next_sign_in_attempt(oauth_app, db, oauth_world, relay):
    make_user("admin", email="ada@example.test")
    db.session.commit()
    user = oauth_world.new_mailbox()
    address = oauth_address(oauth_world, user, usage="inbound")
    sign_in(db, oauth_world, address, user)
    oauth_world.idp.revoke_refresh_tokens(user)
    oauth_world.idp.expire_access_tokens()
    relay.script = ["451 4.3.0 Try again later"]

    assert "Sign in again" in poll_address(address.id).error
    assert relay.messages == [] and credential(db, address).alerted_at is None
    assert "Sign in again" in poll_address(address.id).error
    assert len(relay.messages) == 1 and credential(db, address).alerted_at is not None
