"""Issue 14's "Done when": each kind of custom-domain address receives and sends through the real test servers.

A Google-kind, a Microsoft 365-kind (delegated), a Microsoft Exchange app-only kind (the domain's own
app) and a password-kind address are each made through the real wizard routes (the admin's browser
is the Flask test client; the provider's consent page is answered with `requests`, its Approve
button), tested (Test Connection), saved and published through the Publish routes. Then a customer's
mail is put in the mailbox (Dovecot, with `oauth2` passdb checking tokens at the test authorization
server), polled in, and the agent's reply goes out through aiosmtpd, which signs the sender in by
token (AUTH XOAUTH2, introspected) or by password.

Google and Microsoft are pointed at the test authorization server by their endpoint settings
(`OAUTH_GOOGLE_AUTHORIZATION_URL` / `_TOKEN_URL`, `OAUTH_MICROSOFT_AUTHORITY`): the server speaks
Microsoft's URL shape (`/{tenant}/oauth2/v2.0/...`), and its clients in Google's and Microsoft's
shape grant the providers' scopes (checked by the product) together with the test servers' "mail".

"A token expires and is refreshed mid-run without losing or duplicating mail" is
tests/mail/test_oauth_mailboxes.py::test_an_expired_token_is_renewed_between_polls_and_no_mail_is_lost_or_doubled
(and, for app-only, test_app_only_microsoft_signs_in_by_client_credentials_and_asks_again_when_expired).
"""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app.mail.oauth import MICROSOFT_DELEGATED_SCOPE
from app.models.channels import Domain, EmailAddress, OAuthCredential
from app.models.inbox import Conversation, Message
from app.runtime.live import published_address
from app.runtime.outbound import deliver_message, send_reply
from app.runtime.poll import poll_address
from tests.helpers import csrf_token
from tests.mail.conftest import message
from tests.oauth_fixtures import PASSWORD, REDIRECT_URI, oauth_app, oauth_world  # noqa: F401
from tests.pages import HX
from tests.web.test_oauth_wizard import consent, new_setup, oauth_form, start_sign_in

GOOGLE = ("google-client", "google-secret")
MICROSOFT = ("microsoft-client", "microsoft-secret")
EXCHANGE = ("exchange-domain-app", "exchange-domain-secret", "acme-tenant-id")


@pytest.fixture
def kinds_app(oauth_app, oauth_world):
    """The app with Google and Microsoft 365 (delegated) pointed at the test authorization server."""
    idp = oauth_world.idp
    idp.add_client(*GOOGLE, redirect_uris=[REDIRECT_URI], scope="https://mail.google.com/", also_grants="mail")
    idp.add_client(*MICROSOFT, redirect_uris=[REDIRECT_URI], scope=MICROSOFT_DELEGATED_SCOPE, also_grants="mail")
    oauth_app.config.update({
        "OAUTH_GOOGLE_CLIENT_ID": GOOGLE[0], "OAUTH_GOOGLE_CLIENT_SECRET": GOOGLE[1],
        "OAUTH_GOOGLE_AUTHORIZATION_URL": idp.authorization_url, "OAUTH_GOOGLE_TOKEN_URL": idp.token_url,
        "OAUTH_MICROSOFT_CLIENT_ID": MICROSOFT[0], "OAUTH_MICROSOFT_CLIENT_SECRET": MICROSOFT[1],
        # The installation-wide app-only settings point at a secret the server refuses: the domain's app is used.
        "OAUTH_MICROSOFT_APP_CLIENT_SECRET": "not-the-secret",
    })
    return oauth_app


@pytest.fixture
def admin_client(kinds_app, client, login_as):
    admin = login_as("admin")
    return client, csrf_token(client, "/channels/email/"), admin


def _create_domain(client, token, name: str, **exchange) -> Domain:
    response = client.post("/channels/email/domains/new", data={"csrf_token": token, "name": name, **exchange})
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    from app.extensions import db

    return db.session.scalar(select(Domain).where(Domain.name == name))


def _wizard(client, token, world, domain: Domain, mailbox: str, kind: str) -> EmailAddress:
    """New Email Address → (Sign in with … → Approve) → Test Connection → Next → Next → Save."""
    base = new_setup(client, token, domain.id)
    form = oauth_form(token, world, mailbox, mailbox_kind=kind)
    if kind == "password":
        form["password"] = PASSWORD
    elif kind != "microsoft_app":
        location = start_sign_in(client, base, form)
        back = client.get(consent(location, mailbox))
        assert back.status_code == 303 and back.headers["Location"].startswith(f"{base}/address")
    tested = client.post(f"{base}/test", data=form, headers=HX).get_data(as_text=True)
    assert "Incoming: Success." in tested and "Outgoing: Success." in tested, tested
    if kind != "password":
        assert "Sign-in token: Success." in tested
    assert client.post(f"{base}/address", data=form).status_code == 303
    assert client.post(f"{base}/design", data={"csrf_token": token, "action": "next"}).status_code == 303
    assert client.post(f"{base}/review", data={"csrf_token": token}).status_code == 303
    from app.extensions import db

    return db.session.scalar(select(EmailAddress).where(EmailAddress.address == mailbox))


def _publish(client, token, address: EmailAddress) -> None:
    chosen = {"csrf_token": token, "comment": f"Connect {address.address}", "item": [f"address:{address.id}"]}
    confirm = client.post("/channels/publish/new", data=chosen, headers=HX).get_data(as_text=True)
    versions = dict(re.findall(r'name="(version-[a-z]+:\d+)" value="([^"]+)"', confirm))
    done = client.post("/channels/publish/confirm", data={**chosen, **versions}, headers=HX)
    assert done.status_code == 204, done.get_data(as_text=True)[:2000]
    assert published_address(address.id) is not None


def _receive_and_reply(db, world, address: EmailAddress, mailbox: str, author_id: int, kind: str) -> dict:
    """A customer's mail polled in, and the agent's reply delivered: returns what aiosmtpd received."""
    world.dovecot.append(mailbox, PASSWORD, [message(to=mailbox, subject=f"Order question ({kind})")])
    result = poll_address(address.id)
    assert result.error is None and result.fetched == 1, result.summary()
    db.session.expire_all()
    conversation = db.session.scalar(select(Conversation).where(Conversation.address_id == address.id))
    assert conversation is not None and conversation.subject == f"Order question ({kind})"
    received = len(world.smtp.messages)
    reply = send_reply(conversation.id, author_id, f"<p>Your order ships today ({kind}).</p>")
    db.session.commit()
    outcome = deliver_message(reply.id)
    assert outcome["sent"] == 1, outcome
    db.session.expire_all()
    assert db.session.get(Message, reply.id).delivery_status == "sent"
    got = world.smtp.messages[received:]
    assert len(got) == 1 and got[0]["rcpt_tos"] == ["carla@example.com"]
    assert f"Subject: Re: Order question ({kind})".encode() in got[0]["data"]
    return got[0]


@pytest.mark.parametrize("kind", ["google", "microsoft"])
def test_a_delegated_kind_signs_in_receives_and_sends_by_token(admin_client, db, oauth_world, kind):
    client, token, admin = admin_client
    domain = _create_domain(client, token, "acme.test")
    mailbox = oauth_world.new_mailbox()
    address = _wizard(client, token, oauth_world, domain, mailbox, kind)
    credential = db.session.scalar(select(OAuthCredential).where(OAuthCredential.address_id == address.id))
    assert (address.auth_method, address.oauth_provider, address.last_test_ok) == ("oauth", kind, True)
    assert credential.provider == kind and credential.subject == mailbox and credential.status == "active"
    assert credential.refresh_token_encrypted  # offline access: renewable without the admin
    wanted = "https://outlook.office.com/IMAP.AccessAsUser.All" if kind == "microsoft" else "https://mail.google.com/"
    assert wanted in credential.scope.split()
    _publish(client, token, address)

    sent = _receive_and_reply(db, oauth_world, address, mailbox, admin.id, kind)
    assert sent["login"] == mailbox  # aiosmtpd's AUTH XOAUTH2 accepted the token (introspected)
    assert "method=XOAUTH2" in (oauth_world.dovecot.base / "dovecot.log").read_text()


def test_a_microsoft_exchange_app_only_address_receives_and_sends_with_the_domains_app(admin_client, db, oauth_world):
    client, token, admin = admin_client
    mailbox = oauth_world.new_mailbox()
    app_id, secret, tenant = EXCHANGE
    oauth_world.idp.add_client(app_id, secret, grant_types=("client_credentials",), mailbox=mailbox, scope="mail")
    domain = _create_domain(client, token, "acme.test", domain_type="exchange", tenant_id=tenant, client_id=app_id,
                            client_secret=secret)
    assert domain.microsoft_exchange and secret.encode() not in domain.ms_app_client_secret_encrypted
    issued = len(oauth_world.idp.tokens)

    address = _wizard(client, token, oauth_world, domain, mailbox, "microsoft_app")
    assert (address.auth_method, address.oauth_provider, address.last_test_ok) == ("oauth", "microsoft_app", True)
    credential = db.session.scalar(select(OAuthCredential).where(OAuthCredential.address_id == address.id))
    assert credential.provider == "microsoft_app" and credential.subject == mailbox
    assert credential.refresh_token_encrypted is None  # no user signed in: client credentials only
    _publish(client, token, address)

    sent = _receive_and_reply(db, oauth_world, address, mailbox, admin.id, "microsoft_app")
    assert sent["login"] == mailbox
    apps = {t.client_id for t in oauth_world.idp.tokens[issued:]}
    assert apps == {app_id}  # every token came from the domain's app, none from the settings' one


def test_a_password_kind_address_receives_and_sends_with_its_password(admin_client, db, oauth_world):
    client, token, admin = admin_client
    mailbox = oauth_world.new_mailbox()
    oauth_world.smtp.users = {mailbox: PASSWORD}  # the same aiosmtpd, signing in by AUTH PLAIN/LOGIN too
    domain = _create_domain(client, token, "acme.test")
    address = _wizard(client, token, oauth_world, domain, mailbox, "password")
    assert (address.auth_method, address.last_test_ok) == ("password", True)
    assert PASSWORD.encode() not in address.password_encrypted
    _publish(client, token, address)

    sent = _receive_and_reply(db, oauth_world, address, mailbox, admin.id, "password")
    assert sent["login"] == mailbox
    assert db.session.scalar(select(OAuthCredential).where(OAuthCredential.address_id == address.id)) is None
