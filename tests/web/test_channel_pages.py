"""Channels > Email over HTTP: every page as a full page and as an HTMX fragment, 422 on bad input, redirects."""
from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import func, select

from app.channels import domains
from app.crypto import decrypt_secret
from app.models.channels import AddressSetup, Domain, EmailAddress
from tests.channel_factories import custom_values, make_address, make_conversation, make_domain, platform_values
from tests.channel_fixtures import MAILBOX, PASSWORD
from tests.helpers import csrf_token
from tests.pages import HX, fragment, full, location


@pytest.fixture
def admin(login_as):
    return login_as("admin")


@pytest.fixture
def token(client, admin):
    return csrf_token(client, "/channels/email/")


def new_setup(client, token, domain_id=None) -> str:
    url = f"/channels/email/domains/{domain_id}/addresses/new" if domain_id else "/channels/email/platform/addresses/new"
    response = client.post(url, data={"csrf_token": token})
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    return response.headers["Location"].rsplit("/", 1)[0]  # /channels/email/setup/<id>


def platform_form(token, **overrides) -> dict:
    data = {"csrf_token": token, "address": "help", "display_name": "Acme Help", "forwarded_from": "help@acme.example",
            "usage": "both", "send_vcard": "no", "enabled": "yes", "use_reply_to_identity": "no",
            "channel_sessions": "no"}
    data.update(overrides)
    return data


def custom_form(token, address, **overrides) -> dict:
    data = {"csrf_token": token, "address": address, "display_name": "Acme Support", "username": "", "password": "pw",
            "incoming_protocol": "imap", "incoming_host": "imap.example.net", "incoming_port": "",
            "incoming_security": "ssl", "outgoing_protocol": "smtp", "outgoing_host": "smtp.example.net",
            "outgoing_port": "", "outgoing_security": "starttls", "usage": "both", "send_vcard": "no",
            "enabled": "yes", "use_reply_to_identity": "no", "channel_sessions": "no"}
    data.update(overrides)
    return data


# --- access -------------------------------------------------------------------------------------

def test_only_admins_reach_channel_pages(client, login_as):
    login_as("supervisor")
    for url in ("/channels/email/", "/channels/email/domains/new", "/channels/publish/", "/channels/publish/new",
                "/flows/"):
        assert client.get(url).status_code == 403, url


def test_a_wizard_belongs_to_the_admin_who_opened_it(app, client, db, token):
    base = new_setup(client, token)
    other = app.test_client()
    from tests.factories import PASSWORD as USER_PASSWORD, make_user

    user = make_user("admin")
    other.post("/login", data={"email": user.email, "password": USER_PASSWORD,
                               "csrf_token": csrf_token(other)})
    assert other.get(f"{base}/address").status_code == 404
    assert client.get(f"{base}/address").status_code == 200


# --- the Email channel page and domains ---------------------------------------------------------

def test_index_lists_platform_and_custom_addresses_with_state_flow_and_mailbox_status(client, db, admin):
    from datetime import datetime, timezone

    from app.models.channels import MailboxState

    make_address(admin, values=platform_values("help"))
    domain = make_domain("acme.test")
    box = make_address(admin, domain, custom_values("box@acme.test"))
    db.session.add(MailboxState(address_id=box.id, last_success_at=datetime(2026, 11, 27, 8, 5, tzinfo=timezone.utc),
                                last_error="LOGIN failed: [AUTHENTICATIONFAILED]"))
    db.session.commit()
    body = full(client.get("/channels/email/"))
    assert "help@mail.pigeonhole.test" in body and "forwarded from help@acme.example" in body
    assert "Never published" in body and "Inbound and Outbound" in body
    assert "acme.test" in body and "1 of 3 addresses" in body and "2026-11-27 08:05" in body
    assert "LOGIN failed: [AUTHENTICATIONFAILED]" in body and "Not tested" in body
    assert 'aria-controls="menu-address-' in body and ">Edit</a>" in body and ">Delete</button>" in body
    assert '<a href="/channels/publish/">2 unpublished changes: Publish</a>' in body


def test_new_domain_dialog_full_fragment_422_and_create(client, db, token):
    body = full(client.get("/channels/email/domains/new"))
    assert '<dialog id="domain-dialog"' in body and " open>" in body and '<label for="name">Domain Name</label>' in body
    body = fragment(client.get("/channels/email/domains/new", headers=HX))
    assert body.lstrip().startswith("<dialog") and " open>" not in body and ">Create</button>" in body

    bad = fragment(client.post("/channels/email/domains/new", data={"csrf_token": token, "name": "acme"},
                               headers=HX), 422)
    assert 'aria-invalid="true"' in bad and "should have a period" in bad
    full(client.post("/channels/email/domains/new", data={"csrf_token": token, "name": "mail.pigeonhole.test"}), 422)

    done = client.post("/channels/email/domains/new", data={"csrf_token": token, "name": "Acme.TEST"}, headers=HX)
    assert done.status_code == 204 and done.headers["HX-Redirect"] == "/channels/email/"
    assert "Domain acme.test created." in full(client.get("/channels/email/"))
    again = client.post("/channels/email/domains/new", data={"csrf_token": token, "name": "acme.test"})
    assert "already exists" in full(again, 422)


def test_delete_domain_only_when_empty(client, db, admin, token):
    platform_id = domains.ensure_platform_domain().id
    domain = make_domain("acme.test")
    make_address(admin, domain, custom_values("box@acme.test"))
    url = f"/channels/email/domains/{domain.id}/delete"
    body = fragment(client.get(url, headers=HX))
    assert "still has 1 email address" in body and ">Delete</button>" not in body
    full(client.get(url))
    refused = fragment(client.post(url, data={"csrf_token": token, "confirm": "acme.test"}, headers=HX), 422)
    assert "Delete its addresses first" in refused

    empty = make_domain("empty.test")
    url = f"/channels/email/domains/{empty.id}/delete"
    assert ">Delete</button>" in fragment(client.get(url, headers=HX))
    assert "does not match" in fragment(client.post(url, data={"csrf_token": token, "confirm": "x"}, headers=HX), 422)
    done = client.post(url, data={"csrf_token": token, "confirm": "empty.test"})
    assert done.status_code == 303
    assert db.session.scalar(select(func.count(Domain.id)).where(Domain.name == "empty.test")) == 0
    assert client.get(f"/channels/email/domains/{platform_id}/delete").status_code == 404


def test_the_fourth_address_of_a_custom_domain_is_refused_on_the_page(client, db, admin, token):
    domain = make_domain("acme.test")
    for n in range(3):
        make_address(admin, domain, custom_values(f"b{n}@acme.test"))
    # The button is disabled, and the page says why (without sending the admin to an administrator).
    page = full(client.get("/channels/email/"))
    why = f"domain-{domain.id}-full"
    assert re.search(rf'<button type="submit" disabled aria-describedby="domain-{domain.id}-title {why}">New Email '
                     r'Address</button>', page)
    assert re.search(rf'<p class="notice small" id="{why}">acme.test has its 3 email addresses, the most a custom '
                     r'domain can have', page)
    assert "ask your administrator" not in page.lower()
    # A stale page that still posts is answered with a redirect to a GET (no POST URL left in the browser).
    refused = client.post(f"/channels/email/domains/{domain.id}/addresses/new", data={"csrf_token": token})
    assert refused.status_code == 303 and refused.headers["Location"] == f"/channels/email/#domain-{domain.id}"
    shown = full(client.get("/channels/email/"))
    assert "acme.test has its 3 email addresses" in shown and "ask your administrator" not in shown.lower()
    assert db.session.scalar(select(func.count(AddressSetup.id))) == 0


# --- the wizard ---------------------------------------------------------------------------------

def test_platform_wizard_step_by_step(client, db, admin, token):
    base = new_setup(client, token)
    body = full(client.get(f"{base}/address"))
    assert '<label for="address">Email Address</label>' in body and "@mail.pigeonhole.test" in body
    for label in ("Display Name", "Forwarded from"):
        assert f">{label}</label>" in body
    for legend in ("Additional Settings", "Usage", "Send contact card (.VCF)", "Enable Channel", "Session Settings",
                   "Use Reply-To for User Identity", "Channel-Based Sessions"):
        assert f"<legend>{legend}</legend>" in body
    assert 'aria-current="step">1. Email Address' in body
    assert "Test Connection" not in body  # platform addresses have no mailbox to test
    assert fragment(client.get(f"{base}/address", headers=HX)).lstrip().startswith("<nav")

    # Bad input: the step again, 422, errors tied to their fields; nothing stored.
    bad = fragment(client.post(f"{base}/address", data=platform_form(token, forwarded_from="x@mail.pigeonhole.test",
                                                                      display_name=""), headers=HX), 422)
    assert 'id="display_name-error"' in bad and "Enter the display name customers see." in bad
    full(client.post(f"{base}/address", data=platform_form(token, address="")), 422)
    dup = make_address(admin, values=platform_values("taken"))
    taken = fragment(client.post(f"{base}/address", data=platform_form(token, address="taken"), headers=HX), 422)
    assert f"{dup.address} already exists." in taken

    # Design and review are not reachable before step 1 is done.
    assert client.get(f"{base}/design").status_code == 302

    junk = fragment(client.post(f"{base}/address", data=platform_form(token, channel_sessions="maybe"), headers=HX),
                    422)
    assert 'id="channel_sessions-error"' in junk
    assert location(client.post(f"{base}/address", data=platform_form(token, use_reply_to_identity="yes"),
                                headers=HX)) == f"{base}/design"
    body = full(client.get(f"{base}/design"))
    assert 'aria-current="step">2. Email Template Design' in body and "Email Template Design (Optional)" in body
    assert "Edit Header" not in body and 'sandbox' in body and "Plain-text part" in body
    toggled = fragment(client.post(f"{base}/design", data={"csrf_token": token, "template_enabled": "y",
                                                            "action": "toggle"}, headers=HX))
    assert "Edit Header" in toggled and "Edit Footer" in toggled
    assert fragment(client.post(f"{base}/design", data={"csrf_token": token, "action": "nonsense"},
                                headers=HX), 422)
    assert client.post(f"{base}/design", data={"csrf_token": token, "template_enabled": "y",
                                               "action": "next"}).headers["Location"] == f"{base}/review"

    body = full(client.get(f"{base}/review"))
    assert "help@mail.pigeonhole.test" in body and "help@acme.example" in body and ">Save</button>" in body
    assert "<dt>Use Reply-To for User Identity</dt><dd>Yes</dd>" in body
    assert "<dt>Channel-Based Sessions</dt><dd>No</dd>" in body
    fragment(client.get(f"{base}/review", headers=HX))
    saved = client.post(f"{base}/review", data={"csrf_token": token}, headers=HX)
    assert saved.status_code == 204 and saved.headers["HX-Redirect"].startswith("/channels/email/#address-")
    address = db.session.scalar(select(EmailAddress).where(EmailAddress.address == "help@mail.pigeonhole.test"))
    assert address.template_enabled and address.forwarded_from == "help@acme.example"
    assert address.use_reply_to_identity is True and address.channel_sessions is False
    assert "Email address help@mail.pigeonhole.test saved. Publish to make it live." in full(client.get("/channels/email/"))
    assert client.get(f"{base}/address").status_code == 404  # the wizard is closed


def test_review_refuses_to_save_when_the_address_was_taken_meanwhile(client, db, admin, token):
    base = new_setup(client, token)
    location(client.post(f"{base}/address", data=platform_form(token, address="race"), headers=HX))
    make_address(admin, values=platform_values("race"))
    body = fragment(client.post(f"{base}/review", data={"csrf_token": token}, headers=HX), 422)
    assert "race@mail.pigeonhole.test already exists." in body
    full(client.post(f"{base}/review", data={"csrf_token": token}), 422)


def test_header_editor_dialog_saves_sanitised_html_and_refuses_unknown_placeholders(client, db, token):
    base = new_setup(client, token)
    location(client.post(f"{base}/address", data=platform_form(token), headers=HX))
    body = full(client.get(f"{base}/design/header"))
    assert '<dialog id="template-editor"' in body and '<label for="html">Header HTML</label>' in body
    body = fragment(client.get(f"{base}/design/header", headers=HX))
    assert 'data-insert="{{ customer_name }}"' in body and 'hx-trigger="input changed delay:300ms"' in body

    bad = fragment(client.post(f"{base}/design/header", data={"csrf_token": token, "html": "<p>{{ custmer }}</p>"},
                               headers=HX), 422)
    assert "Unknown placeholder: {{ custmer }}" in bad and 'aria-invalid="true"' in bad
    full(client.post(f"{base}/design/header", data={"csrf_token": token, "html": "{{ nope }}"}), 422)

    ok = client.post(f"{base}/design/header", headers=HX, data={
        "csrf_token": token, "html": '<p onmouseover="x()">Hello {{ customer_name }}</p><script>bad()</script>'})
    assert ok.status_code == 204 and json.loads(ok.headers["HX-Trigger"]) == {"designChanged": True,
                                                                             "closeDialog": True}
    setup = db.session.scalar(select(AddressSetup).filter_by(token=base.rsplit("/", 1)[1]))
    assert setup.values["header_html"] == "<p>Hello {{ customer_name }}</p>"
    plain = client.post(f"{base}/design/footer", data={"csrf_token": token, "html": "<p>Bye</p>"})
    assert plain.status_code == 303 and plain.headers["Location"] == f"{base}/design"


def test_live_preview_fragment_full_page_422_and_sandboxed_document(client, db, token):
    base = new_setup(client, token)
    location(client.post(f"{base}/address", data=platform_form(token, display_name="Acme Help"), headers=HX))
    body = fragment(client.post(f"{base}/preview", headers=HX, data={
        "csrf_token": token, "part": "header", "html": "<h1>{{ display_name }} for {{ customer_name }}</h1>"}))
    assert "Acme Help for Carol Customer" in body and "Where is it?" in body  # text part, quoted history
    # A Forward to a third party: {{ customer_name }} names its recipient (unknown here), not the customer.
    forward = re.search(r'data-testid="preview-forward-text">(.*?)</pre>', body, re.S)
    assert forward and forward.group(1).startswith("Acme Help for\n") and "Carol" not in forward.group(1)
    src = re.search(r'src="(/channels/email/setup/[\w-]+/preview/(\d+)[^"]*)"', body)
    assert src and src.group(2) == "1"
    document = client.get(src.group(1))
    html = document.get_data(as_text=True)
    assert '<div class="ph-header"><h1>Acme Help for Carol Customer</h1></div>' in html
    csp = document.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "sandbox" in csp and "script-src" not in csp
    assert document.headers["X-Frame-Options"] == "SAMEORIGIN"

    typo = fragment(client.post(f"{base}/preview", headers=HX, data={"csrf_token": token, "part": "footer",
                                                                      "html": "{{ agent }}"}))
    assert "Unknown placeholder: {{ agent }}" in typo
    fragment(client.post(f"{base}/preview", headers=HX, data={"csrf_token": token, "part": "body", "html": ""}), 422)
    assert "Plain-text part" in full(client.post(f"{base}/preview", data={"csrf_token": token}))
    saved = client.get(f"{base}/preview/0?on=1").get_data(as_text=True)
    assert "ph-body" in saved and "Acme Help for" not in saved  # version 0: the saved design, not the typed one


def test_custom_wizard_validates_servers_and_keeps_the_password_encrypted(client, db, token):
    domain = make_domain("acme.test")
    base = new_setup(client, token, domain.id)
    body = full(client.get(f"{base}/address"))
    for label in ("Email Address", "Display Name", "User Name", "Password", "Protocol", "Server", "Port",
                  "Use SSL to connect", "Use STARTTLS"):
        assert f">{label}</label>" in body, label
    assert "<legend>Incoming</legend>" in body and "<legend>Outgoing</legend>" in body
    assert ">Test Connection</button>" in body and '"imap": {"ssl": 993' in body.replace("&#34;", '"')

    bad = fragment(client.post(f"{base}/address", headers=HX, data=custom_form(
        token, "help@other.test", incoming_port="99999")), 422)
    assert "A port is a number from 1 to 65535." in bad
    bad = fragment(client.post(f"{base}/address", headers=HX, data=custom_form(token, "help@other.test")), 422)
    assert "The address must be on acme.test." in bad
    bad = fragment(client.post(f"{base}/address", headers=HX, data=custom_form(token, "help@acme.test",
                                                                                 password="")), 422)
    assert "Enter the mailbox password." in bad

    location(client.post(f"{base}/address", headers=HX, data=custom_form(token, "help@acme.test",
                                                                           password="s3cret!")))
    step = fragment(client.get(f"{base}/address", headers=HX))
    assert "A password is stored. Leave blank to keep it." in step and "s3cret!" not in step
    assert "Stored, encrypted (hidden)" in full(client.get(f"{base}/review"))
    client.post(f"{base}/review", data={"csrf_token": token})
    address = db.session.scalar(select(EmailAddress).where(EmailAddress.address == "help@acme.test"))
    assert decrypt_secret(address.password_encrypted) == "s3cret!" and address.incoming_port == 993
    assert address.outgoing_port == 587 and address.last_test_ok is None
    index = full(client.get("/channels/email/"))
    assert "s3cret" not in index and "Not tested" in index


def test_edit_reopens_the_form_prefilled_and_update_saves(client, db, admin, token):
    address = make_address(admin, values=platform_values("help", display_name="Old Name"))
    response = client.get(f"/channels/email/addresses/{address.id}/edit")
    assert response.status_code == 303
    base = response.headers["Location"].rsplit("/", 1)[0]
    assert client.get(f"/channels/email/addresses/{address.id}/edit").headers["Location"].startswith(base)
    body = full(client.get(f"{base}/address"))
    assert "<h1>Edit Email Address</h1>" in body and 'value="Old Name"' in body and 'value="help"' in body
    location(client.post(f"{base}/address", data=platform_form(token, display_name="New Name"), headers=HX))
    assert ">Update</button>" in full(client.get(f"{base}/review"))
    client.post(f"{base}/review", data={"csrf_token": token})
    db.session.expire_all()
    assert db.session.get(EmailAddress, address.id).display_name == "New Name"
    assert "Email address help@mail.pigeonhole.test updated." in full(client.get("/channels/email/"))


def test_cancel_discards_the_wizard(client, db, token):
    base = new_setup(client, token)
    response = client.post(f"{base}/discard", data={"csrf_token": token}, headers=HX)
    assert response.status_code == 204 and response.headers["HX-Redirect"] == "/channels/email/"
    assert db.session.scalar(select(func.count(AddressSetup.id))) == 0


# --- Test Connection ----------------------------------------------------------------------------

def test_test_connection_green_fragment_and_remembered_on_save(app, client, db, token, mail_servers):
    app.config["MAIL_TLS_CA_FILE"] = str(mail_servers.ca_file)
    domain = make_domain("acme.test")
    base = new_setup(client, token, domain.id)
    form = custom_form(token, MAILBOX, password=PASSWORD, incoming_host="127.0.0.1",
                       incoming_port=str(mail_servers.dovecot.ports["imaps"]), incoming_security="ssl",
                       outgoing_host="127.0.0.1", outgoing_port=str(mail_servers.smtp_starttls.port),
                       outgoing_security="starttls")
    body = fragment(client.post(f"{base}/test", data=form, headers=HX))
    assert body.lstrip().startswith('<div id="test-results"')
    assert "Incoming: Success." in body and "opened INBOX read-only" in body
    assert "Outgoing: Success." in body and "nothing was sent" in body and PASSWORD not in body
    assert mail_servers.smtp_starttls.messages == []
    location(client.post(f"{base}/address", data=form, headers=HX))
    assert "Passed" in full(client.get(f"{base}/review"))
    client.post(f"{base}/review", data={"csrf_token": token})
    address = db.session.scalar(select(EmailAddress).where(EmailAddress.address == MAILBOX))
    assert address.last_test_ok is True and "opened INBOX" in address.last_test_message
    assert ">Passed</span>" in full(client.get("/channels/email/"))


def test_test_connection_red_reasons_full_page_and_422(app, client, db, token, mail_servers):
    app.config["MAIL_TLS_CA_FILE"] = str(mail_servers.ca_file)
    app.config["PROBE_TIMEOUT_SECONDS"] = 0.5
    domain = make_domain("acme.test")
    base = new_setup(client, token, domain.id)
    form = custom_form(token, MAILBOX, password="wrong", incoming_host="127.0.0.1",
                       incoming_port=str(mail_servers.closed_port()), incoming_security="ssl",
                       outgoing_host="127.0.0.1", outgoing_port=str(mail_servers.smtp_starttls.port))
    body = fragment(client.post(f"{base}/test", data=form, headers=HX))
    assert "Incoming: Failed." in body and "The server refused the connection." in body
    assert "Outgoing: Failed." in body and "The server refused the user name or password." in body
    assert "5.7.8 Authentication credentials invalid" in body

    form.update(incoming_port=str(mail_servers.silent.port), outgoing_host="")
    form["usage"] = "inbound"
    body = full(client.post(f"{base}/test", data=form))  # without JavaScript: the step page with the results
    assert "The server did not answer in time (0.5 s)." in body and "Outgoing:" not in body

    bad = fragment(client.post(f"{base}/test", data=custom_form(token, "not-an-address", incoming_host="bad host"),
                               headers=HX), 422)
    assert "Test Connection needs these first" in bad
    setup = db.session.scalar(select(AddressSetup).filter_by(token=base.rsplit("/", 1)[1]))
    assert setup.test_result["ok"] is False and "wrong" not in json.dumps(setup.test_result)
    assert client.post(f"{new_setup(client, token)}/test", data=form).status_code == 404  # platform: no mailbox


# --- delete -------------------------------------------------------------------------------------

def test_delete_dialog_erases_or_archives(client, db, admin, token):
    plain = make_address(admin, values=platform_values("plain"))
    busy = make_address(admin, values=platform_values("busy"))
    make_conversation(busy)
    url = f"/channels/email/addresses/{plain.id}/delete"
    assert "its settings are erased" in fragment(client.get(url, headers=HX))
    full(client.get(url))
    assert "does not match" in fragment(client.post(url, data={"csrf_token": token, "confirm": "busy@x"},
                                                    headers=HX), 422)
    response = client.post(url, data={"csrf_token": token, "confirm": plain.address}, headers=HX)
    assert response.status_code == 204
    assert db.session.scalar(select(func.count(EmailAddress.id)).where(EmailAddress.id == plain.id)) == 0

    url = f"/channels/email/addresses/{busy.id}/delete"
    assert "will be <strong>archived</strong>" in fragment(client.get(url, headers=HX))
    client.post(url, data={"csrf_token": token, "confirm": busy.address})
    body = full(client.get("/channels/email/"))
    assert "has conversations, so it was archived" in body and ">Archived</span>" in body
    assert client.get(url).status_code == 404
    assert client.get(f"/channels/email/addresses/{busy.id}/edit").status_code == 404


# --- page hygiene -------------------------------------------------------------------------------

def test_channel_pages_have_no_inline_script_or_style_and_label_every_field(client, db, admin, token):
    domain = make_domain("acme.test")
    address = make_address(admin, domain, custom_values("box@acme.test"))
    custom = new_setup(client, token, domain.id)
    platform = new_setup(client, token)
    location(client.post(f"{platform}/address", data=platform_form(token), headers=HX))
    urls = ["/channels/email/", "/channels/email/domains/new", f"/channels/email/domains/{domain.id}/delete",
            f"/channels/email/addresses/{address.id}/delete", f"{custom}/address", f"{platform}/design",
            f"{platform}/design/header", f"{platform}/review", "/channels/publish/", "/channels/publish/new",
            "/channels/publish/history", "/flows/"]
    for url in urls:
        html = full(client.get(url))
        assert "<script>" not in html and " style=" not in html and " onclick=" not in html, url
        ids = set(re.findall(r'<(?:input|select|textarea)[^>]*\bid="([^"]+)"', html))
        hidden = set(re.findall(r'<input[^>]*type="hidden"[^>]*id="([^"]+)"', html)) | \
            set(re.findall(r'<input[^>]*id="([^"]+)"[^>]*type="hidden"', html))
        for field_id in ids - hidden:
            assert f'<label for="{field_id}">' in html, (url, field_id)


def test_passwords_never_reach_logs_or_pages(app, client, db, token, caplog, mail_servers):
    import logging

    caplog.set_level(logging.DEBUG)
    app.config["MAIL_TLS_CA_FILE"] = str(mail_servers.ca_file)
    domain = make_domain("acme.test")
    base = new_setup(client, token, domain.id)
    form = custom_form(token, MAILBOX, password=PASSWORD, incoming_host="127.0.0.1",
                       incoming_port=str(mail_servers.dovecot.ports["imap"]), incoming_security="starttls",
                       outgoing_host="127.0.0.1", outgoing_port=str(mail_servers.smtp_implicit.port),
                       outgoing_security="ssl")
    pages = [client.post(f"{base}/test", data=form, headers=HX).get_data(as_text=True)]
    location(client.post(f"{base}/address", data=form, headers=HX))
    pages += [client.get(f"{base}/{step}").get_data(as_text=True) for step in ("address", "design", "review")]
    client.post(f"{base}/review", data={"csrf_token": token})
    pages.append(client.get("/channels/email/").get_data(as_text=True))
    assert "Incoming: Success." in pages[0] and "Outgoing: Success." in pages[0]
    assert all(PASSWORD not in page for page in pages)
    assert PASSWORD not in caplog.text
    address = db.session.scalar(select(EmailAddress).where(EmailAddress.address == MAILBOX))
    assert PASSWORD.encode() not in address.password_encrypted and PASSWORD not in json.dumps(address.published or {})
