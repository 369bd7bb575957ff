"""The kinds of custom-domain mailbox, and the wizard's "Sign in with …" (OAuth 2.0 authorization code + PKCE).

Kinds: "IMAP/POP3 + SMTP with a password", Google Workspace / Gmail, Microsoft 365,
Microsoft Exchange (app-only) and, when configured, the generic provider
(`OAUTH_GENERIC_NAME`). A kind whose provider has no client registration is offered
disabled, with the setting that is missing.

Microsoft Exchange (app-only) has no sign-in: its tokens come from the client-credentials
grant of the domain's app (a "Microsoft Exchange" domain, `domains.set_microsoft_exchange`)
or of the `OAUTH_MICROSOFT_APP_*` settings, for the mailbox named by the user name (or the
address). Saving such an address gives it a credential without a token (`keep_tokens`); Test
Connection asks the app for a token first ("Sign-in token"), then tries the servers with it.

The sign-in keeps its state on the wizard's `AddressSetup` row, never in the cookie:

1. `begin_sign_in()` stores a random `state` (`oauth_state`) and the PKCE verifier
   (encrypted) and returns the provider's authorization URL;
2. the provider sends the admin back to `/channels/oauth/callback`; `finish_sign_in()`
   finds the wizard by its state (and its owner), checks age, exchanges the code, asks
   who signed in where the provider can say (RFC 7662 introspection), and keeps the
   tokens encrypted on the wizard;
3. saving the wizard (`keep_tokens()`, from `addresses.save_setup`) writes them to the
   address's `OAuthCredential`. When the wizard edits an address that already signs in
   with the same provider ("Sign in again"), the new tokens take effect at once, as tokens
   are live credentials (docs/oauth.md) and a mailbox waiting for them loses nothing.

A refused consent, an unknown or old state, or a failed exchange raise `SignInFailed`
and leave the wizard as it was before the attempt (earlier tokens included).
"""
from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import select

from app.channels.errors import ChannelError
from app.crypto import decrypt_secret, encrypt_secret
from app.extensions import db
from app.mail import oauth
from app.models._types import utcnow
from app.models.channels import AddressSetup, AuthMethod, EmailAddress, OAuthCredential
from app.runtime import oauth as token_source

PASSWORD = "password"

#: The documented servers of the big providers; the wizard fills them in, and they stay editable.
SERVER_PRESETS = {
    "google": {"incoming_protocol": "imap", "incoming_host": "imap.gmail.com", "incoming_port": 993,
               "incoming_security": "ssl", "outgoing_host": "smtp.gmail.com", "outgoing_port": 465,
               "outgoing_security": "ssl"},
    "microsoft": {"incoming_protocol": "imap", "incoming_host": "outlook.office365.com", "incoming_port": 993,
                  "incoming_security": "ssl", "outgoing_host": "smtp.office365.com", "outgoing_port": 587,
                  "outgoing_security": "starttls"},
}
SERVER_PRESETS["microsoft_app"] = SERVER_PRESETS["microsoft"]

#: The app-only kind: Microsoft Exchange with the domain's (or the settings') app, no user sign-in.
APP_ONLY = "microsoft_app"

#: The setting without which a provider cannot be offered.
REQUIRED_SETTING = {"google": "OAUTH_GOOGLE_CLIENT_ID", "microsoft": "OAUTH_MICROSOFT_CLIENT_ID",
                    "generic": "OAUTH_GENERIC_CLIENT_ID"}

#: How long a "Sign in with …" may take between the click and the provider's answer.
SIGN_IN_MAX_AGE = timedelta(minutes=15)


class SignInFailed(ChannelError):
    """The sign-in did not complete; `setup_id` is the wizard to try again from (None when unknown)."""

    def __init__(self, message: str, setup_id: str | None = None) -> None:
        super().__init__(message)
        self.setup_id = setup_id


@dataclass(frozen=True)
class MailboxKind:
    key: str  # "password" or a provider key
    label: str
    provider_name: str | None  # for "Sign in with …"
    missing: str | None  # why it cannot be chosen (a setting is missing), or None
    app_only: bool = False  # no user signs in (Microsoft Exchange app-only)


def _providers() -> dict[str, oauth.Provider]:
    return oauth.providers(current_app.config)


def mailbox_kinds(domain=None) -> list[MailboxKind]:
    """The kinds the wizard offers on a domain, in order; the generic provider only when some of its settings
    exist. Microsoft Exchange (app-only) is available on a Microsoft Exchange domain or with the settings."""
    found = _providers()
    kinds = [MailboxKind(PASSWORD, "IMAP/POP3 + SMTP with a password", None, None)]
    labels = {"google": "Google Workspace / Gmail", "microsoft": "Microsoft 365"}
    generic = found["generic"]
    if current_app.config.get("OAUTH_GENERIC_NAME") or generic.client_id or generic.authorization_url:
        labels["generic"] = generic.name
    for key, label in labels.items():
        provider = found[key]
        missing = None
        if not provider.configured:
            setting = REQUIRED_SETTING[key] if not provider.client_id else \
                ("OAUTH_GENERIC_AUTHORIZATION_URL and OAUTH_GENERIC_TOKEN_URL" if key == "generic" else "its URLs")
            missing = f"Not available: the setting {setting} is not set (docs/oauth.md tells how to register)."
        kinds.append(MailboxKind(key, label, provider.name, missing))
        if key == "microsoft":
            app = token_source.app_provider(domain)
            kinds.append(MailboxKind(APP_ONLY, oauth.MICROSOFT_APP_NAME, app.name, None if app.configured else (
                "Not available: give the domain its Microsoft Exchange sign-in (Tenant ID, Client ID, Client Secret; "
                "the domain's menu on Channels › Email), or set OAUTH_MICROSOFT_APP_TENANT, _CLIENT_ID and "
                "_CLIENT_SECRET (docs/oauth.md)."), app_only=True))
    return kinds


def kind_of(values: dict) -> str:
    """The wizard's kind of mailbox from its values."""
    if values.get("auth_method") == AuthMethod.OAUTH.value and values.get("oauth_provider"):
        return values["oauth_provider"]
    return PASSWORD


def usable_provider(key: str, domain=None) -> oauth.Provider:
    """A configured provider of a kind the domain offers (app-only: the domain's app), or `ChannelError`
    on the kind field."""
    kind = next((k for k in mailbox_kinds(domain) if k.key == key), None)
    provider = token_source.app_provider(domain) if key == APP_ONLY else _providers().get(key)
    if provider is None or kind is None or (provider.app_only and not kind.app_only):
        raise ChannelError("Choose one of the kinds of mailbox offered.", "mailbox_kind")
    if kind.missing:
        raise ChannelError(kind.missing, "mailbox_kind")
    return provider


def mailbox_of(values: dict) -> str:
    """The mailbox an app-only token opens: the user name, else the address (lower-cased)."""
    return login_of(values).lower()


def login_of(values: dict) -> str:
    return (values.get("username") or values.get("address") or "").strip()


# --- the sign-in -------------------------------------------------------------------------------

def begin_sign_in(setup: AddressSetup, redirect_uri: str) -> str:
    """Start "Sign in with …" for the wizard's (saved) kind; returns the provider's URL to send the admin to."""
    values = setup.values or {}
    provider = usable_provider(kind_of(values), setup.domain)
    if provider.app_only:
        raise ChannelError(f"{provider.name} needs no sign-in: its tokens come from the domain's app. Use Test "
                           "Connection to check it.", "mailbox_kind")
    state = secrets.token_urlsafe(30)
    verifier = oauth.new_code_verifier()
    record = dict(setup.oauth_sign_in or {})
    record.update(provider=provider.key, verifier=encrypt_secret(verifier).decode("ascii"),
                  started_at=utcnow().isoformat())
    setup.oauth_state = state
    setup.oauth_sign_in = record
    setup.updated_at = utcnow()
    db.session.flush()
    return oauth.authorization_url(provider, redirect_uri, state, verifier, login_hint=login_of(values) or None)


def _abandon(setup: AddressSetup) -> None:
    """Forget the attempt under way; what an earlier sign-in gave stays."""
    record = {k: v for k, v in (setup.oauth_sign_in or {}).items() if k not in ("verifier", "started_at")}
    if "tokens" not in record:
        record.pop("provider", None)
    setup.oauth_state = None
    setup.oauth_sign_in = record or None
    db.session.flush()


def finish_sign_in(user_id: int, args: dict, callback_url: str, redirect_uri: str) -> AddressSetup:
    """The provider's answer at the callback: keep the tokens on the wizard and return it.

    Raises `SignInFailed` (consent refused, unknown or old state, failed exchange); the
    wizard then holds what it held before the attempt. The caller commits either way.
    """
    state = (args.get("state") or "").strip()
    setup = db.session.scalar(select(AddressSetup).where(AddressSetup.oauth_state == state,
                                                         AddressSetup.user_id == user_id)) if state else None
    if setup is None:
        raise SignInFailed("This sign-in is not one this wizard started, or it was already used. Nothing was "
                           "connected. Open the address's wizard and sign in again.")
    record = setup.oauth_sign_in or {}
    started = datetime.fromisoformat(record.get("started_at") or "2000-01-01T00:00:00+00:00")
    provider = _providers().get(record.get("provider") or "")
    verifier = decrypt_secret(record.get("verifier", "").encode("ascii") or None)
    if started < utcnow() - SIGN_IN_MAX_AGE or provider is None or not verifier:
        _abandon(setup)
        raise SignInFailed("This sign-in took too long and has expired. Nothing was connected.", setup.token)
    timeout = float(current_app.config["OAUTH_TIMEOUT_SECONDS"])
    try:
        tokens = oauth.exchange_code(provider, redirect_uri, callback_url, state, verifier, timeout=timeout)
    except oauth.TokenError as exc:
        _abandon(setup)
        raise SignInFailed(str(exc), setup.token) from None
    missing = oauth.missing_scopes(provider, tokens.scope)
    if missing:
        _abandon(setup)
        raise SignInFailed(f"{provider.name} did not grant what mail needs ({', '.join(missing)}). Nothing was "
                           "connected. Sign in again and accept every permission asked for.", setup.token)
    subject = oauth.signed_in_mailbox(provider, tokens.access_token, timeout=timeout) \
        or login_of(setup.values or {}).lower() or None
    _keep_on_setup(setup, provider.key, tokens, subject)
    setup.oauth_state = None
    if setup.address is not None and setup.address.auth_method == AuthMethod.OAUTH.value \
            and setup.address.oauth_provider == provider.key:
        token_source.store_tokens(setup.address.id, provider.key, tokens, subject=subject)  # "Sign in again"
    setup.updated_at = utcnow()
    db.session.flush()
    return setup


def _keep_on_setup(setup: AddressSetup, provider_key: str, tokens: oauth.TokenSet, subject: str | None) -> None:
    plain = json.dumps({"access_token": tokens.access_token, "refresh_token": tokens.refresh_token,
                        "expires_at": tokens.expires_at, "scope": tokens.scope})
    setup.oauth_sign_in = {"provider": provider_key, "subject": subject,
                           "tokens": encrypt_secret(plain).decode("ascii")}


def pending_tokens(setup: AddressSetup) -> tuple[str, oauth.TokenSet, str | None] | None:
    """(provider key, tokens, signed-in mailbox) of a sign-in done in this wizard and not saved yet."""
    record = setup.oauth_sign_in or {}
    if not record.get("tokens"):
        return None
    data = json.loads(decrypt_secret(record["tokens"].encode("ascii")) or "{}")
    tokens = oauth.TokenSet(data["access_token"], float(data["expires_at"]), data.get("refresh_token"),
                            data.get("scope") or "")
    return record["provider"], tokens, record.get("subject")


def signed_in_as(setup: AddressSetup, provider_key: str) -> tuple[str | None, object] | None:
    """What the wizard shows for a provider: (mailbox, credential or None) when signed in, else None."""
    pending = pending_tokens(setup)
    if pending is not None and pending[0] == provider_key:
        return pending[2], None
    if setup.address_id is not None:
        credential = token_source.credential_status(setup.address_id)
        if credential is not None and credential.provider == provider_key:
            return credential.subject, credential
    return None


def fresh_access_token(setup: AddressSetup, provider_key: str) -> str:
    """An access token for Test Connection: this wizard's sign-in (renewed if it lapsed), else the address's.

    App-only: a new token from the domain's app (client credentials), so a wrong secret shows here.
    Raises `oauth.TokenError` (`token_source.SignInNeeded` when nobody signed in).
    """
    if provider_key == APP_ONLY:
        return oauth.client_credentials(usable_provider(APP_ONLY, setup.domain),
                                        timeout=float(current_app.config["OAUTH_TIMEOUT_SECONDS"])).access_token
    pending = pending_tokens(setup)
    if pending is not None and pending[0] == provider_key:
        _, tokens, subject = pending
        if tokens.expires_at - time.time() > 60:
            return tokens.access_token
        if not tokens.refresh_token:
            raise token_source.SignInNeeded("The sign-in of this wizard has expired. Sign in again.")
        tokens = oauth.refresh(token_source.provider(provider_key), tokens.refresh_token,
                               timeout=float(current_app.config["OAUTH_TIMEOUT_SECONDS"]))
        _keep_on_setup(setup, provider_key, tokens, subject)
        return tokens.access_token
    credential = token_source.credential_status(setup.address_id) if setup.address_id is not None else None
    if credential is None or credential.provider != provider_key:
        raise token_source.SignInNeeded(f"Sign in with {token_source.provider(provider_key).name} first.")
    return token_source.access_token(setup.address_id)


def keep_tokens(setup: AddressSetup, address: EmailAddress) -> None:
    """Saving the wizard: the sign-in done in it becomes the address's credential (for an OAuth address);
    an app-only address gets its credential, to be filled by client credentials at the first sign-in."""
    if address.auth_method == AuthMethod.OAUTH.value and address.oauth_provider == APP_ONLY:
        token_source.connect_app_only(address.id, mailbox_of({"username": address.username,
                                                              "address": address.address}))
        return
    pending = pending_tokens(setup)
    if pending is not None and address.auth_method == AuthMethod.OAUTH.value and pending[0] == address.oauth_provider:
        token_source.store_tokens(address.id, pending[0], pending[1], subject=pending[2])


def has_sign_in(setup: AddressSetup, provider_key: str) -> bool:
    """True when the wizard, or the address it edits, is signed in with this provider (app-only: always)."""
    if provider_key == APP_ONLY:
        return True
    found = signed_in_as(setup, provider_key)
    return found is not None


def credentials(address_ids: list[int]) -> dict[int, OAuthCredential]:
    """The OAuth credentials of these addresses (for the address list's "Sign-in needed"), by address id."""
    if not address_ids:
        return {}
    rows = db.session.scalars(select(OAuthCredential).where(OAuthCredential.address_id.in_(address_ids)))
    return {row.address_id: row for row in rows}


def provider_origins() -> tuple[str, ...]:
    """The origins of the configured consent pages: a form that signs in is redirected there, and the
    pages' Content-Security-Policy `form-action` must allow it (browsers check redirects too)."""
    origins = []
    for provider in _providers().values():
        if provider.configured and provider.authorization_url:
            parts = urlsplit(provider.authorization_url)
            origin = f"{parts.scheme}://{parts.netloc}"
            if origin not in origins:
                origins.append(origin)
    return tuple(origins)
