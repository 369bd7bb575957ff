"""DKIM Configuration in a real browser: Generate, publish the shown record (loopback DNS), Verify Domain, Success;
then a reply arrives signed and verifies against that DNS."""
from __future__ import annotations

import dkim
import pytest
from playwright.sync_api import expect

from app.mail.dnscheck import Resolver
from app.runtime.outbound import deliver_message, send_reply
from tests.dns_server import LoopbackDNS
from tests.factories import PASSWORD, make_sending_address, make_sending_conversation, make_user
from tests.servers import SMTPServer

pytestmark = pytest.mark.browser
DOMAIN = "mail.pigeonhole.test"


@pytest.fixture
def dns(app):
    server = LoopbackDNS()
    app.config.update(DNS_RESOLVER=server.address, DNS_TIMEOUT_SECONDS=1)
    yield server
    server.stop()


def test_admin_generates_publishes_verifies_and_replies_verify(app, db, page, dns, tmp_path):
    relay = SMTPServer(tmp_path / "relay")
    app.config["SMTP_RELAY_URL"] = f"smtp://127.0.0.1:{relay.port}?tls=none"
    try:
        make_user("admin", email="ada@example.test", name="Ada Admin")
        page.goto("/login")
        page.get_by_label("Email").fill("ada@example.test")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url("/inbox/")  # signed in before going on (a goto now would race the sign-in)
        page.goto("/channels/email/")
        page.get_by_role("link", name="DKIM Configuration").click()
        expect(page.get_by_role("heading", name="DKIM Configuration")).to_be_visible()
        page.get_by_role("link", name="+ Add").click()
        expect(page.get_by_label("Domain Name")).to_have_value(DOMAIN)
        expect(page.get_by_label("Selector Name")).to_have_value("s1")
        page.get_by_role("button", name="Generate").click()

        key = page.get_by_role("article", name="Selector s1")
        expect(key.get_by_text("Pending", exact=True)).to_be_visible()
        name = key.locator("code").nth(0).inner_text()
        value = key.locator("code.dkim-value").inner_text()
        assert name == f"s1._domainkey.{DOMAIN}" and value.startswith("v=DKIM1; k=rsa; p=")
        expect(page.get_by_text("PRIVATE KEY")).to_have_count(0)
        dns.txt(name, value)  # what the admin does at their DNS host

        key.get_by_role("button", name="Verify Domain").click()
        key = page.get_by_role("article", name="Selector s1")
        expect(key.locator(".dkim-status")).to_have_text("Success")
        expect(key.get_by_text("Active: signs mail")).to_be_visible()

        address = make_sending_address(forwarded_from="support@acme.test")
        message = send_reply(make_sending_conversation(address).id, None, "<p>It ships today.</p>")
        db.session.commit()
        assert deliver_message(message.id)["sent"] == 1
        data = relay.messages[0]["data"]
        assert data.startswith(b"DKIM-Signature:")
        assert dkim.verify(data, dnsfunc=Resolver(dns.address, timeout=1).dkim_txt)
    finally:
        relay.stop()
