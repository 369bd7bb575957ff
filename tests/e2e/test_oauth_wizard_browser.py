"""An OAuth mailbox set up in a real browser: "Sign in with …" on the test authorization server's consent page,
Test Connection against the OAuth Dovecot and aiosmtpd, Publish, and mail arriving; and a refused consent."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.models.channels import EmailAddress, OAuthCredential
from app.queues import get_queue
from app.runtime.poll import poll_address
from tests.channel_factories import make_domain
from tests.e2e.test_channels_browser import admin_page, next_step, open_channels, row_menu  # noqa: F401
from tests.mail.conftest import message
from tests.mail.test_oauth_mailboxes import stored_subjects
from tests.oauth_fixtures import CLIENT_ID, PASSWORD, oauth_app, oauth_world  # noqa: F401

pytestmark = pytest.mark.browser


@pytest.fixture
def oauth_page(oauth_app, oauth_world, live_url, admin_page):
    """The admin's page, with the test authorization server accepting this app's callback."""
    client = oauth_world.idp.clients[CLIENT_ID]
    client.redirect_uris.append(f"{live_url}/channels/oauth/callback")
    make_domain("acme.test")
    yield admin_page
    client.redirect_uris.remove(f"{live_url}/channels/oauth/callback")


def start_wizard(page, world, mailbox):
    open_channels(page)
    page.locator("section.domain", has_text="acme.test").get_by_role("button", name="New Email Address").click()
    expect(page).to_have_url(re.compile(r"/channels/email/setup/[\w-]+/address$"))
    page.get_by_label("Email Address").fill(mailbox)
    page.get_by_label("Display Name").fill("Acme Desk")
    page.get_by_label("Test Identity Provider").check()
    expect(page.get_by_label("Password", exact=True)).to_be_hidden()
    incoming = page.get_by_role("group", name="Incoming")
    incoming.get_by_label("Server").fill("127.0.0.1")
    incoming.get_by_label("Port").fill(str(world.dovecot.ports["imaps"]))
    outgoing = page.get_by_role("group", name="Outgoing")
    outgoing.get_by_label("Server").fill("127.0.0.1")
    outgoing.get_by_label("Use STARTTLS").check()
    outgoing.get_by_label("Port").fill(str(world.smtp.port))
    page.get_by_role("button", name="Sign in with Test Identity Provider").click()
    expect(page.get_by_role("heading", name="Test Identity Provider")).to_be_visible()  # the consent page
    expect(page.get_by_label("Mailbox")).to_have_value(mailbox)  # our login hint


def test_sign_in_test_connection_publish_and_mail_arrives(oauth_page, oauth_world, db):
    page = oauth_page
    mailbox = oauth_world.new_mailbox()
    start_wizard(page, oauth_world, mailbox)
    page.get_by_role("button", name="Approve").click()

    expect(page).to_have_url(re.compile(r"/channels/email/setup/[\w-]+/address#mailbox-kind$"))
    expect(page.locator("#sign-in-generic")).to_contain_text(f"Signed in as {mailbox}.")
    expect(page.get_by_role("button", name="Sign in again")).to_be_visible()
    expect(page.get_by_label("Test Identity Provider")).to_be_checked()
    page.get_by_role("button", name="Test Connection").click()
    results = page.locator("#test-results")
    expect(results).to_contain_text("Sign-in token: Success.", timeout=20_000)
    expect(results).to_contain_text("Incoming: Success.")
    expect(results).to_contain_text("Outgoing: Success.")

    next_step(page, "design")
    next_step(page, "review")
    expect(page.locator("dl.summary")).to_contain_text(f"Signed in as {mailbox}")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text(f"Email address {mailbox} saved. Publish to make it live.")).to_be_visible()

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Publish").click()
    page.get_by_role("button", name="Publish").click()
    dialog = page.get_by_role("dialog", name="Publish")
    expect(dialog).to_contain_text(mailbox)
    dialog.get_by_role("button", name="Proceed").click()
    expect(dialog.get_by_label("Comments")).to_be_focused()
    dialog.get_by_label("Comments").fill("Connect the desk mailbox by OAuth")
    dialog.get_by_role("button", name="Proceed").click()
    expect(dialog.get_by_text("You are about to publish 1 change.")).to_be_visible()
    dialog.get_by_role("button", name="Confirm").click()
    expect(page.get_by_text("Published 1 change.")).to_be_visible()

    db.session.expire_all()
    address = db.session.scalar(select(EmailAddress).where(EmailAddress.address == mailbox))
    assert db.session.scalar(select(OAuthCredential.subject).where(OAuthCredential.address_id == address.id)) \
        == mailbox
    oauth_world.dovecot.append(mailbox, PASSWORD, [message(to=mailbox, subject="Hello over OAuth")])
    open_channels(page)
    row_menu(page, mailbox).get_by_role("button", name="Poll now").click()
    expect(page.get_by_text(f"Polling {mailbox} now")).to_be_visible()
    assert f"poll-mailbox-{address.id}" in get_queue("poll").job_ids
    result = poll_address(address.id)  # what the queued job runs, here in the test's own process
    assert result.error is None and result.fetched == 1, result.summary()
    assert stored_subjects(db, address) == ["Hello over OAuth"]
    assert page.js_errors == []


def test_refused_consent_shows_the_page_and_try_again_returns_to_the_consent(oauth_page, oauth_world, db):
    page = oauth_page
    mailbox = oauth_world.new_mailbox()
    start_wizard(page, oauth_world, mailbox)
    page.get_by_role("button", name="Refuse").click()

    expect(page.get_by_role("heading", name="Sign-in not completed")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("consent was refused")
    expect(page.get_by_text("Nothing was saved from this attempt")).to_be_visible()
    page.get_by_role("button", name="Try again").click()
    expect(page.get_by_role("button", name="Approve")).to_be_visible()
    db.session.expire_all()
    assert db.session.scalar(select(OAuthCredential)) is None
    assert page.js_errors == []
