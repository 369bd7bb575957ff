"""Send test email in a real browser: the address's "⋮" menu, the Recipient form, "Send test email"; a real
`flask worker` sends it to aiosmtpd and the status on the page turns to Sent by itself (HTMX polling)."""
from __future__ import annotations

import re
import subprocess

import pytest
from playwright.sync_api import expect

from tests.e2e.test_channels_browser import admin_page, open_channels, row_menu  # noqa: F401
from tests.factories import make_sending_address
from tests.servers import SMTPServer
from tests.subprocess_env import flask_cmd, flask_env

pytestmark = pytest.mark.browser


def test_admin_sends_a_test_email_and_sees_it_sent(app, db, admin_page, tmp_path):  # noqa: F811
    page = admin_page
    relay = SMTPServer(tmp_path / "relay")
    app.config["SMTP_RELAY_URL"] = f"smtp://127.0.0.1:{relay.port}?tls=none"
    try:
        address = make_sending_address(template_enabled=True, header_html="<p>ACME HEADER</p>")
        open_channels(page)
        row = row_menu(page, address.address)
        row.get_by_role("link", name="Send test email").click()
        expect(page.get_by_role("heading", name="Send test email")).to_be_visible()
        recipient = page.get_by_label("Recipient")
        expect(recipient).to_have_value("ada@example.test")
        recipient.fill("carol@example.org, dan@example.org")
        page.get_by_role("button", name="Send test email").click()
        expect(page.get_by_text("Enter one email address: a test goes to one recipient.")).to_be_visible()

        page.get_by_label("Recipient").fill("carol@example.org")
        page.get_by_role("button", name="Send test email").click()
        expect(page).to_have_url(re.compile(r"/channels/email/send-tests/\d+$"))
        status = page.get_by_role("status", name="Delivery status")
        expect(status).to_contain_text("Queued")

        run = subprocess.run(flask_cmd("worker", "send", "--burst"), env=flask_env(app, tmp_path),
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        expect(status).to_contain_text("Sent", timeout=10_000)  # the block refreshes itself until final
        expect(status).to_contain_text("The server said: 250")
        [got] = relay.messages
        assert got["rcpt_tos"] == ["carol@example.org"] and b"ACME HEADER" in got["data"]
        assert page.js_errors == []
    finally:
        relay.stop()
