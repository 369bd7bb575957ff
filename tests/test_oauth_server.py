"""The test authorization server, driven by the product's own OAuth client (app.mail.oauth)."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from app.mail import oauth
from tests.oauth_server import OAuthServer

REDIRECT = "http://localhost/channels/oauth/callback"


@pytest.fixture(scope="module")
def idp():
    server = OAuthServer()
    server.add_client("pigeonhole", "s3cret", redirect_uris=[REDIRECT])
    server.add_client("mailservers", "ms-secret", grant_types=())
    yield server
    server.stop()


def _provider(idp) -> oauth.Provider:
    return oauth.providers({
        "OAUTH_GENERIC_AUTHORIZATION_URL": idp.authorization_url, "OAUTH_GENERIC_TOKEN_URL": idp.token_url,
        "OAUTH_GENERIC_CLIENT_ID": "pigeonhole", "OAUTH_GENERIC_CLIENT_SECRET": "s3cret",
        "OAUTH_GENERIC_SCOPE": "mail"})["generic"]


def _consent(url: str, decision: str) -> str:
    page = requests.get(url, timeout=10)
    assert page.status_code == 200 and '<label for="mailbox">Mailbox</label>' in page.text
    answer = requests.post(url, data={"mailbox": "help@acme.test", "decision": decision}, allow_redirects=False,
                           timeout=10)
    assert answer.status_code == 302
    return answer.headers["Location"]


def test_authorization_code_with_pkce_then_refresh_then_introspection(idp):
    provider = _provider(idp)
    verifier = oauth.new_code_verifier()
    url = oauth.authorization_url(provider, REDIRECT, "state-1", verifier, login_hint="help@acme.test")
    query = parse_qs(urlsplit(url).query)
    assert query["code_challenge_method"] == ["S256"] and query["login_hint"] == ["help@acme.test"]
    callback = _consent(url, "approve")

    tokens = oauth.exchange_code(provider, REDIRECT, callback, "state-1", verifier)
    assert tokens.refresh_token and tokens.scope == "mail"
    renewed = oauth.refresh(provider, tokens.refresh_token)
    assert renewed.access_token != tokens.access_token and renewed.refresh_token != tokens.refresh_token
    with pytest.raises(oauth.GrantRefused, match="invalid_grant"):
        oauth.refresh(provider, tokens.refresh_token)  # rotated: the old refresh token is spent

    def introspect(token, auth=("mailservers", "ms-secret")):
        return requests.post(idp.introspection_url, data={"token": token}, auth=auth, timeout=10)

    info = introspect(renewed.access_token).json()
    assert info["active"] is True and info["username"] == "help@acme.test" and info["scope"] == "mail"
    assert introspect(tokens.access_token).json()["active"] is True  # the old access token lives until it expires
    assert introspect(renewed.access_token, auth=("mailservers", "wrong")).status_code == 401
    assert introspect("no-such-token").json() == {"active": False}


def test_a_code_without_its_verifier_or_a_refused_consent_gets_no_token(idp):
    provider = _provider(idp)
    verifier = oauth.new_code_verifier()
    url = oauth.authorization_url(provider, REDIRECT, "state-2", verifier)
    callback = _consent(url, "approve")
    with pytest.raises(oauth.GrantRefused, match="invalid_grant"):
        oauth.exchange_code(provider, REDIRECT, callback, "state-2", oauth.new_code_verifier())

    refused = _consent(oauth.authorization_url(provider, REDIRECT, "state-3", verifier), "refuse")
    assert parse_qs(urlsplit(refused).query)["error"] == ["access_denied"]
    with pytest.raises(oauth.GrantRefused, match="consent was refused"):
        oauth.exchange_code(provider, REDIRECT, refused, "state-3", verifier)


def test_revoked_refresh_tokens_are_refused(idp):
    token = idp.issue("pigeonhole", "gone@acme.test")
    idp.revoke_refresh_tokens("gone@acme.test")
    with pytest.raises(oauth.GrantRefused, match="Sign in again"):
        oauth.refresh(_provider(idp), token.refresh_token)
