from __future__ import annotations

import pytest

from app.config import Config


@pytest.mark.parametrize("url,expected", [
    ("postgres://u:p@h/db", "postgresql+psycopg://u:p@h/db"),
    ("postgresql://u@h:5/db", "postgresql+psycopg://u@h:5/db"),
    ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
    ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
])
def test_database_url_driver(monkeypatch, url, expected):
    monkeypatch.setenv("DATABASE_URL", url)
    assert Config().SQLALCHEMY_DATABASE_URI == expected


def test_settings_from_environment(monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "s")
    monkeypatch.setenv("PLATFORM_MAIL_DOMAIN", "mail.example.org")
    monkeypatch.setenv("BLOB_STORE", "db")
    monkeypatch.setenv("PORT", "8080")
    monkeypatch.setenv("REDIS_URL", "redis://10.0.0.1:6379/2")
    c = Config()
    assert (c.SECRET_KEY, c.PLATFORM_MAIL_DOMAIN, c.BLOB_STORE, c.PORT, c.REDIS_URL) == (
        "s", "mail.example.org", "db", 8080, "redis://10.0.0.1:6379/2")


def test_dev_secret_is_generated_once_and_private(monkeypatch, tmp_path):
    import app.config as config

    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setattr(config, "INSTANCE", tmp_path)
    first, second = Config().SECRET_KEY, Config().SECRET_KEY
    assert first == second and len(first) > 40
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_idle_renewal_never_exceeds_rfc_2177s_29_minutes(monkeypatch):
    assert Config().IDLE_RENEW_SECONDS == 25 * 60
    monkeypatch.setenv("IDLE_RENEW_SECONDS", "3600")
    assert Config().IDLE_RENEW_SECONDS == 29 * 60
    monkeypatch.setenv("IDLE_RENEW_SECONDS", "60")
    assert Config().IDLE_RENEW_SECONDS == 60
