"""Sign-in under attack: the throttle holds under concurrency, per account and address pair, with a
slow-down per account; the owner is told; unknown addresses take as long; hashing is bounded."""
from __future__ import annotations

import statistics
import threading
import time
from datetime import timedelta

from app.auth import passwords
from app.models.auth import LoginThrottle
from tests.factories import PASSWORD, make_user
from tests.helpers import csrf_token

WRONG = "Wrong email or password."
THROTTLED = "Too many failed sign-in attempts."


def _client(app, address):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def _attempt(client, email, password, headers=None):
    return client.post("/login", headers=headers or {},
                       data={"email": email, "password": password, "csrf_token": csrf_token(client)})


def test_parallel_wrong_passwords_never_get_past_the_limit(app, db):
    """Issue probe: 30-40 parallel wrong passwords for one account had 11-23 evaluated against a limit of 5."""
    app.config.update(PASSWORD_HASH_METHOD="scrypt", PASSWORD_HASH_CONCURRENCY=64, PASSWORD_HASH_WAIT_SECONDS=60)
    email = make_user("agent").email  # a real scrypt hash: each check takes as long as in production
    limit = app.config["LOGIN_MAX_FAILURES_PER_ACCOUNT"]
    clients = [_client(app, "10.0.0.7") for _ in range(30)]
    tokens = [csrf_token(c) for c in clients]
    start = threading.Barrier(len(clients))
    answers = []

    def guess(client, token):
        start.wait()
        r = client.post("/login", data={"email": email, "password": "guess", "csrf_token": token})
        answers.append(r.get_data(as_text=True))

    threads = [threading.Thread(target=guess, args=pair) for pair in zip(clients, tokens)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(answers) == 30
    evaluated = sum(WRONG in a for a in answers)
    assert evaluated == limit
    assert sum(THROTTLED in a for a in answers) == 30 - limit


def test_a_guesser_elsewhere_cannot_lock_the_owner_out_and_the_owner_is_told(app, db):
    user = make_user("agent")
    attacker = _client(app, "10.6.6.6")
    for _ in range(app.config["LOGIN_MAX_FAILURES_PER_ACCOUNT"]):
        assert WRONG in _attempt(attacker, user.email, "guess").get_data(as_text=True)
    r = _attempt(attacker, user.email, PASSWORD)  # even the right password, from there
    assert r.status_code == 422 and THROTTLED in r.get_data(as_text=True)
    assert int(r.headers["Retry-After"]) > 800

    owner = _client(app, "192.0.2.10")
    r = _attempt(owner, user.email, PASSWORD)
    assert r.status_code == 302
    page = owner.get("/inbox/").get_data(as_text=True)
    assert "6 failed sign-in attempts on your account since you last signed in" in page
    assert "change your password in your Profile" in page
    owner.post("/logout", data={"csrf_token": csrf_token(owner, "/inbox/")})
    assert _attempt(owner, user.email, PASSWORD).status_code == 302
    assert "failed sign-in attempt" not in owner.get("/inbox/").get_data(as_text=True)  # told once


def test_many_addresses_against_one_account_are_slowed_down(app, db):
    app.config.update(LOGIN_SLOW_DOWN_AFTER=3, LOGIN_SLOW_DOWN_SECONDS=30)
    user = make_user("agent")
    for n in range(4):  # the 4th is past the slow-down, and the first of its pace
        assert WRONG in _attempt(_client(app, f"10.0.1.{n}"), user.email, "guess").get_data(as_text=True)
    owner = _client(app, "192.0.2.20")
    r = _attempt(owner, user.email, PASSWORD)
    assert r.status_code == 422
    assert "Too many failed sign-in attempts. Try again in 30 seconds." in r.get_data(as_text=True)
    pace = db.session.get(LoginThrottle, f"pace:{user.email}")
    pace.window_start -= timedelta(seconds=30)
    db.session.commit()
    assert _attempt(owner, user.email, PASSWORD).status_code == 302


def test_an_unknown_address_takes_as_long_as_a_wrong_password(app, db):
    """Issue probe: a wrong password took 94-166 ms (scrypt), an unknown address 5-10 ms."""
    app.config.update(PASSWORD_HASH_METHOD="scrypt", LOGIN_MAX_FAILURES_PER_ACCOUNT=100,
                      LOGIN_MAX_FAILURES_PER_ADDRESS=100, LOGIN_SLOW_DOWN_AFTER=100)
    user = make_user("agent")
    client = _client(app, "10.0.2.1")
    token = csrf_token(client)

    def timed(email):
        began = time.perf_counter()
        r = client.post("/login", data={"email": email, "password": "guess", "csrf_token": token})
        assert WRONG in r.get_data(as_text=True)
        return time.perf_counter() - began

    timed("nobody@example.test")  # the first makes this process's stand-in hash
    known, unknown = [], []
    for n in range(7):
        known.append(timed(user.email))
        unknown.append(timed(f"nobody{n}@example.test"))
    assert statistics.median(unknown) > 0.6 * statistics.median(known), (known, unknown)


def test_beyond_the_hashing_slots_sign_in_answers_429_and_the_rest_keeps_answering(app, db, htmx_headers):
    app.config["PASSWORD_HASH_WAIT_SECONDS"] = 0.1
    app.extensions["password_hashing"] = threading.BoundedSemaphore(1)
    user = make_user("agent")
    client = _client(app, "10.0.3.1")
    with app.app_context(), passwords.hashing_slot():  # another sign-in is hashing
        r = _attempt(client, user.email, PASSWORD, headers=htmx_headers)
        assert r.status_code == 429 and r.headers["Retry-After"] == "2"
        assert "Many people are signing in right now. Try again in a few seconds." in r.get_data(as_text=True)
        began = time.perf_counter()
        assert _client(app, "10.0.3.2").get("/healthz").status_code in (200, 503)
        assert time.perf_counter() - began < 2
    # The refused attempt was never evaluated, so it does not count against the account.
    pair = db.session.get(LoginThrottle, f"pair:{user.email}|10.0.3.1")
    assert pair is None or pair.failures == 0
    assert _attempt(client, user.email, PASSWORD).status_code == 302


def test_a_storm_of_sign_ins_is_bounded_per_process(app, db):
    """Many correct sign-ins at once: at most the slots hash together, the others are told to retry."""
    app.config.update(PASSWORD_HASH_METHOD="scrypt", PASSWORD_HASH_WAIT_SECONDS=0.05)
    app.extensions["password_hashing"] = threading.BoundedSemaphore(2)
    users = [make_user("agent").email for _ in range(12)]
    clients = [_client(app, f"10.0.4.{n}") for n in range(12)]
    tokens = [csrf_token(c) for c in clients]
    start = threading.Barrier(len(users))
    statuses = []

    def sign_in(email, client, token):
        start.wait()
        r = client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
        statuses.append((r.status_code, r.headers.get("Retry-After")))

    threads = [threading.Thread(target=sign_in, args=args) for args in zip(users, clients, tokens)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(statuses) == 12
    assert {s for s in statuses if s[0] != 302} == {(429, "2")}
    assert 2 <= sum(s[0] == 302 for s in statuses) < 12
