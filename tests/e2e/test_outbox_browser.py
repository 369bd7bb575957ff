"""The Outbox in a real browser: search, a sent message and its HTML part in a sandboxed frame, no CSP errors."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from app.runtime.outbound import deliver_message, send_reply
from app.mail.sink import start_sink
from tests.factories import PASSWORD, make_sending_address, make_sending_conversation, make_user
from tests.servers import free_port

pytestmark = pytest.mark.browser


def test_admin_reads_sent_mail_in_the_outbox(page, app, db, tmp_path):
    port = free_port()
    sink = start_sink(tmp_path / "outbox", port=port)
    app.config.update(SMTP_RELAY_URL=f"smtp://127.0.0.1:{port}?tls=none", OUTBOX_DIR=str(tmp_path / "outbox"))
    try:
        address = make_sending_address(display_name="Acme Support", forwarded_from="support@acme.test")
        for subject in ("Where is my parcel?", "Invoice question"):
            conversation = make_sending_conversation(address, subject=subject)
            message = send_reply(conversation.id, None, "<p>It ships <b>today</b>.</p>")
            db.session.commit()
            deliver_message(message.id)
        make_user("admin", email="ada@example.test")

        page.goto("/login")
        page.get_by_label("Email").fill("ada@example.test")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url("/inbox/")
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Ops").click()
        page.get_by_role("link", name="Outbox").click()
        expect(page.get_by_role("heading", name="Outbox")).to_be_visible()
        rows = page.locator("#outbox-messages tbody tr")
        expect(rows).to_have_count(2)

        page.get_by_label("Search").fill("invoice")
        page.get_by_role("button", name="Search").click()
        expect(rows).to_have_count(1)
        expect(page).to_have_url("/ops/outbox/?q=invoice")
        page.get_by_label("Search").fill("x" * 201)
        page.get_by_role("button", name="Search").click()
        expect(page.get_by_text("Use at most 200 characters.")).to_be_visible()

        page.goto("/ops/outbox/?q=parcel")
        page.get_by_role("link", name="Re: Where is my parcel?").click()
        expect(page.get_by_role("heading", name="Re: Where is my parcel?")).to_be_visible()
        expect(page.locator(".facts").get_by_text("support@acme.test", exact=True)).to_be_visible()  # the Bcc
        frame = page.frame_locator("iframe.mail-frame")
        expect(frame.locator("b")).to_have_text("today")
        assert page.js_errors == []
    finally:
        sink.stop()
