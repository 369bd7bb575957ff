"""Logs carry request/job ids and never a secret."""
from __future__ import annotations

import logging

import pytest

from app.logs import ContextFilter, redact


@pytest.mark.parametrize("raw,secret", [
    ("login password=hunter2 for bob", "hunter2"),
    ('{"token": "abc.def.ghi"}', "abc.def.ghi"),
    ("Authorization: Bearer-xyz", "Bearer-xyz"),
    ("smtp pass: s3cret!", "s3cret!"),
    ("csrf_token=IjQ2NjI", "IjQ2NjI"),
])
def test_redact_masks_secret_values(raw, secret):
    out = redact(raw)
    assert secret not in out and "***" in out


def test_redact_keeps_ordinary_text():
    assert redact("GET /inbox/ 200") == "GET /inbox/ 200"


def test_request_id_tags_each_line(app, client, caplog):
    client.get("/login", headers={"X-Request-ID": "abc-123"})
    lines = [r for r in caplog.records if r.getMessage() == "GET /login 200"]
    assert lines and lines[0].context == "req:abc-123"


def test_password_is_never_written_to_the_log(app, client):
    import io

    from tests.helpers import csrf_token

    handler = next(h for h in logging.getLogger().handlers if any(isinstance(f, ContextFilter) for f in h.filters))
    stream = io.StringIO()
    old = handler.setStream(stream)
    try:
        client.post("/login", data={"email": "a@b.c", "password": "Sup3rSecretPw", "csrf_token": csrf_token(client)})
        logging.getLogger("app.test").warning("user typed password=%s", "Sup3rSecretPw")
    finally:
        handler.setStream(old)
    written = stream.getvalue()
    assert "POST /login 422" in written and "password=***" in written
    assert "Sup3rSecretPw" not in written


def test_job_id_in_context_outside_requests():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello %s", ("world",), None)
    assert ContextFilter().filter(record)
    assert record.context == "-" and record.getMessage() == "hello world"


def test_malformed_request_id_is_replaced(client):
    r = client.get("/login", headers={"X-Request-ID": "bad id; with spaces"})
    assert r.headers["X-Request-ID"] != "bad id; with spaces" and len(r.headers["X-Request-ID"]) == 16
