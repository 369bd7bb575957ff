"""A Microsoft Exchange domain made in a real browser: New Domain's type shows the app-only fields, and an
address on it is app-only by default; Test Connection proves the domain's app against the real servers."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.crypto import decrypt_secret
from app.models.channels import Domain
from tests.e2e.test_channels_browser import admin_page, open_channels  # noqa: F401
from tests.oauth_fixtures import oauth_app, oauth_world  # noqa: F401

pytestmark = pytest.mark.browser


def test_new_exchange_domain_and_an_app_only_address_pass_test_connection(oauth_app, oauth_world, admin_page, db):
    page = admin_page
    mailbox = oauth_world.new_mailbox()
    oauth_world.idp.add_client("browser-exchange-app", "browser-secret", grant_types=("client_credentials",),
                               mailbox=mailbox, scope="mail")
    open_channels(page)
    page.get_by_role("button", name="New Domain").click()
    dialog = page.get_by_role("dialog", name="New Domain")
    dialog.get_by_label("Domain Name").fill("acme.test")
    expect(dialog.get_by_label("Tenant ID")).to_be_hidden()
    dialog.get_by_label(re.compile(r"^Microsoft Exchange \(app-only\)")).check()
    dialog.get_by_label("Tenant ID").fill("acme.onmicrosoft.com")
    dialog.get_by_label("Client ID").fill("browser-exchange-app")
    dialog.get_by_role("button", name="Create").click()
    expect(dialog.get_by_text("Enter the Client Secret")).to_be_visible()
    dialog.get_by_label("Client Secret").fill("browser-secret")
    dialog.get_by_role("button", name="Create").click()
    expect(page.get_by_text("Domain acme.test created.")).to_be_visible()
    expect(page.get_by_text("Microsoft Exchange (app-only): tenant acme.onmicrosoft.com")).to_be_visible()
    db.session.expire_all()
    domain = db.session.scalar(select(Domain).where(Domain.name == "acme.test"))
    assert decrypt_secret(domain.ms_app_client_secret_encrypted) == "browser-secret"

    page.locator("section.domain", has_text="acme.test").get_by_role("button", name="New Email Address").click()
    expect(page).to_have_url(re.compile(r"/channels/email/setup/[\w-]+/address$"))
    expect(page.get_by_label("Microsoft Exchange (app-only)", exact=True)).to_be_checked()
    expect(page.locator("#sign-in-microsoft_app")).to_contain_text("No user signs in")
    expect(page.get_by_label("Password", exact=True)).to_be_hidden()
    page.get_by_label("Email Address").fill(mailbox)
    page.get_by_label("Display Name").fill("Acme Orders")
    incoming = page.get_by_role("group", name="Incoming")
    incoming.get_by_label("Server").fill("127.0.0.1")
    incoming.get_by_label("Port").fill(str(oauth_world.dovecot.ports["imaps"]))
    outgoing = page.get_by_role("group", name="Outgoing")
    outgoing.get_by_label("Server").fill("127.0.0.1")
    outgoing.get_by_label("Port").fill(str(oauth_world.smtp.port))
    page.get_by_role("button", name="Test Connection").click()
    results = page.locator("#test-results")
    expect(results).to_contain_text("Sign-in token: Success.", timeout=20_000)
    expect(results).to_contain_text("Incoming: Success.")
    expect(results).to_contain_text("Outgoing: Success.")
    assert page.js_errors == []
