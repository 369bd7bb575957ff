"""Channels › Email › "Send test email": the form (label, 422s, limit), the status page and its HTMX block
refreshing until final, with a real SMTP server (aiosmtpd) on loopback."""
from __future__ import annotations

import re


from app.models.send_tests import SendTest
from app.queues import get_queue
from app.runtime.dkim import add_key, record_of, verify_key
from app.runtime.outbound import deliver_send_test
from tests.dns_server import LoopbackDNS
from tests.factories import make_sending_address
from tests.helpers import csrf_token
from tests.servers import SMTPServer


def _post(client, address_id, recipient):
    url = f"/channels/email/addresses/{address_id}/send-test"
    return client.post(url, data={"csrf_token": csrf_token(client, url), "recipient": recipient})


def test_the_menu_form_send_and_a_status_that_refreshes_until_sent(app, client, db, login_as, relay, htmx_headers):
    dns = LoopbackDNS()
    app.config.update(DNS_RESOLVER=dns.address, DNS_TIMEOUT_SECONDS=1)
    try:
        admin = login_as("admin", email="ada@example.test")
        address = make_sending_address()
        inbound = make_sending_address(usage="inbound")
        key = add_key("mail.pigeonhole.test", "s1")
        dns.txt(record_of(key)["name"], record_of(key)["value"])
        verify_key(key)
        db.session.commit()

        listing = client.get("/channels/email/").get_data(as_text=True)
        assert f'href="/channels/email/addresses/{address.id}/send-test">Send test email</a>' in listing
        assert f"/channels/email/addresses/{inbound.id}/send-test" not in listing  # inbound-only: no test

        form = client.get(f"/channels/email/addresses/{address.id}/send-test").get_data(as_text=True)
        assert '<label for="recipient">Recipient</label>' in form and 'id="recipient"' in form
        assert 'value="ada@example.test"' in form  # the admin's own address by default
        assert '<button type="submit" class="primary">Send test email</button>' in form

        sent = _post(client, address.id, "carol@example.org")
        assert sent.status_code == 303
        test = db.session.query(SendTest).one()
        assert sent.headers["Location"].endswith(f"/channels/email/send-tests/{test.id}")
        assert (test.requested_by_id, test.recipient) == (admin.id, "carol@example.org")
        assert f"send-test-{test.id}" in get_queue("send").job_ids

        page = client.get(f"/channels/email/send-tests/{test.id}")
        html = page.get_data(as_text=True)
        assert page.status_code == 200 and "<h1>Test email</h1>" in html and "Queued" in html
        assert 'hx-trigger="every 1s"' in html
        fragment = client.get(f"/channels/email/send-tests/{test.id}", headers=htmx_headers)
        body = fragment.get_data(as_text=True)
        assert body.lstrip().startswith('<div id="send-test-status"') and "<h1>" not in body
        assert 'hx-trigger="every 1s"' in body and "HX-Request" in fragment.headers["Vary"]

        assert deliver_send_test(test.id) == "sent"
        body = client.get(f"/channels/email/send-tests/{test.id}", headers=htmx_headers).get_data(as_text=True)
        assert ">Sent</span>" in body and "hx-trigger" not in body  # final: the block stops asking
        assert "The server said: 250" in body and "Signed with DKIM: s1._domainkey.mail.pigeonhole.test" in body
        assert relay.messages[0]["rcpt_tos"] == ["carol@example.org"]
        recent = client.get(f"/channels/email/addresses/{address.id}/send-test").get_data(as_text=True)
        assert "Recent test emails" in recent and "carol@example.org" in recent
    finally:
        dns.stop()


def test_a_failing_server_shows_the_reason(app, client, db, login_as, tmp_path, htmx_headers):
    server = SMTPServer(tmp_path / "relay", script=["554 5.7.1 Sender address rejected: not owned by you"])
    app.config["SMTP_RELAY_URL"] = f"smtp://127.0.0.1:{server.port}?tls=none"
    try:
        login_as("admin")
        address = make_sending_address()
        assert _post(client, address.id, "carol@example.org").status_code == 303
        test = db.session.query(SendTest).one()
        assert deliver_send_test(test.id) == "failed"
        body = client.get(f"/channels/email/send-tests/{test.id}", headers=htmx_headers).get_data(as_text=True)
        assert ">Failed</span>" in body and "Sender address rejected: not owned by you" in body
        assert "hx-trigger" not in body
    finally:
        server.stop()


def test_retrying_shows_the_reason_and_keeps_refreshing(app, client, db, login_as, htmx_headers):
    login_as("admin")
    address = make_sending_address()  # the default relay: nothing listens on 127.0.0.1:9
    assert _post(client, address.id, "carol@example.org").status_code == 303
    test = db.session.query(SendTest).one()
    assert deliver_send_test(test.id) == "retrying"
    body = client.get(f"/channels/email/send-tests/{test.id}", headers=htmx_headers).get_data(as_text=True)
    assert ">Retrying</span>" in body and "Attempt 1 failed: Cannot connect to 127.0.0.1:9" in body
    assert "Next attempt at" in body and 'hx-trigger="every 1s"' in body


def test_bad_recipients_unpublished_addresses_and_the_hourly_limit_answer_422(app, client, db, login_as):
    app.config["SEND_TEST_LIMIT_PER_HOUR"] = 1
    login_as("admin")
    address = make_sending_address()
    for bad, words in [("", "Enter the email address to send the test to."),
                       ("a@example.org, b@example.org", "Enter one email address"),
                       ("nobody@", "is not an email address")]:
        answer = _post(client, address.id, bad)
        html = answer.get_data(as_text=True)
        assert answer.status_code == 422 and words in html and 'aria-invalid="true"' in html
    assert db.session.query(SendTest).count() == 0

    unpublished = make_sending_address(publish=False)
    page = client.get(f"/channels/email/addresses/{unpublished.id}/send-test").get_data(as_text=True)
    assert "has not been published yet, so it cannot send. Publish it first." in page
    assert re.search(r'<button type="submit" class="primary" disabled>Send test email</button>', page)
    answer = _post(client, unpublished.id, "carol@example.org")
    assert answer.status_code == 422 and "Publish it first" in answer.get_data(as_text=True)

    assert _post(client, address.id, "carol@example.org").status_code == 303
    answer = _post(client, address.id, "carol@example.org")
    assert answer.status_code == 422 and "You sent 1 test emails in the last hour" in answer.get_data(as_text=True)
    assert db.session.query(SendTest).count() == 1


def test_agents_cannot_send_tests(app, client, db, login_as):
    address = make_sending_address()
    login_as("agent")
    assert client.get(f"/channels/email/addresses/{address.id}/send-test").status_code == 403
    assert client.post(f"/channels/email/addresses/{address.id}/send-test",
                       data={"recipient": "carol@example.org"}).status_code in (400, 403)
    assert db.session.query(SendTest).count() == 0


def test_unknown_ids_are_404(app, client, db, login_as):
    login_as("admin")
    assert client.get("/channels/email/addresses/999999/send-test").status_code == 404
    assert client.get("/channels/email/send-tests/999999").status_code == 404


def test_the_edit_wizards_review_links_to_send_test_email(app, client, db, login_as):
    login_as("admin")
    address = make_sending_address()
    edit = client.get(f"/channels/email/addresses/{address.id}/edit")
    assert edit.status_code == 303
    setup_id = re.search(r"/channels/email/setup/([\w-]+)/", edit.headers["Location"]).group(1)
    review = client.get(f"/channels/email/setup/{setup_id}/review")
    html = review.get_data(as_text=True)
    assert review.status_code == 200, html
    assert f'<a href="/channels/email/addresses/{address.id}/send-test">Send test email</a>' in html
