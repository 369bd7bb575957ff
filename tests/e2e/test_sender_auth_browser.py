"""A spoofed mail in a real browser: sent over SMTP to the real ingress From a domain whose DMARC policy is
p=reject (served by the loopback DNS), unsigned and from a server its SPF does not name; the agent's tile
warns that it may be forged. A genuine, signed mail from the same domain shows no warning."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.models.inbox import Message
from tests.e2e.test_workspace_browser import sign_in
from tests.factories import make_user
from tests.mail.test_sender_auth_ingest import KEY, _inbound, _send, _work, dns, dns_app, mail  # noqa: F401
from tests.mail.test_ingress import running
from tests.flow_factories import make_address
from app.mail.dkim import sign

pytestmark = pytest.mark.browser

WARNING = "This mail says it is from bank.test, but bank.test's checks failed: it may be forged."


def test_spoofed_mail_shows_the_forgery_warning(page, db, dns_app):
    make_user("supervisor", email="sam@example.test", name="Sam Supervisor")
    make_address("support@mail.pigeonhole.test")
    with running(dns_app) as ingress:
        _send(ingress.port, mail("alerts@bank.test", "Confirm your account", "spoof-b@evil.test"),
              "x@evil.test", "evil.test")
        _send(ingress.port, sign(mail("alerts@bank.test", "Your statement", "genuine-b@bank.test"), "s1",
                                 "bank.test", KEY), "bounces@bank.test", "mx.bank.test")
        _work(dns_app)
    spoofed, genuine = _inbound(db, "spoof-b@evil.test"), _inbound(db, "genuine-b@bank.test")
    assert spoofed.auth_dmarc == "fail" and genuine.auth_dmarc == "pass"

    sign_in(page, "sam@example.test")
    page.goto(f"/inbox/c/{spoofed.conversation_id}")
    tile = page.locator(f"#message-{spoofed.id}")
    expect(tile.get_by_role("alert")).to_have_text(WARNING)
    expect(tile.locator(".auth-badge")).to_have_text("Possibly forged")
    expect(tile.locator(".auth-summary")).to_have_text("SPF fail · DKIM none · DMARC fail")

    page.goto(f"/inbox/c/{genuine.conversation_id}")
    tile = page.locator(f"#message-{genuine.id}")
    expect(tile.locator(".auth-summary")).to_have_text("SPF pass · DKIM pass · DMARC pass")
    expect(tile.get_by_role("alert")).to_have_count(0)
    assert db.session.scalar(select(Message.id).where(Message.auth_lookalike.is_not(None))) is None
    assert page.js_errors == []
