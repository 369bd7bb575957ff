"""Test Connection can neither leak a stored password nor reach inside: real servers on loopback, through HTTP.

The test config allows private hosts (every test server listens on 127.0.0.1); these tests turn the
setting off where they prove a refusal, and turn off the loopback exception for unencrypted sign-in
where loopback stands in for a server across a network.
"""
from __future__ import annotations

import re

import pytest

from tests.channel_factories import custom_values, make_address, make_domain
from tests.channel_fixtures import MAILBOX, PASSWORD
from tests.pages import HX, fragment, full, location
from tests.servers import BannerServer, SMTPServer
from tests.web.test_channel_pages import custom_form, new_setup

#: What an internal service says to whoever connects: several lines, a secret on the second.
BANNER = b"500-internal metrics daemon v2\r\n500-secret_token=abc123\r\n500 bye\r\n"


@pytest.fixture
def admin(login_as):
    return login_as("admin")


@pytest.fixture
def token(client, admin):
    from tests.helpers import csrf_token

    return csrf_token(client, "/channels/email/")


@pytest.fixture
def plain_smtp(tmp_path):
    """An aiosmtpd without TLS that offers AUTH and records every AUTH it receives."""
    server = SMTPServer(tmp_path / "plain-smtp", users={MAILBOX: PASSWORD})
    yield server
    server.stop()


@pytest.fixture
def daemon():
    server = BannerServer(BANNER)
    yield server
    server.stop()


def edit_wizard(client, address) -> str:
    response = client.get(f"/channels/email/addresses/{address.id}/edit")
    assert response.status_code == 303
    return response.headers["Location"].rsplit("/", 1)[0]


def outbound_form(token, port, **overrides) -> dict:
    return custom_form(token, MAILBOX, password=PASSWORD, usage="outbound", incoming_host="",
                       outgoing_host="127.0.0.1", outgoing_port=str(port), outgoing_security="none", **overrides)


def test_unencrypted_sign_in_is_refused_before_auth_unless_allowed(app, client, db, token, plain_smtp):
    app.config["MAIL_PLAINTEXT_SIGN_IN_ON_LOOPBACK"] = False  # loopback stands in for a server across a network
    base = new_setup(client, token, make_domain("acme.test").id)
    page = full(client.get(f"{base}/address"))
    assert '<label for="allow_plaintext_auth">Allow unencrypted sign-in</label>' in page
    assert re.search(r'<input[^>]*id="allow_plaintext_auth"[^>]*type="checkbox"|<input[^>]*type="checkbox"[^>]*'
                     r'id="allow_plaintext_auth"', page)

    body = fragment(client.post(f"{base}/test", data=outbound_form(token, plain_smtp.port), headers=HX))
    assert "Outgoing: Failed." in body and "Signing in without encryption was refused; nothing was sent." in body
    assert "Allow unencrypted sign-in" in body and PASSWORD not in body
    assert plain_smtp.auth_attempts == []  # refused before AUTH: the server never saw the password

    body = fragment(client.post(f"{base}/test", data=outbound_form(token, plain_smtp.port, allow_plaintext_auth="y"),
                                headers=HX))
    assert "Outgoing: Success." in body and f"signed in as {MAILBOX}" in body
    assert plain_smtp.auth_attempts == [MAILBOX]

    # Saved and published with the rest of the draft.
    location(client.post(f"{base}/address", data=outbound_form(token, plain_smtp.port, allow_plaintext_auth="y"),
                         headers=HX))
    assert "<dt>Unencrypted sign-in</dt><dd>Allowed</dd>" in full(client.get(f"{base}/review"))
    client.post(f"{base}/review", data={"csrf_token": token})
    from app.channels.addresses import snapshot
    from app.models.channels import EmailAddress
    from sqlalchemy import select

    address = db.session.scalar(select(EmailAddress).where(EmailAddress.address == MAILBOX))
    assert address.allow_plaintext_auth is True and snapshot(address)["allow_plaintext_auth"] is True


def test_a_changed_server_needs_its_password_typed_again(app, client, db, admin, token, plain_smtp):
    """The issue's probe: edit, leave the password blank, point SMTP at a host of one's own, Test Connection."""
    address = make_address(admin, make_domain("acme.test"), custom_values(MAILBOX), password="stored-pw")
    base = edit_wizard(client, address)
    attack = custom_form(token, MAILBOX, password="", outgoing_host="127.0.0.1", outgoing_port=str(plain_smtp.port),
                         outgoing_security="none", allow_plaintext_auth="y")
    bad = fragment(client.post(f"{base}/address", data=attack, headers=HX), 422)
    message = ("You changed the outgoing (SMTP) server or how it signs in: type the mailbox password again. "
               "A stored password is only sent to the server it was typed for.")
    assert message in bad
    field = bad.split('<label for="password">')[1].split("</div>")[0]
    assert message in field and 'id="password-error"' in field  # next to the password field
    test = fragment(client.post(f"{base}/test", data=attack, headers=HX), 422)
    assert "type the mailbox password again" in test
    assert plain_smtp.auth_attempts == [] and plain_smtp.messages == []  # nothing reached the new server

    # The same for a port, the security, the incoming side and the user name.
    for change, field_name in ((dict(outgoing_port="2525"), "password"), (dict(outgoing_security="ssl"), "password"),
                               (dict(incoming_host="imap.elsewhere.example"), "password"),
                               (dict(incoming_protocol="pop3"), "password"),
                               (dict(username="someone-else"), "password"),
                               (dict(smtp_username="relay-user"), "smtp_password")):
        bad = fragment(client.post(f"{base}/address", data=custom_form(token, MAILBOX, password="", **change),
                                   headers=HX), 422)
        assert f'id="{field_name}-error"' in bad and "again" in bad, change
    # Unchanged servers keep the stored password; a changed one with the password typed again is fine.
    location(client.post(f"{base}/address", data=custom_form(token, MAILBOX, password="", display_name="Renamed"),
                         headers=HX))
    location(client.post(f"{base}/address", data=custom_form(token, MAILBOX, password="stored-pw",
                                                              outgoing_host="smtp2.example.net"), headers=HX))


def test_internal_services_are_refused_without_connecting(app, client, db, token, daemon):
    app.config["MAIL_ALLOW_PRIVATE_HOSTS"] = False
    base = new_setup(client, token, make_domain("acme.test").id)
    for host in ("127.0.0.1", "localhost", "2130706433", "0x7f000001", "0177.0.0.1", "::ffff:127.0.0.1",
                 "169.254.169.254", "10.0.0.1", "[::1]"):
        form = custom_form(token, MAILBOX, password=PASSWORD, incoming_host=host, incoming_port=str(daemon.port),
                           incoming_security="none", outgoing_host=host, outgoing_port=str(daemon.port),
                           outgoing_security="none")
        body = fragment(client.post(f"{base}/test", data=form, headers=HX))
        assert body.count("The server is at an address Pigeonhole does not connect to") == 2, (host, body)
        assert "secret_token" not in body
    assert daemon.connections == 0


def test_a_server_answer_shows_only_its_first_line(app, client, db, token, daemon):
    base = new_setup(client, token, make_domain("acme.test").id)
    form = custom_form(token, MAILBOX, password=PASSWORD, incoming_host="127.0.0.1", incoming_port=str(daemon.port),
                       incoming_security="none", outgoing_host="127.0.0.1", outgoing_port=str(daemon.port),
                       outgoing_security="none")
    body = fragment(client.post(f"{base}/test", data=form, headers=HX))
    assert daemon.connections == 2  # private hosts allowed (the test config): both sides reached it
    assert "500 internal metrics daemon v2" in body  # SMTP: the first line of a three-line answer
    assert "internal metrics daemon v2" in body.split("Outgoing:")[0]  # IMAP: its greeting's first line
    assert "secret_token" not in body and "abc123" not in body and "bye" not in body
