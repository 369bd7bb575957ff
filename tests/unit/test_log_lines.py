"""Log lines (issue 18): JSON lines on request, with the request or job id and the bound ids; secrets stay masked."""
from __future__ import annotations

import json
import logging

from app.logs import ContextFilter, JSONFormatter, log_context


def _record(message: str, *args, exc_info=None, **extra) -> logging.LogRecord:
    record = logging.LogRecord("app.test", logging.WARNING, __file__, 1, message, args, exc_info)
    record.__dict__.update(extra)
    return record


def test_json_lines_carry_the_bound_ids_and_mask_secrets():
    record = _record("login failed for %s password=%s", "ann@example.com", "hunter2hunter2")
    with log_context(address_id=7), log_context(message_id=981, conversation_id=None):
        assert ContextFilter().filter(record)
    line = JSONFormatter().format(record)
    assert "\n" not in line
    out = json.loads(line)
    assert out["level"] == "WARNING" and out["logger"] == "app.test"
    assert out["message"] == "login failed for ann@example.com password=***"
    assert out["address_id"] == 7 and out["message_id"] == 981 and "conversation_id" not in out
    assert "hunter2" not in line and out["time"].endswith("+00:00")


def test_ids_unbind_when_the_block_ends_and_extra_ids_count_too():
    with log_context(address_id=1):
        pass
    record = _record("plain", raw_id="12,13")
    ContextFilter().filter(record)
    assert record.bound_ids == {"raw_id": "12,13"} and record.context == "- raw_id=12,13"


def test_an_exception_is_one_field_of_the_same_line():
    try:
        raise ValueError("token=abc123secret broke")
    except ValueError:
        import sys

        record = _record("it failed", exc_info=sys.exc_info())
    ContextFilter().filter(record)
    out = json.loads(JSONFormatter().format(record))
    assert "ValueError" in out["exception"] and "abc123secret" not in out["exception"]
