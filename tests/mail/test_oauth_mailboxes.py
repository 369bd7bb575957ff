"""OAuth 2.0 mailboxes end to end: real tokens from a real authorization server, checked by Dovecot and aiosmtpd.

Each test has a mailbox of its own (Dovecot users are added on the fly). The test that
makes Dovecot refuse a token runs last: Dovecot delays later logins from an address
that just failed (auth penalty).
"""
from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from app.mail import oauth, probe
from app.mail.smtp import DeliveryError, SMTPSession
from app.models.channels import CredentialStatus, OAuthCredential
from app.models.inbox import Message
from app.runtime.netpolicy import mail_policy
from app.runtime.oauth import SignInNeeded, access_token, sign_in_app_only, store_tokens
from app.runtime.outbound import sending_address, transport_settings
from app.runtime.poll import poll_address
from app.runtime.tls import configured_context
from tests.mail.conftest import make_address, message
from tests.oauth_fixtures import APP_MAILBOX, CLIENT_ID, PASSWORD, oauth_app, oauth_world  # noqa: F401

def oauth_address(world, user, protocol="imap", provider="generic", usage="both"):
    port = world.dovecot.ports["imaps" if protocol == "imap" else "pop3s"]
    return make_address(user, "custom", usage=usage, username=user, auth_method="oauth", oauth_provider=provider,
                        incoming_protocol=protocol, incoming_host="127.0.0.1", incoming_port=port,
                        incoming_security="ssl", outgoing_host="127.0.0.1", outgoing_port=world.smtp.port,
                        outgoing_security="starttls")


def sign_in(db, world, address, user, scope="mail", expires_in=None):
    """What the wizard's callback does once consent is given: keep the provider's tokens."""
    token = world.idp.issue(CLIENT_ID, user, scope=scope, expires_in=expires_in)
    store_tokens(address.id, "generic", oauth.TokenSet(token.access_token, time.time() + token.expires_in,
                                                       token.refresh_token, scope), subject=user)
    db.session.commit()
    return token


def credential(db, address) -> OAuthCredential:
    db.session.expire_all()
    return db.session.scalar(select(OAuthCredential).where(OAuthCredential.address_id == address.id))


def stored_subjects(db, address) -> list[str]:
    db.session.expire_all()
    return sorted(db.session.scalars(select(Message.subject).where(Message.address_id == address.id)))


def test_imap_and_pop3_polls_sign_in_with_a_token(oauth_app, db, oauth_world):
    for protocol in ("imap", "pop3"):
        user = oauth_world.new_mailbox()
        address = oauth_address(oauth_world, user, protocol=protocol, usage="inbound")
        sign_in(db, oauth_world, address, user)
        oauth_world.dovecot.append(user, PASSWORD, [message(to=user, subject=f"{protocol} {i}") for i in range(2)])
        checked = oauth_world.idp.introspections

        result = poll_address(address.id)

        assert result.error is None and result.fetched == 2, result.summary()
        assert stored_subjects(db, address) == [f"{protocol} 0", f"{protocol} 1"]
        assert oauth_world.idp.introspections > checked  # Dovecot asked the authorization server
    log = (oauth_world.dovecot.base / "dovecot.log").read_text()
    assert "method=XOAUTH2" in log and "pop3-login: Info: Login" in log


def test_an_expired_token_is_renewed_between_polls_and_no_mail_is_lost_or_doubled(oauth_app, db, oauth_world):
    user = oauth_world.new_mailbox()
    address = oauth_address(oauth_world, user, usage="inbound")
    first = sign_in(db, oauth_world, address, user)
    oauth_world.dovecot.append(user, PASSWORD, [message(to=user, subject="before expiry")])
    assert poll_address(address.id).fetched == 1
    refreshes = oauth_world.idp.refreshes

    oauth_world.idp.expire_access_tokens()  # mid-run: the stored access token is dead now
    oauth_world.dovecot.append(user, PASSWORD, [message(to=user, subject=f"after expiry {i}") for i in range(2)])
    result = poll_address(address.id)

    assert result.error is None and result.fetched == 2, result.summary()
    assert oauth_world.idp.refreshes == refreshes + 1
    assert stored_subjects(db, address) == ["after expiry 0", "after expiry 1", "before expiry"]
    row = credential(db, address)
    assert row.status == CredentialStatus.ACTIVE.value and row.refreshed_at is not None
    assert first.refresh_token.encode() not in row.refresh_token_encrypted  # stored encrypted, and rotated
    assert oauth_world.idp.active(access_token(address.id)) is not None
    # The renewed token is good for a while: the next poll asks nothing of the provider.
    assert poll_address(address.id).fetched == 0 and oauth_world.idp.refreshes == refreshes + 1


def test_a_token_close_to_expiry_is_renewed_before_use(oauth_app, db, oauth_world):
    user = oauth_world.new_mailbox()
    address = oauth_address(oauth_world, user, usage="inbound")
    old = sign_in(db, oauth_world, address, user, expires_in=60)  # inside the 300 s margin
    token = access_token(address.id)
    assert token != old.access_token and oauth_world.idp.active(token) is not None
    assert access_token(address.id) == token  # fresh now: kept


def test_a_revoked_refresh_token_marks_the_address_sign_in_needed_and_signing_in_again_loses_nothing(
        oauth_app, db, oauth_world):
    user = oauth_world.new_mailbox()
    address = oauth_address(oauth_world, user, usage="inbound")
    sign_in(db, oauth_world, address, user)
    oauth_world.dovecot.append(user, PASSWORD, [message(to=user, subject="first")])
    assert poll_address(address.id).fetched == 1

    oauth_world.idp.revoke_refresh_tokens(user)  # the user withdrew consent at the provider
    oauth_world.idp.expire_access_tokens()
    oauth_world.dovecot.append(user, PASSWORD, [message(to=user, subject="while signed out")])
    result = poll_address(address.id)

    assert result.fetched == 0 and "Sign in again" in result.error
    row = credential(db, address)
    assert row.status == CredentialStatus.SIGN_IN_NEEDED.value and row.status_label == "Sign-in needed"
    assert "invalid_grant" in row.status_message
    refreshes = oauth_world.idp.refreshes
    with pytest.raises(SignInNeeded):
        access_token(address.id)
    assert oauth_world.idp.refreshes == refreshes  # a dead grant is not tried again and again

    sign_in(db, oauth_world, address, user)  # an admin signs in again
    result = poll_address(address.id)
    assert result.error is None and result.fetched == 1
    assert stored_subjects(db, address) == ["first", "while signed out"]
    assert credential(db, address).status == CredentialStatus.ACTIVE.value


def test_smtp_sends_with_a_token_and_a_new_connection_after_expiry_gets_a_renewed_one(oauth_app, db, oauth_world):
    user = oauth_world.new_mailbox()
    address = oauth_address(oauth_world, user, usage="outbound")
    sign_in(db, oauth_world, address, user)
    settings = transport_settings(sending_address(address.id))
    assert settings.mechanism == "XOAUTH2" and settings.password is None
    raw = f"From: {user}\r\nTo: carla@example.com\r\nSubject: hi\r\n\r\nhello\r\n".encode()
    received = len(oauth_world.smtp.messages)

    with SMTPSession(settings, context=configured_context()) as smtp:
        smtp.send(user, ["carla@example.com"], raw)
    oauth_world.idp.expire_access_tokens()
    with SMTPSession(transport_settings(sending_address(address.id)), context=configured_context()) as smtp:
        smtp.send(user, ["carla@example.com"], raw)

    got = oauth_world.smtp.messages[received:]
    assert [m["login"] for m in got] == [user, user]
    assert credential(db, address).refreshed_at is not None


def test_app_only_microsoft_signs_in_by_client_credentials_and_asks_again_when_expired(oauth_app, db, oauth_world):
    address = oauth_address(oauth_world, APP_MAILBOX, provider="microsoft_app", usage="inbound")
    tokens = sign_in_app_only(address.id, "microsoft_app", APP_MAILBOX)
    db.session.commit()
    assert tokens.refresh_token is None and "mail" in tokens.scope.split()
    oauth_world.dovecot.append(APP_MAILBOX, PASSWORD, [message(to=APP_MAILBOX, subject="to the app")])

    assert poll_address(address.id).fetched == 1
    oauth_world.idp.expire_access_tokens()
    oauth_world.dovecot.append(APP_MAILBOX, PASSWORD, [message(to=APP_MAILBOX, subject="after expiry")])
    assert poll_address(address.id).fetched == 1  # refused, a new client-credentials token, signed in
    token = access_token(address.id)
    assert token != tokens.access_token and oauth_world.idp.active(token) is not None


def test_a_wrong_app_secret_is_refused_with_words_for_the_admin(oauth_app, db, oauth_world):
    oauth_app.config["OAUTH_MICROSOFT_APP_CLIENT_SECRET"] = "not-the-secret"
    address = oauth_address(oauth_world, APP_MAILBOX, provider="microsoft_app", usage="inbound")
    with pytest.raises(SignInNeeded, match=r"Microsoft Exchange \(app-only\) refused .*invalid_client.*OAUTH_MICROSOFT_APP_TENANT"):
        sign_in_app_only(address.id, "microsoft_app", APP_MAILBOX)
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(OAuthCredential)) == 0


def test_test_connection_signs_in_with_a_token_on_every_side(oauth_app, db, oauth_world):
    user = oauth_world.new_mailbox()
    token = oauth_world.idp.issue(CLIENT_ID, user)
    dovecot = oauth_world.dovecot
    results = probe.probe(probe.ServerSettings("imap", "127.0.0.1", dovecot.ports["imaps"], "ssl"),
                          probe.ServerSettings("smtp", "127.0.0.1", oauth_world.smtp.port, "starttls"),
                          user, probe.Token(token.access_token), timeout=10, context=configured_context(),
                          policy=mail_policy())
    assert [r.ok for r in results] == [True, True], results
    assert "opened INBOX read-only" in results[0].message and "with a token" in results[1].message
    pop3 = probe.probe_incoming(probe.ServerSettings("pop3", "127.0.0.1", dovecot.ports["pop3s"], "ssl"), user,
                                probe.Token(token.access_token, "OAUTHBEARER"), 10, configured_context(),
                                policy=mail_policy())
    assert pop3.ok, pop3
    assert token.access_token not in repr(probe.Token(token.access_token))


def test_a_token_without_the_mail_scope_is_refused_with_a_clear_message(oauth_app, db, oauth_world):
    """Runs last in this module: Dovecot delays logins after a failure."""
    user = oauth_world.new_mailbox()
    address = oauth_address(oauth_world, user)
    sign_in(db, oauth_world, address, user, scope="profile")
    oauth_world.dovecot.append(user, PASSWORD, [message(to=user, subject="unreachable for now")])

    result = poll_address(address.id)
    assert result.fetched == 0
    assert "refused the sign-in token" in result.error and 'scope "mail"' in result.error
    assert "Authentication failed" in result.error  # and the server's own words

    with pytest.raises(DeliveryError) as refused, \
            SMTPSession(transport_settings(sending_address(address.id)), context=configured_context()) as smtp:
        smtp.send(user, ["carla@example.com"], b"Subject: x\r\n\r\nx\r\n")
    assert refused.value.temporary and 'scope "mail"' in str(refused.value)
    row = credential(db, address)
    assert row.access_token_encrypted and row.access_token_encrypted.decode() not in result.error

    refused = probe.probe_outgoing(probe.ServerSettings("smtp", "127.0.0.1", oauth_world.smtp.port, "starttls"),
                                   user, probe.Token(access_token(address.id)), 10, configured_context(),
                                   policy=mail_policy())
    assert refused.reason == "token_refused" and 'scope "mail"' in refused.detail
    assert refused.message.endswith("The server refused the sign-in token.")
