"""The wizard's "Sign in with …" over HTTP, against the real test authorization server (tests/oauth_server.py).

The admin's browser is the Flask test client; the provider's consent page is answered with
`requests`, as a browser would post it. Dovecot and aiosmtpd check the tokens (Test Connection).
"""
from __future__ import annotations

import json
import time
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import select

from app.crypto import decrypt_secret
from app.mail import oauth
from app.models._types import utcnow
from app.models.channels import AddressSetup, CredentialStatus, EmailAddress, OAuthCredential
from app.runtime.oauth import store_tokens
from app.runtime.poll import poll_address
from tests.channel_factories import make_domain
from tests.helpers import csrf_token
from tests.mail.conftest import message
from tests.oauth_fixtures import CLIENT_ID, PASSWORD, oauth_app, oauth_world  # noqa: F401
from tests.pages import HX


@pytest.fixture
def admin(oauth_app, login_as):
    return login_as("admin")


@pytest.fixture
def token(client, admin):
    return csrf_token(client, "/channels/email/")


def new_setup(client, token, domain_id) -> str:
    response = client.post(f"/channels/email/domains/{domain_id}/addresses/new", data={"csrf_token": token})
    assert response.status_code == 303
    return response.headers["Location"].rsplit("/", 1)[0]


def oauth_form(token, world, mailbox, **overrides) -> dict:
    data = {"csrf_token": token, "address": mailbox, "display_name": "Acme Desk", "username": "",
            "mailbox_kind": "generic", "incoming_protocol": "imap", "incoming_host": "127.0.0.1",
            "incoming_port": str(world.dovecot.ports["imaps"]), "incoming_security": "ssl",
            "outgoing_protocol": "smtp", "outgoing_host": "127.0.0.1", "outgoing_port": str(world.smtp.port),
            "outgoing_security": "starttls", "usage": "both", "send_vcard": "no", "enabled": "yes",
            "use_reply_to_identity": "no", "channel_sessions": "no"}
    data.update(overrides)
    return data


def consent(url: str, mailbox: str, decision: str = "approve") -> str:
    """Answer the provider's consent page; returns where it sends the browser back (our callback)."""
    page = requests.get(url, timeout=10)
    assert page.status_code == 200 and "Approve" in page.text
    answer = requests.post(url, data={"mailbox": mailbox, "decision": decision}, allow_redirects=False, timeout=10)
    assert answer.status_code == 302
    back = answer.headers["Location"]
    assert back.startswith("http://localhost/channels/oauth/callback?")
    return back.removeprefix("http://localhost")


def start_sign_in(client, base, form) -> str:
    response = client.post(f"{base}/sign-in", data=form)
    assert response.status_code == 303, response.get_data(as_text=True)[:3000]
    return response.headers["Location"]


def setup_row(db, base) -> AddressSetup:
    db.session.expire_all()
    return db.session.scalar(select(AddressSetup).filter_by(token=base.rsplit("/", 1)[1]))


def test_kinds_of_mailbox_offer_the_configured_providers_and_say_which_setting_is_missing(client, db, token):
    base = new_setup(client, token, make_domain("acme.test").id)
    html = client.get(f"{base}/address").get_data(as_text=True)
    assert "IMAP/POP3 + SMTP with a password" in html and "Test Identity Provider" in html
    kinds = {block.split('value="')[1].split('"')[0]: block for block in html.split('<div class="check">')[1:]
             if 'name="mailbox_kind"' in block}
    assert list(kinds) == ["password", "google", "microsoft", "microsoft_app", "generic"]
    assert "disabled" not in kinds["microsoft_app"].split("</div>")[0]  # the OAUTH_MICROSOFT_APP_* settings
    assert " disabled " in kinds["google"] and "OAUTH_GOOGLE_CLIENT_ID is not set" in kinds["google"]
    assert "OAUTH_MICROSOFT_CLIENT_ID is not set" in kinds["microsoft"]
    assert "disabled" not in kinds["generic"].split("</div>")[0]
    assert "imap.gmail.com" in html and "smtp.office365.com" in html  # the presets the script fills in

    # A disabled kind is refused by the server too, with the same sentence.
    response = client.post(f"{base}/address", data=oauth_form(token, _World(), "a@acme.test", mailbox_kind="google"))
    assert response.status_code == 422 and "OAUTH_GOOGLE_CLIENT_ID is not set" in response.get_data(as_text=True)


class _World:
    """Ports nobody listens on, for forms that never connect."""

    class dovecot:  # noqa: N801
        ports = {"imaps": 9}

    class smtp:  # noqa: N801
        port = 9


def test_google_kind_fills_in_the_documented_servers_when_left_empty(oauth_app, client, db, token):
    oauth_app.config["OAUTH_GOOGLE_CLIENT_ID"] = "google-client"
    base = new_setup(client, token, make_domain("acme.test").id)
    form = oauth_form(token, _World(), "desk@acme.test", mailbox_kind="google", incoming_host="", incoming_port="",
                      outgoing_host="", outgoing_port="")
    location = start_sign_in(client, base, form)
    assert location.startswith("https://accounts.google.com/o/oauth2/v2/auth?")
    query = parse_qs(urlsplit(location).query)
    assert query["scope"] == ["https://mail.google.com/"] and query["code_challenge_method"] == ["S256"]
    assert query["login_hint"] == ["desk@acme.test"] and query["access_type"] == ["offline"]
    values = setup_row(db, base).values
    assert (values["incoming_host"], values["incoming_port"], values["outgoing_host"], values["outgoing_port"]) == \
        ("imap.gmail.com", 993, "smtp.gmail.com", 465)
    assert values["auth_method"] == "oauth" and values["oauth_provider"] == "google"
    assert query["redirect_uri"] == ["http://localhost/channels/oauth/callback"]  # this request's host


def test_the_redirect_uri_is_the_public_address_behind_a_proxy(oauth_app, client, db, token):
    """Behind a proxy that terminates TLS the request says http://; the provider must get the registered URI."""
    oauth_app.config.update(OAUTH_GOOGLE_CLIENT_ID="google-client", PUBLIC_BASE_URL="https://desk.acme.example/")
    base = new_setup(client, token, make_domain("acme.test").id)
    form = oauth_form(token, _World(), "desk@acme.test", mailbox_kind="google", incoming_host="", incoming_port="",
                      outgoing_host="", outgoing_port="")
    query = parse_qs(urlsplit(start_sign_in(client, base, form)).query)
    assert query["redirect_uri"] == ["https://desk.acme.example/channels/oauth/callback"]


def test_sign_in_consent_test_connection_and_save_keep_the_tokens_encrypted(client, db, token, oauth_world):
    mailbox = oauth_world.new_mailbox()
    base = new_setup(client, token, make_domain("acme.test").id)
    form = oauth_form(token, oauth_world, mailbox)
    # Next without signing in is refused, naming the provider.
    refused = client.post(f"{base}/address", data=form)
    assert refused.status_code == 422 and "Sign in with Test Identity Provider first" in refused.get_data(as_text=True)

    location = start_sign_in(client, base, form)
    assert parse_qs(urlsplit(location).query)["login_hint"] == [mailbox]
    back = client.get(consent(location, mailbox))
    assert back.status_code == 303 and back.headers["Location"].startswith(f"{base}/address")
    page = client.get(f"{base}/address").get_data(as_text=True)
    assert f"Signed in as {mailbox}." in page  # the flash
    assert f"Signed in as <strong>{mailbox}</strong>" in page
    setup = setup_row(db, base)
    assert setup.oauth_state is None and setup.oauth_sign_in["subject"] == mailbox
    assert setup.oauth_sign_in["tokens"].startswith("gAAAA")  # Fernet: encrypted at rest
    kept = json.loads(decrypt_secret(setup.oauth_sign_in["tokens"].encode()))
    assert kept["refresh_token"] and kept["access_token"] not in setup.oauth_sign_in["tokens"]

    tested = client.post(f"{base}/test", data=form, headers=HX)
    html = tested.get_data(as_text=True)
    assert tested.status_code == 200, html
    assert "Sign-in token: Success." in html and "Incoming: Success." in html and "Outgoing: Success." in html

    assert client.post(f"{base}/address", data=form).status_code == 303
    assert client.post(f"{base}/design", data={"csrf_token": token, "action": "next"}).status_code == 303
    review = client.get(f"{base}/review").get_data(as_text=True)
    assert f"Signed in as {mailbox}" in review and "Passed" in review
    assert client.post(f"{base}/review", data={"csrf_token": token}).status_code == 303
    address = db.session.scalar(select(EmailAddress).where(EmailAddress.address == mailbox))
    credential = db.session.scalar(select(OAuthCredential).where(OAuthCredential.address_id == address.id))
    assert (address.auth_method, address.oauth_provider, address.last_test_ok) == ("oauth", "generic", True)
    assert credential.subject == mailbox and credential.status == "active" and credential.refresh_token_encrypted
    setup_id = setup.id
    db.session.expire_all()
    assert db.session.get(AddressSetup, setup_id) is None


def test_refused_consent_shows_a_page_with_try_again_and_keeps_nothing(client, db, token, oauth_world):
    mailbox = oauth_world.new_mailbox()
    base = new_setup(client, token, make_domain("acme.test").id)
    location = start_sign_in(client, base, oauth_form(token, oauth_world, mailbox))
    page = client.get(consent(location, mailbox, "refuse"))
    html = page.get_data(as_text=True)
    assert page.status_code == 400
    assert "Sign-in not completed" in html and "consent was refused" in html and ">Try again</button>" in html
    setup = setup_row(db, base)
    assert setup.oauth_state is None and not (setup.oauth_sign_in or {}).get("tokens")
    assert db.session.scalar(select(OAuthCredential)) is None

    again = client.post(f"{base}/sign-in/again", data={"csrf_token": token})
    assert again.status_code == 303 and again.headers["Location"].startswith(oauth_world.idp.authorization_url)


def test_a_state_nobody_started_or_used_twice_is_refused(client, db, token, oauth_world):
    mailbox = oauth_world.new_mailbox()
    page = client.get("/channels/oauth/callback?code=abc&state=made-up")
    assert page.status_code == 400 and "not one this wizard started" in page.get_data(as_text=True)

    base = new_setup(client, token, make_domain("acme.test").id)
    back = consent(start_sign_in(client, base, oauth_form(token, oauth_world, mailbox)), mailbox)
    assert client.get(back).status_code == 303
    replay = client.get(back)
    assert replay.status_code == 400 and "already used" in replay.get_data(as_text=True)


def test_an_expired_sign_in_and_a_failed_exchange_save_nothing(client, db, token, oauth_world):
    mailbox = oauth_world.new_mailbox()
    base = new_setup(client, token, make_domain("acme.test").id)
    form = oauth_form(token, oauth_world, mailbox)
    back = consent(start_sign_in(client, base, form), mailbox)
    setup = setup_row(db, base)
    setup.oauth_sign_in = {**setup.oauth_sign_in, "started_at": (utcnow() - timedelta(hours=1)).isoformat()}
    db.session.commit()
    page = client.get(back)
    assert page.status_code == 400 and "has expired" in page.get_data(as_text=True)
    assert setup_row(db, base).oauth_state is None

    back = consent(start_sign_in(client, base, form), mailbox)
    code = parse_qs(urlsplit(back).query)["code"][0]
    page = client.get(back.replace(code, "not-the-code"))
    html = page.get_data(as_text=True)
    assert page.status_code == 400 and "refused to complete the sign-in" in html and "invalid_grant" in html
    setup = setup_row(db, base)
    assert setup.oauth_state is None and not (setup.oauth_sign_in or {}).get("tokens")


def test_sign_in_again_makes_the_address_active_and_the_next_poll_loses_no_mail(client, db, token, oauth_world):
    mailbox = oauth_world.new_mailbox()
    from tests.mail.test_oauth_mailboxes import oauth_address

    address = oauth_address(oauth_world, mailbox, usage="inbound")
    issued = oauth_world.idp.issue(CLIENT_ID, mailbox, scope="mail")
    store_tokens(address.id, "generic", oauth.TokenSet(issued.access_token, time.time() + 3600,
                                                       issued.refresh_token, "mail"), subject=mailbox)
    db.session.commit()
    oauth_world.dovecot.append(mailbox, PASSWORD, [message(to=mailbox, subject="before")])
    assert poll_address(address.id).fetched == 1
    oauth_world.idp.revoke_refresh_tokens(mailbox)
    oauth_world.idp.expire_access_tokens()
    oauth_world.dovecot.append(mailbox, PASSWORD, [message(to=mailbox, subject=f"while signed out {i}")
                                                   for i in range(2)])
    assert poll_address(address.id).error  # the refresh token is dead: "Sign-in needed"
    db.session.expire_all()
    assert db.session.scalar(select(OAuthCredential.status)) == CredentialStatus.SIGN_IN_NEEDED.value

    index = client.get("/channels/email/").get_data(as_text=True)
    assert "Sign-in needed" in index and ">Sign in again</button>" in index
    response = client.post(f"/channels/email/addresses/{address.id}/sign-in", data={"csrf_token": token})
    assert response.status_code == 303
    back = client.get(consent(response.headers["Location"], mailbox))
    assert back.status_code == 303
    db.session.expire_all()
    credential = db.session.scalar(select(OAuthCredential))
    assert credential.status == CredentialStatus.ACTIVE.value and credential.subject == mailbox  # at once, no save

    result = poll_address(address.id)
    assert result.error is None and result.fetched == 2, result.summary()
    from tests.mail.test_oauth_mailboxes import stored_subjects

    assert stored_subjects(db, address) == ["before", "while signed out 0", "while signed out 1"]
