"""A real OAuth 2.0 authorization server on loopback for tests, built on authlib's server side.

It speaks what the mail providers speak, so the product's OAuth code runs against a real
server: the authorization-code grant with PKCE (S256, required) and a consent page with
Approve and Refuse buttons, refresh tokens (rotated on use, revocable), the
client-credentials grant (the "app-only" way Microsoft Exchange offers), token revocation
(RFC 7009) and token introspection (RFC 7662), which Dovecot's `oauth2` passdb and the
test SMTP server ask to check a token.

State lives in memory (dicts guarded by one lock). Tests steer it directly:
`access_lifetime` (seconds a new access token lives), `expire_access_tokens()`,
`revoke_refresh_tokens(user)`, and `introspections` (how often a token was checked).
A client-credentials client may be bound to one `mailbox` (the way an Exchange
application access policy limits an app to some mailboxes): introspection reports that
mailbox as the token's user name.
"""
from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from flask import Flask, request
from markupsafe import escape
from werkzeug.serving import WSGIRequestHandler, make_server

from tests.servers import free_port, wait_for_port

#: The scope the test mail servers require (like Google's https://mail.google.com/).
MAIL_SCOPE = "mail"


@dataclass
class Client:
    client_id: str
    client_secret: str
    redirect_uris: list[str] = field(default_factory=list)
    scope: str = MAIL_SCOPE
    grant_types: tuple[str, ...] = ("authorization_code", "refresh_token")
    mailbox: str | None = None  # client credentials: the one mailbox this app may open
    # Scopes a grant of any allowed scope carries too: a client in Google's or Microsoft's shape asks for
    # their mail scopes, and its tokens also hold the test mail servers' own "mail" scope.
    also_grants: str = ""

    def get_client_id(self):
        return self.client_id

    def get_default_redirect_uri(self):
        return self.redirect_uris[0] if self.redirect_uris else None

    def get_allowed_scope(self, scope):
        if any(s.endswith("/.default") for s in (scope or "").split()):
            return self.scope  # Microsoft's meaning: every permission an admin granted to the app
        allowed = set(self.scope.split())
        granted = [s for s in (scope or "").split() if s in allowed]
        if granted:
            granted += [s for s in self.also_grants.split() if s not in granted]
        return " ".join(granted)

    def check_redirect_uri(self, redirect_uri):
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret):
        return secrets.compare_digest(self.client_secret, client_secret or "")

    def check_endpoint_auth_method(self, method, endpoint):
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type):
        return response_type == "code" and "authorization_code" in self.grant_types

    def check_grant_type(self, grant_type):
        return grant_type in self.grant_types


@dataclass
class AuthorizationCode:
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: str
    code_challenge: str | None
    code_challenge_method: str | None
    created: float = field(default_factory=time.time)

    def get_redirect_uri(self):
        return self.redirect_uri

    def get_scope(self):
        return self.scope

    def get_nonce(self):
        return None

    def get_auth_time(self):
        return int(self.created)

    def is_expired(self):
        return time.time() - self.created > 300


@dataclass
class Token:
    client_id: str
    user: str | None
    scope: str
    access_token: str
    refresh_token: str | None
    expires_in: int
    issued_at: float = field(default_factory=time.time)
    access_revoked: bool = False
    refresh_revoked: bool = False

    def check_client(self, client):
        return client.client_id == self.client_id

    def get_scope(self):
        return self.scope

    def get_expires_in(self):
        return self.expires_in

    def expires_at(self) -> int:
        return int(self.issued_at + self.expires_in)

    def is_expired(self):
        return time.time() >= self.issued_at + self.expires_in

    def is_revoked(self):
        return self.access_revoked

    def get_user(self):
        return self.user

    def get_client(self):
        return None


CONSENT_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Test Identity Provider: consent</title></head>
<body><main>
<h1>Test Identity Provider</h1>
<p><strong>{client}</strong> asks to read and send mail ({scope}).</p>
<form method="post">
  <label for="mailbox">Mailbox</label>
  <input id="mailbox" name="mailbox" type="email" value="{mailbox}" required>
  <button type="submit" name="decision" value="approve">Approve</button>
  <button type="submit" name="decision" value="refuse">Refuse</button>
</form>
</main></body></html>
"""


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs) -> None:  # no access log on the test output
        pass


class OAuthServer:
    """The authorization server on a free loopback port, in a thread. `stop()` ends it."""

    def __init__(self, access_lifetime: int = 3600) -> None:
        self.access_lifetime = access_lifetime
        self.lock = threading.Lock()
        self.clients: dict[str, Client] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        self.tokens: list[Token] = []
        self.introspections = 0
        self.refreshes = 0
        self.port = free_port()
        self.app = self._make_app()
        self.httpd = make_server("127.0.0.1", self.port, self.app, threaded=True, request_handler=_QuietHandler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="oauth-server", daemon=True)
        self.thread.start()
        wait_for_port(self.port)

    # --- what tests use ---------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def authorization_url(self) -> str:
        return f"{self.base_url}/authorize"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/token"

    @property
    def introspection_url(self) -> str:
        return f"{self.base_url}/introspect"

    @property
    def revocation_url(self) -> str:
        return f"{self.base_url}/revoke"

    def add_client(self, client_id: str, client_secret: str, **kwargs) -> Client:
        client = Client(client_id, client_secret, **kwargs)
        with self.lock:
            self.clients[client_id] = client
        return client

    def issue(self, client_id: str, user: str | None, scope: str = MAIL_SCOPE, expires_in: int | None = None,
              refresh: bool = True) -> Token:
        """A token issued directly (as if the user had consented), for tests of the mail servers."""
        token = Token(client_id, user, scope, secrets.token_urlsafe(32),
                      secrets.token_urlsafe(40) if refresh else None,
                      self.access_lifetime if expires_in is None else expires_in)
        with self.lock:
            self.tokens.append(token)
        return token

    def expire_access_tokens(self) -> None:
        """Every access token issued so far expires now (refresh tokens stay valid)."""
        with self.lock:
            for token in self.tokens:
                token.expires_in = 0

    def revoke_refresh_tokens(self, user: str) -> None:
        """The user withdrew consent: their refresh tokens (and access tokens) stop working."""
        with self.lock:
            for token in self.tokens:
                if token.user == user:
                    token.refresh_revoked = token.access_revoked = True

    def active(self, access_token: str) -> Token | None:
        """The live token with this access token, or None (expired, revoked, unknown)."""
        with self.lock:
            self.introspections += 1
            for token in self.tokens:
                if token.access_token == access_token:
                    return None if token.is_expired() or token.is_revoked() else token
        return None

    def username(self, token: Token) -> str | None:
        if token.user:
            return token.user
        client = self.clients.get(token.client_id)
        return client.mailbox if client else None

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)

    # --- the server -------------------------------------------------------------------------

    def _make_app(self) -> Flask:
        outer = self
        app = Flask("test-oauth-server")
        app.config["SECRET_KEY"] = secrets.token_hex(16)

        def query_client(client_id):
            return outer.clients.get(client_id)

        def save_token(data, req):
            token = Token(req.client.client_id, req.user, data.get("scope", ""), data["access_token"],
                          data.get("refresh_token"), int(data.get("expires_in", 0)))
            with outer.lock:
                outer.tokens.append(token)

        server = AuthorizationServer(app, query_client=query_client, save_token=save_token)
        server.register_token_generator("default", BearerTokenGenerator(
            lambda **kw: secrets.token_urlsafe(32), lambda **kw: secrets.token_urlsafe(40),
            lambda client, grant_type: outer.access_lifetime))

        class CodeGrant(grants.AuthorizationCodeGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

            def save_authorization_code(self, code, req):
                with outer.lock:
                    outer.codes[code] = AuthorizationCode(
                        code, req.client.client_id, req.payload.redirect_uri, req.payload.scope or "", req.user,
                        req.payload.data.get("code_challenge"), req.payload.data.get("code_challenge_method"))

            def query_authorization_code(self, code, client):
                found = outer.codes.get(code)
                if found and found.client_id == client.client_id and not found.is_expired():
                    return found
                return None

            def delete_authorization_code(self, authorization_code):
                with outer.lock:
                    outer.codes.pop(authorization_code.code, None)

            def authenticate_user(self, authorization_code):
                return authorization_code.user

        class RefreshGrant(grants.RefreshTokenGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
            INCLUDE_NEW_REFRESH_TOKEN = True

            def authenticate_refresh_token(self, refresh_token):
                with outer.lock:
                    for token in outer.tokens:
                        if token.refresh_token == refresh_token and not token.refresh_revoked:
                            outer.refreshes += 1
                            return token
                return None

            def authenticate_user(self, credential):
                return credential.user

            def revoke_old_credential(self, credential):
                credential.refresh_revoked = True

        class Introspection(IntrospectionEndpoint):
            def query_token(self, token_string, token_type_hint):
                with outer.lock:
                    outer.introspections += 1
                    return next((t for t in outer.tokens if t.access_token == token_string), None)

            def introspect_token(self, token):
                return {"active": True, "client_id": token.client_id, "token_type": "Bearer",
                        "username": outer.username(token), "scope": token.scope,
                        "exp": token.expires_at(), "iat": int(token.issued_at)}

            def check_permission(self, token, client, req):
                return True  # any registered client (the mail servers are one) may introspect

        class Revocation(RevocationEndpoint):
            def query_token(self, token_string, token_type_hint):
                with outer.lock:
                    return next((t for t in outer.tokens
                                 if token_string in (t.access_token, t.refresh_token)), None)

            def revoke_token(self, token, req):
                token.refresh_revoked = token.access_revoked = True

        server.register_grant(CodeGrant, [CodeChallenge(required=True)])
        server.register_grant(RefreshGrant)
        class AppGrant(grants.ClientCredentialsGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

        server.register_grant(AppGrant)
        server.register_endpoint(Introspection)
        server.register_endpoint(Revocation)

        @app.route("/authorize", methods=["GET", "POST"])
        @app.route("/<tenant>/oauth2/v2.0/authorize", methods=["GET", "POST"])
        def authorize(tenant=None):
            grant = server.get_consent_grant(end_user=None)
            if request.method == "GET":
                return CONSENT_PAGE.format(client=escape(grant.client.client_id),
                                           scope=escape(grant.request.payload.scope or ""),
                                           mailbox=escape(request.args.get("login_hint", "")))
            if request.form.get("decision") != "approve":
                return server.create_authorization_response(grant=grant, grant_user=None)  # error=access_denied
            return server.create_authorization_response(grant=grant,
                                                        grant_user=request.form["mailbox"].strip().lower())

        @app.post("/token")
        @app.post("/<tenant>/oauth2/v2.0/token")  # Microsoft's shape (OAUTH_MICROSOFT_AUTHORITY points here)
        def token(tenant=None):
            return server.create_token_response()

        @app.post("/introspect")
        def introspect():
            return server.create_endpoint_response(IntrospectionEndpoint.ENDPOINT_NAME)

        @app.post("/revoke")
        def revoke():
            return server.create_endpoint_response(RevocationEndpoint.ENDPOINT_NAME)

        return app
