"""Mailboxes that say what is wrong, over HTTP: the "Poll now" buttons and the admins' banner of failing mailboxes."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from app.models.channels import MailboxState
from app.queues import get_queue
from tests.helpers import csrf_token
from tests.mail.conftest import make_address
from tests.pages import HX


def backing_off(db, email="help@acme.test", **fields):
    """A published IMAP mailbox that failed 5 times in a row (next poll an hour away)."""
    address = make_address(email, "custom", usage="inbound", username=email, password="pw",
                           incoming_protocol="imap", incoming_host="127.0.0.1", incoming_port=993,
                           incoming_security="ssl", **fields)
    db.session.add(MailboxState(address_id=address.id, folder="INBOX", error_count=5, last_error="refused",
                                next_poll_at=datetime.now(timezone.utc) + timedelta(hours=1)))
    db.session.commit()
    return address


def state(db, address_id):
    db.session.expire_all()
    return db.session.scalars(select(MailboxState).where(MailboxState.address_id == address_id)).one()


def test_poll_now_on_the_address_forgets_the_backoff_and_queues_the_poll(client, db, login_as):
    login_as("admin")
    address = backing_off(db)
    outbound = make_address("out@acme.test", "custom", usage="outbound", outgoing_host="127.0.0.1",
                            outgoing_port=25, outgoing_security="none")
    page = client.get("/channels/email/").get_data(as_text=True)
    assert f'action="/channels/email/addresses/{address.id}/poll"' in page and ">Poll now</button>" in page
    assert f"/channels/email/addresses/{outbound.id}/poll" not in page  # it polls nothing

    token = csrf_token(client, "/channels/email/")
    response = client.post(f"/channels/email/addresses/{address.id}/poll", data={"csrf_token": token})
    assert response.status_code == 303 and response.headers["Location"].endswith(f"#address-{address.id}")
    assert (state(db, address.id).error_count, state(db, address.id).next_poll_at) == (0, None)
    assert get_queue("poll").job_ids == [f"poll-mailbox-{address.id}"]
    assert "Polling help@acme.test now" in client.get("/channels/email/").get_data(as_text=True)

    # Twice: still one job. With htmx: a redirect header, not a page.
    again = client.post(f"/channels/email/addresses/{address.id}/poll", data={"csrf_token": token}, headers=HX)
    assert again.status_code == 204 and again.headers["HX-Redirect"].endswith(f"#address-{address.id}")
    assert get_queue("poll").job_ids == [f"poll-mailbox-{address.id}"]

    refused = client.post(f"/channels/email/addresses/{outbound.id}/poll", data={"csrf_token": token})
    assert refused.status_code == 303
    assert "does not poll a mailbox now" in client.get("/channels/email/").get_data(as_text=True)
    assert client.post(f"/channels/email/addresses/{outbound.id}/poll").status_code == 400  # no CSRF token
    assert client.post("/channels/email/addresses/999999/poll", data={"csrf_token": token}).status_code == 404


def test_poll_now_on_ops_inbound_mail_full_page_and_fragment(client, db, login_as):
    login_as("admin")
    address = backing_off(db)
    page = client.get("/ops/inbound/").get_data(as_text=True)
    assert f'hx-post="/ops/inbound/mailboxes/{address.id}/poll"' in page and 'aria-label="Poll help@acme.test now"' in page
    token = csrf_token(client, "/ops/inbound/")
    fragment = client.post(f"/ops/inbound/mailboxes/{address.id}/poll", data={"csrf_token": token}, headers=HX)
    html = fragment.get_data(as_text=True)
    assert fragment.status_code == 200 and "<html" not in html and "Polling now" in html and "Mailboxes" in html
    assert state(db, address.id).error_count == 0
    assert get_queue("poll").job_ids == [f"poll-mailbox-{address.id}"]
    full = client.post(f"/ops/inbound/mailboxes/{address.id}/poll", data={"csrf_token": token})
    assert full.status_code == 303 and full.headers["Location"].endswith("/ops/inbound/")
    gone = client.post("/ops/inbound/mailboxes/999999/poll", data={"csrf_token": token}, headers=HX)
    assert gone.status_code == 200 and "does not poll a mailbox now" in gone.get_data(as_text=True)


def test_poll_now_is_for_admins(client, db, login_as):
    login_as("agent")
    address = backing_off(db)
    token = csrf_token(client, "/inbox/")
    assert client.post(f"/ops/inbound/mailboxes/{address.id}/poll", data={"csrf_token": token}).status_code == 403
    assert client.post(f"/channels/email/addresses/{address.id}/poll", data={"csrf_token": token}).status_code == 403
    assert state(db, address.id).error_count == 5


def test_the_banner_of_a_mailbox_failing_for_long_shows_to_admins_on_every_page(client, db, login_as, htmx_headers):
    address = backing_off(db)
    row = state(db, address.id)
    row.last_error = "IMAP at 127.0.0.1:993 (SSL): The server refused the user name or password."
    row.failing_since = datetime.now(timezone.utc) - timedelta(minutes=10)
    db.session.commit()
    login_as("admin")
    assert 'id="mailbox-alerts"' not in client.get("/inbox/").get_data(as_text=True)  # 10 minutes: not yet

    row = state(db, address.id)
    row.failing_since = datetime.now(timezone.utc) - timedelta(minutes=20)
    db.session.commit()
    for url in ("/inbox/", "/channels/email/", "/ops/inbound/"):
        html = client.get(url).get_data(as_text=True)
        assert 'id="mailbox-alerts" role="alert"' in html, url
        assert "help@acme.test has not fetched mail since" in html
        assert "The server refused the user name or password." in html and 'href="/ops/inbound/"' in html
    assert "mailbox-alerts" not in client.get("/ops/inbound/", headers=htmx_headers).get_data(as_text=True)


def test_agents_never_see_the_banner(client, db, login_as):
    address = backing_off(db)
    row = state(db, address.id)
    row.failing_since = datetime.now(timezone.utc) - timedelta(hours=2)
    db.session.commit()
    login_as("agent")
    assert "mailbox-alerts" not in client.get("/inbox/").get_data(as_text=True)


def test_the_wizard_keeps_an_uploaded_private_ca_and_test_connection_verifies_with_it(app, client, db, login_as,
                                                                                      mail_servers):
    import io

    from app.models.channels import EmailAddress
    from tests.channel_factories import make_domain
    from tests.channel_fixtures import MAILBOX, PASSWORD
    from tests.pages import fragment, full, location
    from tests.web.test_channel_pages import custom_form, new_setup

    assert not app.config.get("MAIL_TLS_CA_FILE")  # no environment variable, no restart
    login_as("admin")
    token = csrf_token(client, "/channels/email/")
    base = new_setup(client, token, make_domain("acme.test").id)
    page = full(client.get(f"{base}/address"))
    assert '<label for="tls_ca">Private CA certificate (PEM)</label>' in page and 'enctype="multipart/form-data"' in page
    form = custom_form(token, MAILBOX, password=PASSWORD, incoming_host="127.0.0.1",
                       incoming_port=str(mail_servers.dovecot.ports["imaps"]), incoming_security="ssl",
                       outgoing_host="127.0.0.1", outgoing_port=str(mail_servers.smtp_implicit.port),
                       outgoing_security="ssl")
    untrusted = fragment(client.post(f"{base}/test", data=form, headers=HX))
    assert untrusted.count("The secure (TLS) connection failed.") == 2

    bad = fragment(client.post(f"{base}/address", headers=HX, content_type="multipart/form-data", data={
        **form, "tls_ca": (io.BytesIO(b"not a certificate"), "ca.pem")}), 422)
    assert "This is not a PEM certificate" in bad and 'id="tls_ca-error"' in bad

    ca = mail_servers.ca_file.read_bytes()
    tested = fragment(client.post(f"{base}/test", headers=HX, content_type="multipart/form-data",
                                  data={**form, "tls_ca": (io.BytesIO(ca), "ca.pem")}))
    assert "Incoming: Success." in tested and "Outgoing: Success." in tested
    location(client.post(f"{base}/address", headers=HX, content_type="multipart/form-data",
                         data={**form, "tls_ca": (io.BytesIO(ca), "ca.pem")}))
    step = fragment(client.get(f"{base}/address", headers=HX))
    assert "Stored: CN=localhost (valid until" in step and '<label for="remove_tls_ca">Remove the private CA' in step
    # Test Connection without a new upload uses the stored CA.
    assert "Incoming: Success." in fragment(client.post(f"{base}/test", data=form, headers=HX))
    location(client.post(f"{base}/address", data=form, headers=HX))  # no upload: the CA stays
    assert "Passed" in full(client.get(f"{base}/review"))
    client.post(f"{base}/review", data={"csrf_token": token})
    address = db.session.scalar(select(EmailAddress).where(EmailAddress.address == MAILBOX))
    assert address.tls_ca_pem == ca.decode() and address.last_test_ok is True

    edit = client.get(f"/channels/email/addresses/{address.id}/edit").headers["Location"].rsplit("/", 1)[0]
    location(client.post(f"{edit}/address", data={**form, "remove_tls_ca": "y"}, headers=HX))
    client.post(f"{edit}/review", data={"csrf_token": token})
    db.session.expire_all()
    assert db.session.get(EmailAddress, address.id).tls_ca_pem is None


def test_an_outgoing_server_with_its_own_sign_in_is_tested_saved_and_sent_through(app, client, db, login_as,
                                                                                  mail_servers, tmp_path):
    from app.crypto import decrypt_secret
    from app.models.channels import EmailAddress
    from app.publish.services import publish_addresses
    from app.runtime.outbound import deliver_message, send_reply
    from tests.channel_factories import make_domain
    from tests.channel_fixtures import MAILBOX, PASSWORD
    from tests.factories import make_sending_conversation
    from tests.pages import fragment, full, location
    from tests.servers import SMTPServer
    from tests.web.test_channel_pages import custom_form, new_setup

    app.config["MAIL_TLS_CA_FILE"] = str(mail_servers.ca_file)
    (tmp_path / "tls").mkdir()
    for path in (mail_servers.dovecot.cert, mail_servers.dovecot.key):
        (tmp_path / "tls" / path.name).write_bytes(path.read_bytes())
    smtp = SMTPServer(tmp_path, users={"relay-login": "smtp-pw"}, tls="starttls")
    try:
        login_as("admin")
        token = csrf_token(client, "/channels/email/")
        base = new_setup(client, token, make_domain("acme.test").id)
        page = full(client.get(f"{base}/address"))
        assert '<label for="smtp_username">SMTP User Name</label>' in page
        assert '<label for="smtp_password">SMTP Password</label>' in page
        form = custom_form(token, MAILBOX, password=PASSWORD, incoming_host="127.0.0.1",
                           incoming_port=str(mail_servers.dovecot.ports["imaps"]), incoming_security="ssl",
                           outgoing_host="127.0.0.1", outgoing_port=str(smtp.port), outgoing_security="starttls")
        # As the mailbox, this server refuses; with its own sign-in it accepts.
        assert "Outgoing: Failed." in fragment(client.post(f"{base}/test", data=form, headers=HX))
        form["smtp_username"] = "relay-login"
        missing = fragment(client.post(f"{base}/address", data=form, headers=HX), 422)
        assert "Enter the outgoing server&#39;s password" in missing
        form["smtp_password"] = "smtp-pw"
        tested = fragment(client.post(f"{base}/test", data=form, headers=HX))
        assert "Incoming: Success." in tested and "Outgoing: Success." in tested and "signed in as relay-login" in tested
        location(client.post(f"{base}/address", data=form, headers=HX))
        review = full(client.get(f"{base}/review"))
        assert "relay-login, password stored, encrypted (hidden)" in review and "smtp-pw" not in review
        assert "Passed" in review
        client.post(f"{base}/review", data={"csrf_token": token})
        address = db.session.scalar(select(EmailAddress).where(EmailAddress.address == MAILBOX))
        assert address.smtp_username == "relay-login" and decrypt_secret(address.smtp_password_encrypted) == "smtp-pw"
        assert address.last_test_ok is True
        publish_addresses([address.id], None, "live")
        db.session.commit()

        message = send_reply(make_sending_conversation(address).id, None, "<p>It ships today.</p>")
        db.session.commit()
        assert deliver_message(message.id)["sent"] == 1
        assert smtp.messages[0]["login"] == "relay-login" and smtp.messages[0]["mail_from"] == MAILBOX
    finally:
        smtp.stop()


def test_the_wizard_offers_saving_replies_to_the_sent_folder_for_imap_only(client, db, login_as):
    from app.models.channels import EmailAddress
    from tests.channel_factories import make_domain
    from tests.pages import fragment, full, location
    from tests.web.test_channel_pages import custom_form, new_setup

    login_as("admin")
    token = csrf_token(client, "/channels/email/")
    base = new_setup(client, token, make_domain("acme.test").id)
    page = full(client.get(f"{base}/address"))
    assert "<legend>Save replies to the mailbox&#39;s Sent folder</legend>" in page
    pop3 = fragment(client.post(f"{base}/address", headers=HX, data=custom_form(
        token, "help@acme.test", incoming_protocol="pop3", save_to_sent="yes")), 422)
    assert "needs an IMAP mailbox (POP3 has no folders)" in pop3
    location(client.post(f"{base}/address", headers=HX, data=custom_form(token, "help@acme.test", save_to_sent="yes")))
    assert "<dt>Save replies to the mailbox's Sent folder</dt><dd>Yes</dd>" in full(client.get(f"{base}/review"))
    client.post(f"{base}/review", data={"csrf_token": token})
    assert db.session.scalar(select(EmailAddress.save_to_sent).where(EmailAddress.address == "help@acme.test"))
