"""OAuth 2.0 test world: an authorization server, a Dovecot and an SMTP server that check its tokens.

`oauth_world` (module scope) starts them once per test module:

* the authorization server (tests/oauth_server.py) with three clients: `pigeonhole`
  (the product: authorization code + PKCE, refresh tokens), `mailservers` (what Dovecot
  and the SMTP server introspect with) and `exchange-app` (client credentials, bound to
  the mailbox `APP_MAILBOX`, like an Exchange app with an application access policy);
* a Dovecot with the `oauth2` passdb (XOAUTH2, OAUTHBEARER) beside passwords;
* an aiosmtpd SMTP server with STARTTLS and AUTH XOAUTH2.

`oauth_app` points the app's generic and Microsoft app-only provider settings at it.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.oauth_server import OAuthServer
from tests.servers import DovecotServer, SMTPServer

MAILBOX = "help@acme.test"
APP_MAILBOX = "orders@acme.test"
PASSWORD = "mailbox-pw"  # the test's own way to put mail in (APPEND); Pigeonhole signs in with tokens
CLIENT_ID, CLIENT_SECRET = "pigeonhole", "pigeonhole-secret"
APP_CLIENT_ID, APP_CLIENT_SECRET = "exchange-app", "exchange-app-secret"
REDIRECT_URI = "http://localhost/channels/oauth/callback"


#: Mailboxes made at start (Dovecot re-reads its passwd-file only when its time stamp changes,
#: so users added within the same second after a login may stay unknown).
SPARE_MAILBOXES = 20


@dataclass
class OAuthWorld:
    idp: OAuthServer
    dovecot: DovecotServer
    smtp: SMTPServer
    ca_file: Path
    spare: list[str]

    def new_mailbox(self) -> str:
        """A mailbox no test has used yet (its password is PASSWORD)."""
        return self.spare.pop(0)


@pytest.fixture(scope="module")
def oauth_world(tmp_path_factory):
    idp = OAuthServer()
    idp.add_client(CLIENT_ID, CLIENT_SECRET, redirect_uris=[REDIRECT_URI], scope="mail profile")
    idp.add_client("mailservers", "mailservers-secret", grant_types=())
    idp.add_client(APP_CLIENT_ID, APP_CLIENT_SECRET, grant_types=("client_credentials",), mailbox=APP_MAILBOX,
                   scope="mail")
    introspection = f"http://mailservers:mailservers-secret@127.0.0.1:{idp.port}/introspect"
    dovecot = DovecotServer(oauth_introspection_url=introspection)
    spare = [f"desk{n}@acme.test" for n in range(1, SPARE_MAILBOXES + 1)]
    for user in (MAILBOX, APP_MAILBOX, *spare):
        dovecot.add_user(user, PASSWORD)
    base = tmp_path_factory.mktemp("oauth-smtp")
    (base / "tls").mkdir()
    for path in (dovecot.cert, dovecot.key):  # one certificate for both servers
        (base / "tls" / path.name).write_bytes(path.read_bytes())
    smtp = SMTPServer(base, tls="starttls", oauth=(idp.introspection_url, "mailservers", "mailservers-secret"))
    yield OAuthWorld(idp, dovecot, smtp, dovecot.cert, spare)
    stopping = threading.Thread(target=dovecot.stop, name="stop-oauth-dovecot")
    stopping.start()
    smtp.stop()
    idp.stop()
    stopping.join(30)


@pytest.fixture
def oauth_app(app, oauth_world):
    idp = oauth_world.idp
    app.config.update({
        "MAIL_TLS_CA_FILE": str(oauth_world.ca_file),
        "OAUTH_GENERIC_NAME": "Test Identity Provider",
        "OAUTH_GENERIC_AUTHORIZATION_URL": idp.authorization_url,
        "OAUTH_GENERIC_TOKEN_URL": idp.token_url,
        "OAUTH_GENERIC_INTROSPECTION_URL": idp.introspection_url,
        "OAUTH_GENERIC_CLIENT_ID": CLIENT_ID,
        "OAUTH_GENERIC_CLIENT_SECRET": CLIENT_SECRET,
        "OAUTH_GENERIC_SCOPE": "mail",
        "OAUTH_MICROSOFT_AUTHORITY": idp.base_url,
        "OAUTH_MICROSOFT_APP_TENANT": "acme-tenant",
        "OAUTH_MICROSOFT_APP_CLIENT_ID": APP_CLIENT_ID,
        "OAUTH_MICROSOFT_APP_CLIENT_SECRET": APP_CLIENT_SECRET,
        "MAILBOX_BACKFILL": "7",
    })
    return app
