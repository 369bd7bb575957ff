"""Sign-in, sign-out, roles, CSRF and failed-login throttling."""
from __future__ import annotations

from datetime import timedelta

import pytest

from app.models.auth import LoginThrottle
from tests.factories import PASSWORD, make_user
from tests.helpers import csrf_token


def _login(client, email, password, headers=None, **extra):
    data = {"email": email, "password": password, "csrf_token": csrf_token(client), **extra}
    return client.post("/login", data=data, headers=headers or {})


def test_login_page_has_labelled_fields(client):
    html = client.get("/login").get_data(as_text=True)
    assert '<label for="email">Email</label>' in html
    assert '<label for="password">Password</label>' in html
    assert 'id="email" name="email"' in html and 'id="password" name="password"' in html
    assert '<button type="submit" class="primary">Sign in</button>' in html


def test_right_password_signs_in_and_redirects(client, db):
    user = make_user("agent")
    r = _login(client, user.email.upper(), PASSWORD)
    assert r.status_code == 302
    assert r.headers["Location"] == "/inbox/?view=mine"  # an agent's start page: their own conversations
    assert client.get("/inbox/").status_code == 200
    db.session.refresh(user)
    assert user.last_login_at is not None


def test_wrong_password_is_422_with_clear_error_full_page(client, db):
    user = make_user("agent")
    r = _login(client, user.email, "nope")
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert "Wrong email or password." in html
    assert "<html" in html  # a normal form post gets the whole page


def test_wrong_password_over_htmx_returns_only_the_form(client, htmx_headers):
    make_user("agent", email="someone@example.test")
    r = _login(client, "someone@example.test", "nope", headers=htmx_headers)
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert "Wrong email or password." in html
    assert html.lstrip().startswith('<form id="login-form"')
    assert "<html" not in html
    assert "HX-Request" in r.headers.get("Vary", "")


def test_htmx_login_success_redirects_with_hx_redirect(client, htmx_headers):
    user = make_user("agent")
    r = _login(client, user.email, PASSWORD, headers=htmx_headers)
    assert r.status_code == 204
    assert r.headers["HX-Redirect"] == "/inbox/?view=mine"


def test_empty_form_names_missing_fields(client):
    r = client.post("/login", data={"csrf_token": csrf_token(client)})
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert "Enter your email." in html and "Enter your password." in html


def test_next_parameter_is_followed_only_within_the_site(client):
    user = make_user("admin")
    token = csrf_token(client)
    r = client.post("/login?next=/ops/", data={"email": user.email, "password": PASSWORD, "csrf_token": token})
    assert r.headers["Location"] == "/ops/"
    client.post("/logout", data={"csrf_token": csrf_token(client, "/inbox/")})
    token = csrf_token(client)
    r = client.post("/login?next=//evil.example/x", data={"email": user.email, "password": PASSWORD, "csrf_token": token})
    assert r.headers["Location"] == "/inbox/"


OFF_SITE = ["//evil.example/x", "/\\127.0.0.1:9911/x", "/\t/evil.example", "https://evil.example/",
            "javascript:alert(1)", "/\x00/x", "/caf\u00e9", "evil.example"]


@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
def test_sign_in_never_leads_off_the_site(client, htmx_headers, htmx):
    from urllib.parse import quote

    user = make_user("agent")
    headers = htmx_headers if htmx else {}
    answer = "HX-Redirect" if htmx else "Location"
    for target in OFF_SITE:
        r = client.post(f"/login?next={quote(target, safe='')}", headers=headers,
                        data={"email": user.email, "password": PASSWORD, "csrf_token": csrf_token(client)})
        assert r.headers[answer] == "/inbox/?view=mine", target
        client.post("/logout", data={"csrf_token": csrf_token(client, "/inbox/")})
    r = client.post("/login?next=%2Fresponses%2F%3Fq%3Da", headers=headers,
                    data={"email": user.email, "password": PASSWORD, "csrf_token": csrf_token(client)})
    assert r.headers[answer] == "/responses/?q=a"


def test_inactive_user_cannot_sign_in(client, db):
    user = make_user("agent")
    user.active = False
    db.session.commit()
    assert _login(client, user.email, PASSWORD).status_code == 422


def test_logout_needs_post_and_ends_the_session(client, login_as):
    login_as("agent")
    assert client.get("/logout").status_code == 405
    r = client.post("/logout", data={"csrf_token": csrf_token(client, "/inbox/")})
    assert r.status_code == 302 and r.headers["Location"] == "/login"
    r = client.get("/inbox/")
    assert r.status_code == 302 and r.headers["Location"].startswith("/login")


def test_post_without_csrf_token_is_refused(client):
    user = make_user("agent")
    client.get("/login")
    r = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert r.status_code == 400
    assert b"CSRF" in r.data


def test_htmx_request_with_csrf_header_is_accepted(client, login_as, htmx_headers):
    login_as("agent")
    token = csrf_token(client, "/inbox/")
    r = client.post("/logout", headers={**htmx_headers, "X-CSRFToken": token})
    assert r.status_code == 302
    r = client.post("/logout", headers={**htmx_headers, "X-CSRFToken": "forged"})
    assert r.status_code in (302, 400)  # signed out already: login redirect or CSRF refusal, never 200


# --- throttling ------------------------------------------------------------------------------

def test_account_is_throttled_after_repeated_failures_even_with_the_right_password(client, app):
    user = make_user("agent")
    for _ in range(app.config["LOGIN_MAX_FAILURES_PER_ACCOUNT"]):
        assert _login(client, user.email, "wrong").status_code == 422
    r = _login(client, user.email, PASSWORD)
    assert r.status_code == 422
    assert "Too many failed sign-in attempts. Try again in 15 minutes." in r.get_data(as_text=True)


def test_throttle_ends_with_its_window(client, app, db):
    user = make_user("agent")
    for _ in range(app.config["LOGIN_MAX_FAILURES_PER_ACCOUNT"]):
        _login(client, user.email, "wrong")
    row = db.session.get(LoginThrottle, f"pair:{user.email}|127.0.0.1")
    row.window_start -= timedelta(seconds=app.config["LOGIN_THROTTLE_SECONDS"] + 1)
    db.session.commit()
    assert _login(client, user.email, PASSWORD).status_code == 302


def test_success_clears_the_pair_counter_and_takes_back_its_own_attempt(client, app, db):
    user = make_user("agent")
    failures = app.config["LOGIN_MAX_FAILURES_PER_ACCOUNT"] - 1
    for _ in range(failures):
        _login(client, user.email, "wrong")
    assert _login(client, user.email, PASSWORD).status_code == 302
    assert db.session.get(LoginThrottle, f"pair:{user.email}|127.0.0.1") is None
    # The wrong passwords still count for the account and the address; the success does not.
    assert db.session.get(LoginThrottle, f"account:{user.email}").failures == failures
    assert db.session.get(LoginThrottle, "address:127.0.0.1").failures == failures


def test_client_address_is_throttled_across_accounts(client, app):
    app.config["LOGIN_MAX_FAILURES_PER_ADDRESS"] = 3
    victim = make_user("agent")
    for n in range(3):
        _login(client, f"guess{n}@example.test", "wrong")
    r = _login(client, victim.email, PASSWORD)
    assert r.status_code == 422 and "Too many failed sign-in attempts" in r.get_data(as_text=True)
    # The same account from another address is not affected.
    other = app.test_client()
    other.environ_base["REMOTE_ADDR"] = "10.9.8.7"
    assert _login(other, victim.email, PASSWORD).status_code == 302


# --- pages and roles -------------------------------------------------------------------------

def _get_routes(app):
    for rule in app.url_map.iter_rules():
        if "GET" in rule.methods and not rule.arguments and rule.endpoint != "static":
            yield rule.rule, rule.endpoint


def test_every_page_but_login_and_healthz_needs_a_login(client, app):
    seen = 0
    for path, endpoint in _get_routes(app):
        r = client.get(path)
        if endpoint in ("auth.login", "ops.healthz"):
            assert r.status_code in (200, 503), path
        elif endpoint == "metrics.scrape":  # no session: a bearer token, or a loopback client (test_metrics.py)
            assert r.status_code == 200 and client.get(path, environ_base={"REMOTE_ADDR": "192.0.2.7"}).status_code == 403
        elif endpoint == "inbox.home":
            assert r.status_code == 302
        else:
            assert r.status_code == 302 and r.headers["Location"].startswith("/login?next="), path
            seen += 1
    assert seen >= 6


ADMIN_PAGES = ["/channels/email/", "/flows/", "/channels/publish/history", "/ops/"]


@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_admin_pages_refuse_agents_and_supervisors(client, login_as, path):
    login_as("agent")
    r = client.get(path)
    assert r.status_code == 403
    assert "Not allowed" in r.get_data(as_text=True)


@pytest.mark.parametrize("path", ADMIN_PAGES + ["/responses/", "/inbox/"])
def test_admin_sees_every_page(client, login_as, path):
    login_as("admin")
    assert client.get(path).status_code == 200


def test_supervisor_manages_standard_responses_but_not_channels(client, login_as):
    login_as("supervisor")
    assert client.get("/responses/").status_code == 200
    assert client.get("/channels/email/").status_code == 403


@pytest.mark.parametrize("role,expected", [
    ("agent", ["Inbox"]),
    ("supervisor", ["Inbox", "Standard Responses", "Dashboard", "Reports"]),
    ("admin", ["Inbox", "Channels", "Flows", "Standard Responses", "Dashboard", "Reports", "Publish", "Ops", "Users"]),
])
def test_navigation_by_role(client, login_as, role, expected):
    import re

    login_as(role)
    html = client.get("/inbox/").get_data(as_text=True)
    nav = html.split('<nav aria-label="Main">')[1].split("</nav>")[0]
    assert re.findall(r'">([^<]+)</a>', nav) == expected
