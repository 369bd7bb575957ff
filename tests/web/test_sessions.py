"""Sessions end on the server: sign out, "Keep me signed in" that rotates, Sign Out Everywhere, password change."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from app.auth.sessions import REMEMBER_COOKIE, ROTATION_GRACE
from app.models.auth import UserSession
from tests.factories import PASSWORD, make_user
from tests.helpers import csrf_token


def _sign_in(client, user, remember=False, password=PASSWORD):
    data = {"email": user.email, "password": password, "csrf_token": csrf_token(client)}
    if remember:
        data["remember"] = "y"
    r = client.post("/login", data=data)
    assert r.status_code == 302, r.get_data(as_text=True)
    return r


def _client_with(app, address="10.1.2.3", **cookies):
    """Another browser, elsewhere, holding only `cookies`."""
    other = app.test_client()
    other.environ_base["REMOTE_ADDR"] = address
    for name, value in cookies.items():
        other.set_cookie(name, value)
    return other


def _signed_in(client) -> bool:
    r = client.get("/inbox/")
    assert r.status_code in (200, 302)
    return r.status_code == 200


def _remember(client) -> str:
    cookie = client.get_cookie(REMEMBER_COOKIE)
    return cookie.value if cookie else None


def test_a_session_cookie_replayed_after_sign_out_is_signed_out(app, client):
    """Issue probe: copy the session cookie, POST /logout, replay it from the same address."""
    _sign_in(client, make_user("agent"))
    copied = client.get_cookie("session").value
    client.post("/logout", data={"csrf_token": csrf_token(client, "/inbox/")})
    replay = _client_with(app, "127.0.0.1", session=copied)
    r = replay.get("/inbox/")
    assert r.status_code == 302 and r.headers["Location"].startswith("/login")


def test_keep_me_signed_in_rotates_on_use_and_differs_at_every_sign_in(app, client, db):
    user = make_user("agent")
    _sign_in(client, user, remember=True)
    first = _remember(client)
    client.post("/logout", data={"csrf_token": csrf_token(client, "/inbox/")})
    assert _remember(client) is None  # sign out deletes the cookie
    _sign_in(client, user, remember=True)
    token = _remember(client)
    assert token and token != first

    browser = _client_with(app, **{REMEMBER_COOKIE: token})
    assert _signed_in(browser)
    rotated = _remember(browser)
    assert rotated and rotated != token and rotated.split(".")[0] == token.split(".")[0]
    assert _signed_in(browser)  # now through its session cookie
    assert _remember(browser) == rotated  # no rotation without use


def test_an_old_remember_token_within_the_grace_signs_in_without_rotating(app, client):
    _sign_in(client, make_user("agent"), remember=True)
    token = _remember(client)
    assert _signed_in(_client_with(app, **{REMEMBER_COOKIE: token}))  # rotates
    late = _client_with(app, **{REMEMBER_COOKIE: token})  # a request that left with the old secret
    assert _signed_in(late)
    assert _remember(late) == token  # no new secret: the first answer carries it


def test_an_old_remember_token_after_the_grace_ends_that_sign_in_everywhere(app, client, db):
    """A copy used after its owner moved on (or the other way round): both browsers are signed out."""
    user = make_user("agent")
    _sign_in(client, user, remember=True)
    stolen = _remember(client)
    owner = _client_with(app, **{REMEMBER_COOKIE: stolen})
    assert _signed_in(owner)
    row = db.session.scalar(select(UserSession).where(UserSession.user_id == user.id))
    row.rotated_at -= timedelta(seconds=ROTATION_GRACE + 1)
    db.session.commit()
    thief = _client_with(app, "10.6.6.6", **{REMEMBER_COOKIE: stolen})
    assert not _signed_in(thief)
    assert db.session.scalar(select(func.count()).select_from(UserSession)) == 0
    assert not _signed_in(owner)
    assert not _signed_in(client)


def test_sign_out_revokes_the_remember_token_captured_before(app, client):
    """Issue probe: the "Keep me signed in" cookie captured before sign-out still signed in afterwards."""
    _sign_in(client, make_user("agent"), remember=True)
    captured = _remember(client)
    client.post("/logout", data={"csrf_token": csrf_token(client, "/inbox/")})
    elsewhere = _client_with(app, "10.9.9.9", **{REMEMBER_COOKIE: captured})
    assert not _signed_in(elsewhere)
    assert _remember(elsewhere) is None  # the dead cookie is deleted


def test_sign_out_ends_only_this_browser(app, client):
    user = make_user("agent")
    _sign_in(client, user)
    other = _client_with(app)
    _sign_in(other, user)
    client.post("/logout", data={"csrf_token": csrf_token(client, "/inbox/")})
    assert not _signed_in(client)
    assert _signed_in(other)


def test_sign_out_everywhere_ends_every_session_and_remember_token(app, client, db):
    user = make_user("agent")
    _sign_in(client, user, remember=True)
    laptop = _client_with(app)
    _sign_in(laptop, user, remember=True)
    kept = _remember(laptop)
    html = client.get("/profile").get_data(as_text=True)
    assert html.count("<tr><td>") == 2 and "(this browser)" in html
    assert '<button type="submit" class="danger">Sign Out Everywhere</button>' in html
    r = client.post("/profile/sign-out-everywhere", data={"csrf_token": csrf_token(client, "/profile")})
    assert r.status_code == 303 and r.headers["Location"] == "/login"
    assert "You are signed out everywhere." in client.get("/login").get_data(as_text=True)
    assert not _signed_in(client)
    assert not _signed_in(laptop)
    assert not _signed_in(_client_with(app, "10.3.3.3", **{REMEMBER_COOKIE: kept}))
    assert db.session.scalar(select(func.count()).select_from(UserSession)) == 0


def test_password_change_asks_the_current_one_and_ends_the_other_sessions(app, client, db, htmx_headers):
    user = make_user("agent")
    _sign_in(client, user)
    phone = _client_with(app)
    _sign_in(phone, user, remember=True)
    kept = _remember(phone)
    token = csrf_token(client, "/profile")

    def change(current, new, again=None, headers=None):
        return client.post("/profile/password", headers=headers or {}, data={
            "current_password": current, "new_password": new, "confirm_password": again or new, "csrf_token": token})

    r = change("not it", "a brand new passphrase", headers=htmx_headers)
    assert r.status_code == 422 and "That is not your current password." in r.get_data(as_text=True)
    assert r.get_data(as_text=True).lstrip().startswith('<form id="password-form"')
    r = change(PASSWORD, "short")
    assert r.status_code == 422 and "Use at least 12 characters." in r.get_data(as_text=True)
    r = change(PASSWORD, "a brand new passphrase", "a different one")
    assert r.status_code == 422 and "The two new passwords differ." in r.get_data(as_text=True)
    assert _signed_in(phone)

    r = change(PASSWORD, "a brand new passphrase")
    assert r.status_code == 303 and r.headers["Location"] == "/profile"
    assert "Password changed. 1 other session ended." in client.get("/profile").get_data(as_text=True)
    assert _signed_in(client)
    assert not _signed_in(phone)
    assert not _signed_in(_client_with(app, "10.4.4.4", **{REMEMBER_COOKIE: kept}))
    fresh = _client_with(app, "10.5.5.5")
    r = fresh.post("/login", data={"email": user.email, "password": PASSWORD, "csrf_token": csrf_token(fresh)})
    assert r.status_code == 422
    _sign_in(fresh, user, password="a brand new passphrase")


def test_sessions_expire_on_the_server(app, client, db):
    user = make_user("agent")
    _sign_in(client, user)
    row = db.session.scalar(select(UserSession).where(UserSession.user_id == user.id))
    row.expires_at -= timedelta(hours=app.config["SESSION_HOURS"])
    db.session.commit()
    assert not _signed_in(client)


def test_a_deactivated_user_is_signed_out_at_the_next_request(app, client, db):
    user = make_user("agent")
    _sign_in(client, user)
    user.active = False
    db.session.commit()
    assert not _signed_in(client)
