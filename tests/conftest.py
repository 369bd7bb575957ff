"""Shared fixtures: a real Redis, the app on SQLite (or DATABASE_URL), clients, login_as.

The database schema is built once per session; every test starts from empty tables.
Set DATABASE_URL to run the same tests on PostgreSQL (scripts/test does).
"""
from __future__ import annotations

import contextvars
from contextlib import contextmanager
import os

import pytest
from flask.testing import FlaskClient
from tests.factories import PASSWORD, make_user
from tests.helpers import csrf_token
from tests.servers import RedisServer


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    return os.environ.get("DATABASE_URL") or f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"


@pytest.fixture(scope="session")
def _schema(database_url, redis_server, tmp_path_factory):
    """Build the schema once (from the models; a migration test checks they agree)."""
    from app import create_app
    from app.extensions import db

    with _harness_umask():
        app = create_app(_test_config(database_url, redis_server, tmp_path_factory.mktemp("blobs")))
    with app.app_context():
        db.drop_all()
        db.create_all()
        db.engine.dispose()
    return True


_UMASK = os.umask(0o022)
os.umask(_UMASK)


@contextmanager
def _harness_umask():
    """`create_app()` makes the process's files private (umask 077); the test harness keeps its own umask,
    so the servers it starts later (Dovecot drops to other users) can read what it writes for them."""
    try:
        yield
    finally:
        os.umask(_UMASK)


@pytest.fixture(autouse=True)
def _restore_umask():
    yield
    os.umask(_UMASK)


def _test_config(database_url, redis_server, blob_dir) -> dict:
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "SQLALCHEMY_DATABASE_URI": database_url if not database_url.startswith("postgresql://")
        else "postgresql+psycopg://" + database_url[len("postgresql://"):],
        "REDIS_URL": redis_server.url,
        "BLOB_DIR": str(blob_dir),
        "INGRESS_SPOOL_DIR": str(blob_dir.parent / "ingress-spool"),
        "PLATFORM_MAIL_DOMAIN": "mail.pigeonhole.test",
        "SERVER_NAME": None,
        "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",  # fast hashes; production keeps scrypt
        # Platform addresses can queue mail; nothing listens here, tests that send start their own server.
        "SMTP_RELAY_URL": "smtp://127.0.0.1:9?tls=none",
        "SEND_LINGER_SECONDS": 0,  # a test's send job ends when nothing is due (one test sets it)
        "MAIL_ALLOW_PRIVATE_HOSTS": True,  # every test mail server listens on 127.0.0.1
    }


class IsolatedClient(FlaskClient):
    """A test client whose requests run in a fresh context, as in production.

    pytest-flask keeps an app context pushed during each test; Flask would reuse it
    for every request, sharing `g` (Flask-Login's cached user, Flask-WTF's CSRF token)
    and the database session between requests and clients. Running each request in
    an empty `contextvars.Context` gives it its own app context, `g` and session.
    """

    def open(self, *args, **kwargs):
        self.preserve_context = False  # pytest-flask's `with client:` would re-push across Contexts
        return contextvars.Context().run(super().open, *args, **kwargs)


@pytest.fixture
def app(_schema, database_url, redis_server, tmp_path):
    from app import create_app
    from app.extensions import db

    with _harness_umask():
        app = create_app(_test_config(database_url, redis_server, tmp_path / "blobs"))
    app.test_client_class = IsolatedClient
    yield app
    with app.app_context():
        db.session.remove()
        _empty_tables(db)
        db.engine.dispose()
    import redis

    redis.Redis.from_url(redis_server.url).flushdb()


def _empty_tables(db) -> None:
    with db.engine.begin() as conn:
        for table in reversed(db.metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture
def db(app):
    from app.extensions import db as _db

    return _db


@pytest.fixture
def login_as(client, db):
    """`login_as("admin")` creates a user of that role and signs the test client in."""

    def _login(role: str = "agent", **kwargs):
        user = make_user(role, **kwargs)
        token = csrf_token(client)
        response = client.post("/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token})
        assert response.status_code == 302, response.get_data(as_text=True)
        return user

    return _login


@pytest.fixture
def dns(app):
    """A DNS server on loopback (`tests/dns_server.py`) that the app's DKIM/SPF/DMARC lookups ask."""
    from tests.dns_server import LoopbackDNS

    server = LoopbackDNS()
    app.config.update(DNS_RESOLVER=server.address, DNS_TIMEOUT_SECONDS=1)
    yield server
    server.stop()


@pytest.fixture
def relay(app, tmp_path):
    """An SMTP server on loopback as the platform relay (`SMTP_RELAY_URL`), without TLS."""
    from tests.servers import SMTPServer

    server = SMTPServer(tmp_path / "relay")
    app.config["SMTP_RELAY_URL"] = f"smtp://127.0.0.1:{server.port}?tls=none"
    yield server
    server.stop()


@pytest.fixture
def htmx_headers():
    return {"HX-Request": "true"}



# Real IMAP/POP3/SMTP servers for the channel setup tests (Test Connection), started once per session.
from tests.channel_fixtures import mail_servers, penalty_dovecots  # noqa: E402,F401
