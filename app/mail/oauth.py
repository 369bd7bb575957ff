"""OAuth 2.0 providers for mailboxes, and the token requests made to them (authlib's client).

A provider is a set of endpoints, a client registration and the scopes mail needs.
Four exist, each filled from settings (`providers(config)`, README "OAuth 2.0 mailboxes"):

* `google`: Google Workspace and Gmail, delegated sign-in, scope `https://mail.google.com/`.
* `microsoft`: Microsoft 365, delegated sign-in; scopes `IMAP.AccessAsUser.All`,
  `POP.AccessAsUser.All`, `SMTP.Send` and `offline_access` (for a refresh token).
* `microsoft_app`: Microsoft Exchange app-only (Exchange application permissions): the
  client-credentials grant with tenant, client id and secret, scope
  `https://outlook.office365.com/.default`; no user signs in. `providers()` fills it from the
  installation-wide settings; a "Microsoft Exchange" domain has its own
  (`microsoft_app_provider()`, called by the runtime with the domain's values).
* `generic`: any RFC 6749 server, every endpoint a setting; tests use it against a
  real authorization server on loopback.

Token requests go through authlib's `OAuth2Session` (requests underneath): nothing
here writes a token endpoint call by hand. Failures are two kinds: `GrantRefused`
(the server answered `invalid_grant` and friends: the refresh token was revoked or
expired, the admin must sign in again) and `TokenUnavailable` (network, 5xx: try
later). No Flask and no database here: settings arrive as a mapping.
"""
from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import requests
from authlib.common.security import generate_token
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.requests_client import OAuth2Session

from app.mail.sasl import XOAUTH2

AUTHORIZATION_CODE = "authorization_code"
CLIENT_CREDENTIALS = "client_credentials"

#: OAuth error codes that mean "this grant is dead: sign in again" (RFC 6749 section 5.2).
DEAD_GRANT = {"invalid_grant", "invalid_client", "unauthorized_client", "access_denied", "invalid_scope"}

MICROSOFT_DELEGATED_SCOPE = ("https://outlook.office.com/IMAP.AccessAsUser.All "
                             "https://outlook.office.com/POP.AccessAsUser.All "
                             "https://outlook.office.com/SMTP.Send offline_access")


class TokenError(Exception):
    """A token could not be had; `str()` is written for an admin and never holds a secret."""


class GrantRefused(TokenError):
    """The provider refused the grant (revoked or expired refresh token, bad client): sign in again."""


class TokenUnavailable(TokenError):
    """The provider could not be reached or failed: a temporary problem, try later."""


@dataclass(frozen=True)
class Provider:
    """One OAuth 2.0 provider as configured."""

    key: str
    name: str  # for buttons: "Sign in with {name}"
    grant: str  # AUTHORIZATION_CODE (a user signs in) or CLIENT_CREDENTIALS (app-only)
    token_url: str
    client_id: str
    client_secret: str = field(repr=False, default="")
    scope: str = ""
    authorization_url: str = ""
    introspection_url: str = ""
    authorize_params: tuple[tuple[str, str], ...] = ()
    mechanism: str = XOAUTH2
    # App-only: where an admin fixes a refused client (the settings, or the domain's Microsoft Exchange sign-in).
    fix_hint: str = "Check its tenant, client id and secret settings."

    @property
    def configured(self) -> bool:
        needed = [self.token_url, self.client_id] + ([self.authorization_url] if self.grant == AUTHORIZATION_CODE
                                                     else [self.client_secret])
        return all(needed)

    @property
    def app_only(self) -> bool:
        return self.grant == CLIENT_CREDENTIALS


MICROSOFT_APP_NAME = "Microsoft Exchange (app-only)"


def microsoft_authority(config: Mapping) -> str:
    """The Microsoft identity platform's base URL (`OAUTH_MICROSOFT_AUTHORITY`; national clouds differ)."""
    return str(config.get("OAUTH_MICROSOFT_AUTHORITY") or "https://login.microsoftonline.com").strip().rstrip("/")


def microsoft_app_provider(authority: str, tenant: str, client_id: str, client_secret: str,
                           fix_hint: str | None = None) -> Provider:
    """Microsoft Exchange app-only: the client-credentials grant at `{authority}/{tenant}/oauth2/v2.0/token`."""
    tenant = (tenant or "").strip()
    return Provider("microsoft_app", MICROSOFT_APP_NAME, CLIENT_CREDENTIALS,
                    token_url=f"{authority}/{tenant}/oauth2/v2.0/token" if tenant else "",
                    client_id=(client_id or "").strip(), client_secret=client_secret or "",
                    scope="https://outlook.office365.com/.default",
                    **({"fix_hint": fix_hint} if fix_hint else {}))


def providers(config: Mapping) -> dict[str, Provider]:
    """Every provider, filled from settings (an app's config or any mapping). Unconfigured ones are included."""
    get = lambda name, default="": str(config.get(name) or default).strip()  # noqa: E731
    authority = microsoft_authority(config)
    tenant = get("OAUTH_MICROSOFT_TENANT", "common")
    return {
        "google": Provider(
            "google", "Google", AUTHORIZATION_CODE,
            token_url=get("OAUTH_GOOGLE_TOKEN_URL", "https://oauth2.googleapis.com/token"),
            authorization_url=get("OAUTH_GOOGLE_AUTHORIZATION_URL", "https://accounts.google.com/o/oauth2/v2/auth"),
            client_id=get("OAUTH_GOOGLE_CLIENT_ID"), client_secret=get("OAUTH_GOOGLE_CLIENT_SECRET"),
            scope="https://mail.google.com/",
            authorize_params=(("access_type", "offline"), ("prompt", "consent"))),
        "microsoft": Provider(
            "microsoft", "Microsoft", AUTHORIZATION_CODE,
            token_url=f"{authority}/{tenant}/oauth2/v2.0/token",
            authorization_url=f"{authority}/{tenant}/oauth2/v2.0/authorize",
            client_id=get("OAUTH_MICROSOFT_CLIENT_ID"), client_secret=get("OAUTH_MICROSOFT_CLIENT_SECRET"),
            scope=MICROSOFT_DELEGATED_SCOPE),
        "microsoft_app": microsoft_app_provider(
            authority, get("OAUTH_MICROSOFT_APP_TENANT"), get("OAUTH_MICROSOFT_APP_CLIENT_ID"),
            get("OAUTH_MICROSOFT_APP_CLIENT_SECRET"),
            "Check the OAUTH_MICROSOFT_APP_TENANT, _CLIENT_ID and _CLIENT_SECRET settings."),
        "generic": Provider(
            "generic", get("OAUTH_GENERIC_NAME", "your identity provider"),
            CLIENT_CREDENTIALS if get("OAUTH_GENERIC_GRANT") == CLIENT_CREDENTIALS else AUTHORIZATION_CODE,
            token_url=get("OAUTH_GENERIC_TOKEN_URL"), authorization_url=get("OAUTH_GENERIC_AUTHORIZATION_URL"),
            introspection_url=get("OAUTH_GENERIC_INTROSPECTION_URL"),
            client_id=get("OAUTH_GENERIC_CLIENT_ID"), client_secret=get("OAUTH_GENERIC_CLIENT_SECRET"),
            scope=get("OAUTH_GENERIC_SCOPE"), mechanism=get("OAUTH_GENERIC_SASL", XOAUTH2).upper()),
    }


@dataclass(frozen=True)
class TokenSet:
    """What a token endpoint answered, reduced to what a mailbox needs."""

    access_token: str = field(repr=False)
    expires_at: float  # Unix time
    refresh_token: str | None = field(repr=False, default=None)
    scope: str = ""


def _token_set(answer: Mapping, default_scope: str, now: float) -> TokenSet:
    expires_at = answer.get("expires_at") or (now + float(answer.get("expires_in") or 3600))
    return TokenSet(answer["access_token"], float(expires_at), answer.get("refresh_token"),
                    str(answer.get("scope") or default_scope))


def _session(provider: Provider, scoped: bool = True, **kwargs) -> OAuth2Session:
    return OAuth2Session(provider.client_id, provider.client_secret or None,
                         scope=(provider.scope or None) if scoped else None,
                         token_endpoint_auth_method="client_secret_post" if provider.client_secret else "none",
                         **kwargs)


def _request(provider: Provider, what: str, call) -> Mapping:
    try:
        return call()
    except AuthlibBaseError as exc:  # the server's OAuth error, or a callback without a code
        words = f"{exc.error}" + (f": {exc.description}" if exc.description else "")
        if exc.error in DEAD_GRANT:
            fix = provider.fix_hint if provider.app_only else "Sign in again."
            raise GrantRefused(f"{provider.name} refused to {what} ({words}). {fix}") from None
        raise TokenUnavailable(f"{provider.name} could not {what} ({words}).") from None
    except requests.RequestException as exc:
        raise TokenUnavailable(f"{provider.name} could not be reached to {what}: {type(exc).__name__}.") from None


def refresh(provider: Provider, refresh_token: str, timeout: float = 30.0) -> TokenSet:
    """A new access token from a refresh token (the grant may rotate the refresh token too)."""
    now = time.time()
    with _session(provider, scoped=False) as session:  # no scope: the grant's own (RFC 6749 section 6)
        answer = _request(provider, "renew the sign-in", lambda: session.refresh_token(
            provider.token_url, refresh_token=refresh_token, timeout=timeout))
    tokens = _token_set(answer, provider.scope, now)
    if tokens.refresh_token is None:  # not rotated: the old one stays valid
        tokens = TokenSet(tokens.access_token, tokens.expires_at, refresh_token, tokens.scope)
    return tokens


def client_credentials(provider: Provider, timeout: float = 30.0) -> TokenSet:
    """An app-only access token (client-credentials grant); there is no refresh token."""
    now = time.time()
    with _session(provider) as session:
        answer = _request(provider, "issue an app token", lambda: session.fetch_token(
            provider.token_url, grant_type=CLIENT_CREDENTIALS, timeout=timeout))
    return _token_set(answer, provider.scope, now)


def new_code_verifier() -> str:
    """A PKCE code verifier (RFC 7636: 43 to 128 unreserved characters)."""
    return generate_token(64)


def authorization_url(provider: Provider, redirect_uri: str, state: str, code_verifier: str,
                      login_hint: str | None = None) -> str:
    """Where to send the admin to sign in: the provider's consent page, with PKCE (S256)."""
    with _session(provider, redirect_uri=redirect_uri, code_challenge_method="S256") as session:
        extra = dict(provider.authorize_params)
        if login_hint:
            extra["login_hint"] = login_hint
        url, _ = session.create_authorization_url(provider.authorization_url, state=state,
                                                  code_verifier=code_verifier, **extra)
    return url


def exchange_code(provider: Provider, redirect_uri: str, callback_url: str, state: str, code_verifier: str,
                  timeout: float = 30.0) -> TokenSet:
    """Trade the callback's authorization code for tokens. The callback's `state` must match.

    Raises `GrantRefused` when consent was refused or the code is bad.
    """
    error = parse_qs(urlsplit(callback_url).query).get("error")
    if error:  # the provider sent the admin back without a code: consent refused, or a setup problem
        words = "consent was refused" if error[0] == "access_denied" else f"the sign-in failed ({error[0]})"
        raise GrantRefused(f"{provider.name}: {words}. Nothing was connected.")
    now = time.time()
    with _session(provider, redirect_uri=redirect_uri, state=state) as session:
        answer = _request(provider, "complete the sign-in", lambda: session.fetch_token(
            provider.token_url, authorization_response=callback_url, code_verifier=code_verifier, timeout=timeout))
    return _token_set(answer, provider.scope, now)


def missing_scopes(provider: Provider, granted: str) -> list[str]:
    """The scopes mail needs that the provider did not grant (Microsoft returns them by full name)."""
    wanted = [s for s in provider.scope.split() if s != "offline_access" and not s.endswith("/.default")]
    have = set(granted.split())
    return [s for s in wanted if s not in have]


def signed_in_mailbox(provider: Provider, access_token: str, timeout: float = 30.0) -> str | None:
    """Who signed in, as the provider's RFC 7662 introspection says (`username`), or None when it cannot tell.

    Only providers with an introspection URL (the generic one) answer this; for Google and
    Microsoft the mailbox is the one the admin named, and Test Connection proves it.
    """
    if not provider.introspection_url:
        return None
    with _session(provider, scoped=False) as session:
        try:
            answer = session.introspect_token(provider.introspection_url, token=access_token, timeout=timeout)
            answer.raise_for_status()
            info = answer.json()
        except (requests.RequestException, ValueError):
            return None
    username = info.get("username") if isinstance(info, dict) and info.get("active") else None
    return str(username).strip().lower() or None if username else None
