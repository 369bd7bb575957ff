"""SASL initial responses, the words for a refused token, and providers read from settings."""
from __future__ import annotations

import base64

import pytest

from app.mail import oauth, sasl


def test_xoauth2_and_oauthbearer_initial_responses_are_byte_exact():
    assert sasl.initial_response("XOAUTH2", "help@acme.test", "tok") == b"user=help@acme.test\x01auth=Bearer tok\x01\x01"
    # RFC 7628 section 3.1: GS2 header with the authzid ("," and "=" escaped), then key-values.
    assert sasl.initial_response("OAUTHBEARER", "a,b=c@x", "tok", host="imap.x", port=993) == \
        b"n,a=a=2Cb=3Dc@x,\x01host=imap.x\x01port=993\x01auth=Bearer tok\x01\x01"
    with pytest.raises(ValueError):
        sasl.initial_response("PLAIN", "u", "t")


def test_the_exchange_answers_an_error_challenge_with_the_empty_response_and_keeps_the_error():
    exchange = sasl.SaslExchange("XOAUTH2", "u@x", "tok")
    assert exchange(b"") == b"user=u@x\x01auth=Bearer tok\x01\x01"
    assert exchange(b'{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}') == b""
    assert exchange.error["scope"] == "https://mail.google.com/"
    bearer = sasl.SaslExchange("OAUTHBEARER", "u@x", "tok")
    bearer(b"")
    assert bearer(b'{"status":"invalid_token"}') == b"\x01"  # RFC 7628 section 3.2.3


def test_a_refusal_is_explained_without_the_token():
    text = sasl.refusal({"status": "401", "scope": "mail"}, "NO [AUTHENTICATIONFAILED] Authentication failed.")
    assert text.startswith("The mail server refused the sign-in token (it is expired, revoked")
    assert 'scope "mail"' in text and "AUTHENTICATIONFAILED" in text
    assert "permission" in sasl.refusal({"status": "insufficient_scope"})
    assert sasl._decode_challenge(base64.b64encode(b"not json")) == {"message": "not json"}


def test_providers_come_from_settings():
    found = oauth.providers({
        "OAUTH_GOOGLE_CLIENT_ID": "g-id", "OAUTH_GOOGLE_CLIENT_SECRET": "g-secret",
        "OAUTH_MICROSOFT_CLIENT_ID": "m-id", "OAUTH_MICROSOFT_TENANT": "contoso.onmicrosoft.com",
        "OAUTH_MICROSOFT_APP_TENANT": "tenant-guid", "OAUTH_MICROSOFT_APP_CLIENT_ID": "app-id",
        "OAUTH_MICROSOFT_APP_CLIENT_SECRET": "app-secret",
        "OAUTH_GENERIC_TOKEN_URL": "https://idp.example/token", "OAUTH_GENERIC_CLIENT_ID": "x",
        "OAUTH_GENERIC_SASL": "oauthbearer",
    })
    google, microsoft, app_only, generic = (found[k] for k in ("google", "microsoft", "microsoft_app", "generic"))
    assert google.configured and google.scope == "https://mail.google.com/" and not google.app_only
    assert ("access_type", "offline") in google.authorize_params
    assert microsoft.configured and microsoft.authorization_url == \
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/authorize"
    assert {"https://outlook.office.com/IMAP.AccessAsUser.All", "https://outlook.office.com/POP.AccessAsUser.All",
            "https://outlook.office.com/SMTP.Send", "offline_access"} == set(microsoft.scope.split())
    assert app_only.app_only and app_only.configured
    assert app_only.token_url == "https://login.microsoftonline.com/tenant-guid/oauth2/v2.0/token"
    assert app_only.scope == "https://outlook.office365.com/.default"
    assert not generic.configured  # no authorization URL for a sign-in provider
    assert generic.mechanism == "OAUTHBEARER"
    assert "app-secret" not in repr(app_only)
    assert not oauth.providers({})["microsoft_app"].configured


def test_missing_scopes_ignores_offline_access_and_default():
    microsoft = oauth.providers({})["microsoft"]
    assert oauth.missing_scopes(microsoft, microsoft.scope.replace(" offline_access", "")) == []
    assert oauth.missing_scopes(microsoft, "https://outlook.office.com/SMTP.Send") == [
        "https://outlook.office.com/IMAP.AccessAsUser.All", "https://outlook.office.com/POP.AccessAsUser.All"]
