"""How the outgoing server signs in, over HTTP with real servers: none at all ("Outgoing server needs no
sign-in", aiosmtpd without AUTH), or its own user name and password, not the mailbox's (Dovecot)."""
from __future__ import annotations

from sqlalchemy import select

from app.crypto import decrypt_secret
from app.models.channels import EmailAddress
from app.publish.services import publish_addresses
from app.runtime.outbound import deliver_message, send_reply
from app.runtime.outbound.sent_folder import save_sent_copy
from tests.channel_factories import make_domain
from tests.channel_fixtures import MAILBOX, PASSWORD
from tests.factories import make_sending_conversation
from tests.helpers import csrf_token
from tests.pages import HX, fragment, full, location
from tests.servers import SMTPServer
from tests.web.test_channel_pages import custom_form, new_setup


def _certificates(mail_servers, tmp_path):
    (tmp_path / "tls").mkdir()
    for path in (mail_servers.dovecot.cert, mail_servers.dovecot.key):
        (tmp_path / "tls" / path.name).write_bytes(path.read_bytes())


def test_a_relay_without_sign_in_is_tested_saved_sent_through_and_replies_reach_the_sent_folder(
        app, client, db, login_as, mail_servers, tmp_path):
    app.config["MAIL_TLS_CA_FILE"] = str(mail_servers.ca_file)
    _certificates(mail_servers, tmp_path)
    relay = SMTPServer(tmp_path, tls="starttls")  # offers no AUTH at all
    try:
        login_as("admin")
        token = csrf_token(client, "/channels/email/")
        base = new_setup(client, token, make_domain("acme.test").id)
        page = full(client.get(f"{base}/address"))
        assert '<label for="smtp_no_auth">Outgoing server needs no sign-in</label>' in page
        form = custom_form(token, MAILBOX, password=PASSWORD, incoming_host="127.0.0.1",
                           incoming_port=str(mail_servers.dovecot.ports["imaps"]), incoming_security="ssl",
                           outgoing_host="127.0.0.1", outgoing_port=str(relay.port), outgoing_security="starttls",
                           save_to_sent="yes")
        # Signing in as the mailbox fails: the relay offers no AUTH.
        refused = fragment(client.post(f"{base}/test", data=form, headers=HX))
        assert "Outgoing: Failed." in refused
        form["smtp_no_auth"] = "y"
        form["smtp_username"] = "ignored-login"  # not used without a sign-in, and not kept
        tested = fragment(client.post(f"{base}/test", data=form, headers=HX))
        assert "Incoming: Success." in tested and "Outgoing: Success." in tested, tested
        assert "no sign-in (the server needs none)" in tested
        assert relay.auth_attempts == []
        location(client.post(f"{base}/address", data=form, headers=HX))
        review = full(client.get(f"{base}/review"))
        assert "None: the outgoing server needs no sign-in" in review and "Passed" in review
        client.post(f"{base}/review", data={"csrf_token": token})
        address = db.session.scalar(select(EmailAddress).where(EmailAddress.address == MAILBOX))
        assert address.smtp_no_auth is True and address.smtp_username is None
        assert address.smtp_password_encrypted is None and decrypt_secret(address.password_encrypted) == PASSWORD
        assert address.last_test_ok is True
        publish_addresses([address.id], None, "live")
        db.session.commit()

        message = send_reply(make_sending_conversation(address).id, None, "<p>It ships today.</p>")
        db.session.commit()
        assert deliver_message(message.id)["sent"] == 1
        assert relay.messages[0]["login"] is None and relay.messages[0]["mail_from"] == MAILBOX
        assert relay.auth_attempts == []
        # Save to Sent still signs in to the mailbox with its own password.
        assert save_sent_copy(message.id) == "Gesendete Elemente"
    finally:
        relay.stop()


def test_the_outgoing_sign_in_is_kept_apart_from_the_mailbox_and_a_stored_one_needs_retyping(
        app, client, db, login_as, mail_servers, tmp_path):
    app.config["MAIL_TLS_CA_FILE"] = str(mail_servers.ca_file)
    _certificates(mail_servers, tmp_path)
    smtp = SMTPServer(tmp_path, users={"relay-login": "smtp-pw"}, tls="starttls")
    try:
        login_as("admin")
        token = csrf_token(client, "/channels/email/")
        base = new_setup(client, token, make_domain("acme.test").id)
        form = custom_form(token, MAILBOX, password=PASSWORD, incoming_host="127.0.0.1",
                           incoming_port=str(mail_servers.dovecot.ports["imaps"]), incoming_security="ssl",
                           outgoing_host="127.0.0.1", outgoing_port=str(smtp.port), outgoing_security="starttls",
                           smtp_username="relay-login", smtp_password="smtp-pw")
        location(client.post(f"{base}/address", data=form, headers=HX))
        client.post(f"{base}/review", data={"csrf_token": token})
        address = db.session.scalar(select(EmailAddress).where(EmailAddress.address == MAILBOX))
        assert decrypt_secret(address.smtp_password_encrypted) == "smtp-pw"
        assert decrypt_secret(address.password_encrypted) == PASSWORD

        # Edit, leaving both passwords blank: both are kept and Test Connection uses each on its side.
        edit = client.get(f"/channels/email/addresses/{address.id}/edit").headers["Location"].rsplit("/", 1)[0]
        blank = {**form, "password": "", "smtp_password": ""}
        tested = fragment(client.post(f"{edit}/test", data=blank, headers=HX))
        assert "Incoming: Success." in tested and "signed in as relay-login" in tested, tested
        # Saving with both left blank keeps them (same servers, same users)...
        location(client.post(f"{edit}/address", data=blank, headers=HX))
        # ... but a new outgoing server needs it typed again.
        moved = fragment(client.post(f"{edit}/address", data={**blank, "outgoing_port": str(smtp.port + 1)},
                                     headers=HX), 422)
        assert "type the SMTP password again" in moved
        # Turning sign-in off sends no password anywhere, so nothing needs retyping.
        location(client.post(f"{edit}/address", data={**blank, "outgoing_port": str(smtp.port + 1),
                                                      "smtp_no_auth": "y"}, headers=HX))
    finally:
        smtp.stop()
