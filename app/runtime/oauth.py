"""The token source of OAuth 2.0 mailboxes: a valid access token whenever IMAP, POP3 or SMTP signs in.

`access_token(address_id)` returns the stored access token while it has more than
`OAUTH_REFRESH_MARGIN_SECONDS` to live; otherwise it gets a new one first: by the
refresh token (delegated sign-in: Google, Microsoft, a generic provider) or by the
client-credentials grant (app-only: Microsoft Exchange application permissions). The
requests themselves are authlib's (`app.mail.oauth`).

App-only credentials come from the address's domain when it is a "Microsoft Exchange"
domain (`Domain.ms_app_*`: its Tenant ID, Client ID and encrypted Client Secret), else
from the installation-wide `OAUTH_MICROSOFT_APP_*` settings (`app_provider()`). Changing a
domain's app forgets the tokens it gave (`forget_app_tokens()`), so the next sign-in asks
the new app.

States of a credential (`OAuthCredential.status`):

* **active**: tokens work, or can be renewed.
* **sign_in_needed**: the provider refused the refresh token (revoked, expired, the
  user withdrew consent, the client secret changed). Nothing is asked of the provider
  any more; every sign-in raises `SignInNeeded` at once, so polls back off and sends
  retry, and nothing is lost: signing in again (`store_tokens`) makes it active, and
  the next poll continues from the watermark. Admins see it in a banner and get one
  mail at once, and one more once signed in again (`app.runtime.oauth_alerts`).

A provider that cannot be reached (`TokenUnavailable`) changes nothing: the caller's
poll or send fails as a temporary error and is tried again.

Concurrency: several workers may want a new token for the same mailbox at once, and a
provider that rotates refresh tokens accepts each one only once. A Redis lock per
address lets one of them refresh while the others wait, then read what it stored.
The credential is read and written in a session of its own, committed at once, so a
renewal never rides along with (or is lost by a rollback of) the caller's transaction.
Tokens are encrypted at rest (app/crypto.py) and never logged.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.crypto import decrypt_secret, encrypt_secret
from app.extensions import db
from app.mail import oauth
from app.mail.sasl import XOAUTH2, TokenRejected
from app.models._types import utcnow
from app.models.channels import CredentialStatus, Domain, EmailAddress, OAuthCredential
from app.queues import redis_connection
from app.runtime.oauth_alerts import note_signed_in, tell_sign_in_needed

log = logging.getLogger(__name__)


class SignInNeeded(oauth.TokenError):
    """The mailbox's OAuth sign-in is gone (or never happened): an admin must sign in again."""


def provider(key: str | None) -> oauth.Provider:
    """The configured provider with this key. Raises `SignInNeeded` when it is unknown or not configured."""
    found = oauth.providers(current_app.config).get(key or "")
    if found is None or not found.configured:
        raise SignInNeeded(f"The OAuth provider {key!r} is not configured. Ask your administrator "
                           f"(docs/oauth.md lists its settings).")
    return found


def app_provider(domain: Domain | None) -> oauth.Provider:
    """The Microsoft Exchange app-only provider of a domain: its own app, else the `OAUTH_MICROSOFT_APP_*` settings."""
    if domain is not None and domain.microsoft_exchange:
        return oauth.microsoft_app_provider(
            oauth.microsoft_authority(current_app.config), domain.ms_app_tenant, domain.ms_app_client_id,
            decrypt_secret(domain.ms_app_client_secret_encrypted) or "",
            f"Check the Microsoft Exchange sign-in of the domain {domain.name} (Tenant ID, Client ID, Client Secret).")
    return oauth.providers(current_app.config)["microsoft_app"]


def provider_of_address(session: Session, address_id: int, key: str | None) -> oauth.Provider:
    """The configured provider an address's credential renews with (app-only: its domain's app, or the settings)."""
    if key == "microsoft_app":
        address = session.get(EmailAddress, address_id)
        found = app_provider(address.domain if address is not None else None)
        if not found.configured:
            raise SignInNeeded("Microsoft Exchange app-only sign-in is not set up: give the domain its Tenant ID, "
                               "Client ID and Client Secret (Channels › Email, the domain's Microsoft Exchange "
                               "sign-in), or set OAUTH_MICROSOFT_APP_*.")
        return found
    return provider(key)


def mechanism_of(provider_key: str | None) -> str:
    """The SASL mechanism a provider's tokens sign in with (XOAUTH2 unless its settings say OAUTHBEARER)."""
    found = oauth.providers(current_app.config).get(provider_key or "")
    return found.mechanism if found is not None else XOAUTH2


def sign_in_mechanism(address) -> str:
    """The SASL mechanism a `PublishedAddress` signs in with."""
    return mechanism_of(address.oauth_provider)


def access_token(address_id: int, rejected: str | None = None) -> str:
    """A valid access token for the address, renewed first if it expires within the margin.

    `rejected` is a token a mail server just refused although it had not expired by our
    clock (revoked at the provider, clocks apart): it is renewed unless another worker
    renewed it meanwhile. Raises `SignInNeeded` (an admin must sign in) or
    `oauth.TokenUnavailable` (try later). Admins are told once that a sign-in is needed
    (`app.runtime.oauth_alerts`).
    """
    try:
        return _access_token(address_id, rejected)
    except SignInNeeded:
        tell_sign_in_needed(address_id)  # once per episode: a no-op once told
        raise


def _access_token(address_id: int, rejected: str | None) -> str:
    margin = timedelta(seconds=current_app.config["OAUTH_REFRESH_MARGIN_SECONDS"])

    def usable(credential: OAuthCredential) -> str | None:
        if not _fresh(credential, margin):
            return None
        token = decrypt_secret(credential.access_token_encrypted)
        return None if token == rejected else token

    with Session(db.engine, expire_on_commit=False) as session:
        token = usable(_credential(session, address_id))
    if token:
        return token
    lock = redis_connection().lock(f"pigeonhole:oauth-refresh:{address_id}", timeout=120, blocking_timeout=60)
    with lock:
        with Session(db.engine, expire_on_commit=False) as session:
            credential = _credential(session, address_id)  # another worker may have renewed it meanwhile
            return usable(credential) or _renew(session, credential)


def sign_in(address, attempt: Callable[[str], None]) -> None:
    """Run `attempt(token)` (one protocol's token sign-in); when the server refuses a token that
    has not expired by our clock, renew it once and try again on the same connection."""
    token = access_token(address.id)
    try:
        attempt(token)
    except TokenRejected:
        attempt(access_token(address.id, rejected=token))


def _credential(session: Session, address_id: int) -> OAuthCredential:
    credential = session.scalar(select(OAuthCredential).where(OAuthCredential.address_id == address_id))
    if credential is None:
        raise SignInNeeded("Nobody has signed in to this mailbox yet. Sign in to connect it.")
    if credential.status == CredentialStatus.SIGN_IN_NEEDED.value:
        raise SignInNeeded(credential.status_message or "Sign-in needed: sign in to this mailbox again.")
    return credential


def _fresh(credential: OAuthCredential, margin: timedelta) -> bool:
    return (credential.access_token_encrypted is not None and credential.expires_at is not None
            and credential.expires_at - margin > datetime.now(timezone.utc))


def _renew(session: Session, credential: OAuthCredential) -> str:
    chosen = provider_of_address(session, credential.address_id, credential.provider)
    timeout = float(current_app.config["OAUTH_TIMEOUT_SECONDS"])
    try:
        if chosen.app_only:
            tokens = oauth.client_credentials(chosen, timeout=timeout)
        else:
            refresh_token = decrypt_secret(credential.refresh_token_encrypted)
            if not refresh_token:
                raise oauth.GrantRefused(f"{chosen.name} gave no refresh token (offline access). Sign in again.")
            tokens = oauth.refresh(chosen, refresh_token, timeout=timeout)
    except oauth.GrantRefused as exc:
        credential.status = CredentialStatus.SIGN_IN_NEEDED.value
        credential.status_message = str(exc)
        credential.updated_at = utcnow()
        session.commit()
        log.warning("OAuth sign-in of address %s needs an admin: %s", credential.address_id, exc)
        raise SignInNeeded(str(exc)) from None
    _write(credential, tokens)
    session.commit()
    log.info("renewed the OAuth access token of address %s (%s)", credential.address_id, chosen.key)
    return tokens.access_token


def _write(credential: OAuthCredential, tokens: oauth.TokenSet) -> None:
    credential.access_token_encrypted = encrypt_secret(tokens.access_token)
    if tokens.refresh_token:
        credential.refresh_token_encrypted = encrypt_secret(tokens.refresh_token)
    credential.expires_at = datetime.fromtimestamp(tokens.expires_at, timezone.utc)
    credential.scope = tokens.scope
    credential.status = CredentialStatus.ACTIVE.value
    credential.status_message = None
    credential.refreshed_at = credential.updated_at = utcnow()


def store_tokens(address_id: int, provider_key: str, tokens: oauth.TokenSet, subject: str | None = None) -> None:
    """Keep the tokens of a completed sign-in (the wizard's callback, app-only set-up) and mark it active.

    Runs in the caller's session (the caller commits): signing in is an admin's action.
    """
    credential = db.session.scalar(select(OAuthCredential).where(OAuthCredential.address_id == address_id))
    if credential is None:
        credential = OAuthCredential(address_id=address_id, provider=provider_key, scope="")
        db.session.add(credential)
    else:
        note_signed_in(credential, address_id)  # told it needed a sign-in: tell them it is signed in again
    credential.provider = provider_key
    credential.subject = subject
    if not tokens.refresh_token:
        credential.refresh_token_encrypted = None  # a new sign-in without offline access: no old refresh token
    _write(credential, tokens)
    db.session.flush()


def sign_in_app_only(address_id: int, provider_key: str, mailbox: str) -> oauth.TokenSet:
    """Connect an address through an app-only provider: ask for a first token now, so a bad secret shows at once.

    Raises `SignInNeeded` (provider not configured, or it refused the client) or `oauth.TokenUnavailable`.
    """
    chosen = provider_of_address(db.session, address_id, provider_key)
    if not chosen.app_only:
        raise ValueError(f"{provider_key} is not an app-only provider")
    try:
        tokens = oauth.client_credentials(chosen, timeout=float(current_app.config["OAUTH_TIMEOUT_SECONDS"]))
    except oauth.GrantRefused as exc:
        raise SignInNeeded(str(exc)) from None
    store_tokens(address_id, provider_key, tokens, subject=mailbox)
    return tokens


def connect_app_only(address_id: int, mailbox: str) -> None:
    """An address saved as Microsoft Exchange app-only: its credential row, without a token yet (the first
    sign-in asks for one by client credentials). Any earlier sign-in's tokens, and a "Sign-in needed" left
    by a refused app, are dropped. Caller commits."""
    credential = db.session.scalar(select(OAuthCredential).where(OAuthCredential.address_id == address_id))
    if credential is not None and credential.provider == "microsoft_app" and credential.subject == mailbox \
            and credential.status == CredentialStatus.ACTIVE.value:
        return  # unchanged: keep the token it has (saving again after a refusal re-arms it, below)
    if credential is None:
        credential = OAuthCredential(address_id=address_id, provider="microsoft_app", scope="")
        db.session.add(credential)
    credential.provider, credential.subject = "microsoft_app", mailbox
    _forget(credential)
    db.session.flush()


def forget_app_tokens(domain_id: int) -> int:
    """A domain's app changed: its app-only addresses drop their tokens (and a "Sign-in needed" the old app
    caused), so the next sign-in asks the new app. Returns how many. Runs in the caller's session."""
    rows = db.session.scalars(select(OAuthCredential).join(EmailAddress, EmailAddress.id == OAuthCredential.address_id)
                              .where(EmailAddress.domain_id == domain_id, OAuthCredential.provider == "microsoft_app"))
    count = 0
    for credential in rows:
        _forget(credential)
        count += 1
    db.session.flush()
    return count


def _forget(credential: OAuthCredential) -> None:
    credential.access_token_encrypted = credential.refresh_token_encrypted = credential.expires_at = None
    credential.scope = ""
    credential.status = CredentialStatus.ACTIVE.value
    credential.status_message = None
    credential.updated_at = utcnow()


def credential_status(address_id: int) -> OAuthCredential | None:
    """The address's credential row (for pages), or None."""
    return db.session.scalar(select(OAuthCredential).where(OAuthCredential.address_id == address_id))


def seconds_left(credential: OAuthCredential) -> float | None:
    """How long the stored access token lives on (negative once expired), or None when there is none."""
    if credential.expires_at is None:
        return None
    return credential.expires_at.timestamp() - time.time()
