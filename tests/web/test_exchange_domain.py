"""A custom domain of type "Microsoft Exchange" (app-only): its Tenant ID, Client ID and Client Secret, the
address wizard's Microsoft Exchange (app-only) kind, Test Connection's token step, and tokens renewed by
client credentials with the domain's app, against the real test authorization server, Dovecot and aiosmtpd."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app.crypto import decrypt_secret
from app.models.channels import CredentialStatus, Domain, EmailAddress, OAuthCredential
from app.runtime.oauth import access_token
from app.runtime.poll import poll_address
from tests.helpers import csrf_token
from tests.mail.conftest import message
from tests.oauth_fixtures import PASSWORD, oauth_app, oauth_world  # noqa: F401
from tests.pages import HX
from tests.web.test_oauth_wizard import new_setup, oauth_form

APP_ID, SECRET, TENANT = "acme-exchange-app", "acme-exchange-secret", "acme.onmicrosoft.com"


@pytest.fixture
def admin(oauth_app, login_as):
    oauth_app.config["OAUTH_MICROSOFT_APP_CLIENT_SECRET"] = ""  # no installation-wide app: only the domain's
    return login_as("admin")


@pytest.fixture
def token(client, admin):
    return csrf_token(client, "/channels/email/")


@pytest.fixture
def exchange_mailbox(oauth_world):
    """A Dovecot mailbox, and the tenant's app registered at the test authorization server for it."""
    mailbox = oauth_world.new_mailbox()
    oauth_world.idp.add_client(APP_ID, SECRET, grant_types=("client_credentials",), mailbox=mailbox, scope="mail")
    return mailbox


def domain_named(db, name: str) -> Domain | None:
    db.session.expire_all()
    return db.session.scalar(select(Domain).where(Domain.name == name))


def new_exchange_domain(client, token, **fields):
    data = {"csrf_token": token, "name": "acme.test", "domain_type": "exchange", "tenant_id": TENANT,
            "client_id": APP_ID, "client_secret": SECRET}
    data.update(fields)
    return client.post("/channels/email/domains/new", data=data, headers=HX)


def edit_exchange(client, token, domain_id, **fields):
    data = {"csrf_token": token, "domain_type": "exchange", "tenant_id": TENANT, "client_id": APP_ID,
            "client_secret": ""}
    data.update(fields)
    return client.post(f"/channels/email/domains/{domain_id}/exchange", data=data, headers=HX)


def test_new_domain_of_type_microsoft_exchange_keeps_the_secret_encrypted_and_never_shows_it(client, db, token):
    dialog = client.get("/channels/email/domains/new").get_data(as_text=True)
    for label in ("Tenant ID", "Client ID", "Client Secret"):
        assert f'>{label}</label>' in dialog
    assert "Microsoft Exchange (app-only)" in dialog

    for fields, words in (({"tenant_id": ""}, "Enter the Tenant ID"), ({"tenant_id": "x/../evil?"}, "is a GUID or"),
                          ({"client_id": ""}, "Enter the Client ID"), ({"client_secret": ""}, "Enter the Client Secret")):
        bad = new_exchange_domain(client, token, **fields)
        assert bad.status_code == 422 and words in bad.get_data(as_text=True), fields
        assert domain_named(db, "acme.test") is None  # nothing half-made
    assert new_exchange_domain(client, token).status_code == 204
    domain = domain_named(db, "acme.test")
    assert (domain.ms_app_tenant, domain.ms_app_client_id, domain.microsoft_exchange) == (TENANT, APP_ID, True)
    assert SECRET.encode() not in domain.ms_app_client_secret_encrypted
    assert decrypt_secret(domain.ms_app_client_secret_encrypted) == SECRET

    index = client.get("/channels/email/").get_data(as_text=True)
    assert f"Microsoft Exchange (app-only): tenant {TENANT}, client {APP_ID}" in index
    assert ">Microsoft Exchange sign-in</a>" in index
    edit = client.get(f"/channels/email/domains/{domain.id}/exchange").get_data(as_text=True)
    assert SECRET not in edit and "A secret is stored. Leave blank to keep it." in edit
    assert f'value="{TENANT}"' in edit and re.search(r'<input checked[^>]*value="exchange"', edit)

    # Blank keeps the secret; a new tenant or client needs it typed again.
    assert edit_exchange(client, token, domain.id).status_code == 204
    assert decrypt_secret(domain_named(db, "acme.test").ms_app_client_secret_encrypted) == SECRET
    moved = edit_exchange(client, token, domain.id, tenant_id="other.onmicrosoft.com")
    assert moved.status_code == 422 and "type the Client Secret again" in moved.get_data(as_text=True)
    moved = edit_exchange(client, token, domain.id, client_id="other-app")
    assert moved.status_code == 422 and domain_named(db, "acme.test").ms_app_client_id == APP_ID
    assert edit_exchange(client, token, domain.id, tenant_id="other.onmicrosoft.com",
                         client_secret="new-secret").status_code == 204
    domain = domain_named(db, "acme.test")
    assert domain.ms_app_tenant == "other.onmicrosoft.com"
    assert decrypt_secret(domain.ms_app_client_secret_encrypted) == "new-secret"

    # Back to a plain custom domain: the app is forgotten.
    assert edit_exchange(client, token, domain.id, domain_type="custom").status_code == 204
    domain = domain_named(db, "acme.test")
    assert domain.ms_app_tenant is None and domain.ms_app_client_secret_encrypted is None
    assert not domain.microsoft_exchange


def test_app_only_test_connection_reports_the_token_step_and_tokens_renew_with_the_domains_app(
        client, db, token, oauth_world, exchange_mailbox):
    mailbox = exchange_mailbox
    assert new_exchange_domain(client, token, client_secret="not-the-secret").status_code == 204
    domain = domain_named(db, "acme.test")
    base = new_setup(client, token, domain.id)
    page = client.get(f"{base}/address").get_data(as_text=True)
    assert re.search(r'<input checked[^>]*value="microsoft_app"', page)  # an Exchange domain's addresses are app-only by default
    assert f"this domain's Microsoft Exchange app (tenant {TENANT}, client {APP_ID})" in page
    assert 'value="outlook.office365.com"' in page  # Exchange Online's servers, editable
    form = oauth_form(token, oauth_world, mailbox, mailbox_kind="microsoft_app")

    # A wrong secret: the token step fails with the provider's words, and no server is tried.
    tested = client.post(f"{base}/test", data=form, headers=HX).get_data(as_text=True)
    assert "Sign-in token: Failed." in tested and "invalid_client" in tested
    assert "Microsoft Exchange sign-in of the domain acme.test" in tested
    assert "Incoming:" not in tested and "Outgoing:" not in tested
    assert "not-the-secret" not in tested

    assert edit_exchange(client, token, domain.id, client_secret=SECRET).status_code == 204
    tested = client.post(f"{base}/test", data=form, headers=HX).get_data(as_text=True)
    assert "Sign-in token: Success." in tested and "Incoming: Success." in tested and "Outgoing: Success." in tested
    assert f"open the mailbox {mailbox}" in tested
    # "Sign in with …" is not for app-only: the server says so.
    refused = client.post(f"{base}/sign-in", data=form)
    assert refused.status_code == 422 and "needs no sign-in" in refused.get_data(as_text=True)
    assert client.post(f"{base}/address", data=form).status_code == 303
    assert client.post(f"{base}/design", data={"csrf_token": token, "action": "next"}).status_code == 303
    review = client.get(f"{base}/review").get_data(as_text=True)
    assert "App-only: tokens from the domain&#39;s Microsoft Exchange app for " + mailbox in review
    assert client.post(f"{base}/review", data={"csrf_token": token}).status_code == 303
    address = db.session.scalar(select(EmailAddress).where(EmailAddress.address == mailbox))
    from app.publish.services import publish_addresses

    publish_addresses([address.id], None, "app-only")
    db.session.commit()

    # Polls sign in by client credentials with the domain's app; an expired token is asked for again.
    oauth_world.dovecot.append(mailbox, PASSWORD, [message(to=mailbox, subject="first")])
    assert poll_address(address.id).fetched == 1
    first = access_token(address.id)
    oauth_world.idp.expire_access_tokens()
    oauth_world.dovecot.append(mailbox, PASSWORD, [message(to=mailbox, subject="after expiry")])
    result = poll_address(address.id)
    assert result.error is None and result.fetched == 1, result.summary()
    assert access_token(address.id) != first and oauth_world.idp.tokens[-1].client_id == APP_ID

    # A secret revoked at Microsoft (here: a wrong one typed): "Sign-in needed" with a way to fix it there.
    assert edit_exchange(client, token, domain.id, client_secret="rotated-away").status_code == 204
    credential = db.session.scalar(select(OAuthCredential).where(OAuthCredential.address_id == address.id))
    assert credential.access_token_encrypted is None  # the old app's token is forgotten at once
    oauth_world.dovecot.append(mailbox, PASSWORD, [message(to=mailbox, subject="while refused")])
    result = poll_address(address.id)
    assert result.fetched == 0 and "invalid_client" in result.error
    db.session.expire_all()
    credential = db.session.scalar(select(OAuthCredential).where(OAuthCredential.address_id == address.id))
    assert credential.status == CredentialStatus.SIGN_IN_NEEDED.value
    index = client.get("/channels/email/").get_data(as_text=True)
    assert "Sign-in needed" in index and f"/channels/email/domains/{domain.id}/exchange" in index
    assert f"/channels/email/addresses/{address.id}/sign-in" not in index  # no user sign-in for app-only

    # The right secret again: active at once, and the mail that waited arrives, once.
    assert edit_exchange(client, token, domain.id, client_secret=SECRET).status_code == 204
    result = poll_address(address.id)
    assert result.error is None and result.fetched == 1, result.summary()
    from tests.mail.test_oauth_mailboxes import stored_subjects

    assert stored_subjects(db, address) == ["after expiry", "first", "while refused"]


def test_an_app_only_token_goes_only_to_exchange_online_servers(client, db, app, token, oauth_world,
                                                                exchange_mailbox):
    """The app's token opens every mailbox of the tenant: pointing an app-only address at another host is refused."""
    assert new_exchange_domain(client, token, client_secret=SECRET).status_code == 204
    base = new_setup(client, token, domain_named(db, "acme.test").id)
    form = oauth_form(token, oauth_world, exchange_mailbox, mailbox_kind="microsoft_app",
                      outgoing_host="smtp.collector.example")
    tested = client.post(f"{base}/test", data=form, headers=HX)
    page = tested.get_data(as_text=True)
    assert tested.status_code == 422 and "smtp.collector.example is not an Exchange Online server" in page
    assert "Sign-in token: Success." not in page  # refused before any token was asked for or sent
    assert client.post(f"{base}/address", data=form).status_code == 422
    # Private hosts are only accepted while MAIL_ALLOW_PRIVATE_HOSTS is on (the test servers are on loopback).
    app.config["MAIL_ALLOW_PRIVATE_HOSTS"] = False
    try:
        loopback = oauth_form(token, oauth_world, exchange_mailbox, mailbox_kind="microsoft_app")
        assert "is not an Exchange Online server" in client.post(f"{base}/test", data=loopback,
                                                                 headers=HX).get_data(as_text=True)
    finally:
        app.config["MAIL_ALLOW_PRIVATE_HOSTS"] = True
    assert client.post(f"{base}/address", data=loopback).status_code == 303
