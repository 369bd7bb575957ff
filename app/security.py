"""Security headers on every response, the login manager's settings, and role checks.

Who is signed in (the session store behind Flask-Login's user loader) is `app.auth.sessions`.

Our pages need no inline script or style: the Content-Security-Policy allows only
our own static files (`Policy`, which pages extend). `restrict_blueprint` makes an area
admin (or supervisor) only: 403 to anyone below.
"""
from __future__ import annotations

from flask import Flask, abort, has_request_context, request
from flask.sessions import SecureCookieSessionInterface
from flask_login import current_user

from app.extensions import login
from app.models.auth import Role


class Policy:
    """A Content-Security-Policy as directives and their sources; pages extend the site's one.

    `CSP.extend(img_src=("http:", "https:"))` is the site's policy with those sources added
    to `img-src` (a directive it lacks is added); `str(policy)` is the header value.
    """

    def __init__(self, directives: dict[str, tuple[str, ...]]) -> None:
        self.directives = {name: tuple(sources) for name, sources in directives.items()}
        self._text = "; ".join(" ".join((name, *sources)) for name, sources in self.directives.items())

    def extend(self, **sources: tuple[str, ...]) -> Policy:
        """A new policy: each keyword (`style_src_attr` for `style-src-attr`) adds its sources."""
        directives = dict(self.directives)
        for key, extra in sources.items():
            name = key.replace("_", "-")
            directives[name] = directives.get(name, ()) + tuple(s for s in extra if s not in directives.get(name, ()))
        return Policy(directives)

    def __str__(self) -> str:
        return self._text


#: The site's policy: our own scripts, styles, images and frames only.
CSP = Policy({
    "default-src": ("'self'",), "script-src": ("'self'",), "style-src": ("'self'",),
    "img-src": ("'self'", "data:"), "font-src": ("'self'",), "connect-src": ("'self'",),
    "frame-src": ("'self'",), "object-src": ("'none'",), "base-uri": ("'self'",),
    "form-action": ("'self'",), "frame-ancestors": ("'none'",),
})

#: What our frames of mail HTML (the address Preview, the Outbox's HTML part) may load: inline styles and
#: data: images; no scripts, forms, or anything else. Each caller extends it with what it needs.
MAIL_FRAME_CSP = Policy({"default-src": ("'none'",), "style-src": ("'unsafe-inline'",), "img-src": ("data:",)})

PUBLIC_ENDPOINTS = {"auth.login", "auth.reset_password", "ops.healthz", "metrics.scrape", "static"}


def restrict_blueprint(bp, role: Role, public: tuple[str, ...] = ()) -> None:
    """Every route of `bp` (but the endpoints in `public`) for users whose role is at least `role`.

    The one admin (or supervisor) guard of an area: signed out, the sign-in page; below the
    role, 403.
    """

    @bp.before_request
    def _guard():
        if request.endpoint in public:
            return None
        if not current_user.is_authenticated:
            return login.unauthorized()
        if not current_user.has_role(role):
            abort(403)
        return None


def init_app(app: Flask) -> None:
    login.login_view = "auth.login"
    login.login_message = "Please sign in to continue."
    login.login_message_category = "info"
    login.session_protection = "strong"

    if app.config.get("TRUSTED_PROXIES"):
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)

    @app.before_request
    def _login_everywhere():
        # Default deny: every endpoint needs a signed-in user unless it is listed here.
        if request.endpoint in PUBLIC_ENDPOINTS or request.method == "OPTIONS":
            return None
        if not current_user.is_authenticated:
            return login.unauthorized()
        return None

    @app.after_request
    def _headers(response):
        h = response.headers
        h.setdefault("Content-Security-Policy", str(CSP))
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("X-Frame-Options", "DENY")
        h.setdefault("Referrer-Policy", "same-origin")
        h.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        h.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        if request.is_secure:
            h.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response

    app.session_interface = _SessionInterface()


class _SessionInterface(SecureCookieSessionInterface):
    """Session cookie marked Secure whenever the request came over HTTPS."""

    def get_cookie_secure(self, app) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"] or (has_request_context() and request.is_secure))
