"""Logging: one line per record, tagged with the request id or RQ job id, secrets redacted.

Every record carries `request_id` (from `X-Request-ID` or a fresh one) or `job_id`
(inside an RQ job), so a support question can be followed across web and workers, and
the ids bound by `log_context(address_id=..., message_id=...)` around the work on one
address or message. A filter masks anything that looks like a password, token or secret
before it is written, whatever logger it came from.

`LOG_FORMAT=json` writes each record as one JSON object (`time`, `level`, `logger`,
`message`, `request_id` or `job_id`, the bound ids, `exception`) for a log collector;
the default is one readable line. Either goes to standard error, for the process
manager (systemd's journal, docker) to keep and rotate (docs/deploy.md).
"""
from __future__ import annotations

import contextvars
import json
import logging
import re
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone

from flask import Flask, g, has_request_context, request

_SECRET = re.compile(
    r"(?i)(password|passwd|pass|secret|token|api[_-]?key|authorization|csrf[_-]?token)"
    r"(\s*[=:]\s*|\"\s*:\s*\"|'\s*:\s*')([^\s,;&\"']+)"
)

FORMAT = "%(asctime)s %(levelname)s %(name)s [%(context)s] %(message)s"


def redact(text: str) -> str:
    """Mask the value of `password=...`, `"token": "..."` and similar pairs."""
    return _SECRET.sub(lambda m: f"{m.group(1)}{m.group(2)}***", text)


#: Ids bound to the work at hand (`log_context`): address_id, message_id, conversation_id, raw_id.
_bound: contextvars.ContextVar[dict] = contextvars.ContextVar("pigeonhole_log_ids", default={})
BOUND_FIELDS = ("address_id", "message_id", "conversation_id", "raw_id")


@contextmanager
def log_context(**ids):
    """Tag every record written inside with these ids (None values are left out)."""
    token = _bound.set({**_bound.get(), **{k: v for k, v in ids.items() if v is not None}})
    try:
        yield
    finally:
        _bound.reset(token)


class ContextFilter(logging.Filter):
    """Adds `context` (request or job id, and the bound ids) and redacts secrets in the final message."""

    def filter(self, record: logging.LogRecord) -> bool:
        context, record.request_id, record.job_id = "-", None, None
        if has_request_context():
            record.request_id = getattr(g, "request_id", None)
            context = f"req:{record.request_id or '-'}"
        else:
            try:
                from rq import get_current_job

                job = get_current_job()
            except Exception:  # noqa: BLE001 - logging must never fail
                job = None
            if job is not None:
                record.job_id = job.id
                context = f"job:{job.id}"
        ids = {**_bound.get(), **{k: getattr(record, k) for k in BOUND_FIELDS if getattr(record, k, None) is not None}}
        record.bound_ids = ids
        if ids:
            context += " " + " ".join(f"{k}={v}" for k, v in ids.items())
        record.context = context
        message = redact(record.getMessage())
        record.msg, record.args = message, None
        return True


class JSONFormatter(logging.Formatter):
    """One JSON object per record (`LOG_FORMAT=json`)."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in ("request_id", "job_id"):
            if getattr(record, name, None):
                out[name] = getattr(record, name)
        out.update(getattr(record, "bound_ids", {}))
        if record.exc_info:
            out["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(out, ensure_ascii=False, default=str)


def init_app(app: Flask) -> None:
    handler = logging.StreamHandler()
    json_lines = str(app.config.get("LOG_FORMAT", "text")).lower() == "json"
    handler.setFormatter(JSONFormatter() if json_lines else logging.Formatter(FORMAT))
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    if not any(isinstance(f, ContextFilter) for h in root.handlers for f in h.filters):
        root.addHandler(handler)
    root.setLevel(app.config.get("LOG_LEVEL", logging.INFO))
    # Werkzeug's access log would print query strings; ours is the one below.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    @app.before_request
    def _request_id() -> None:
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if re.fullmatch(r"[A-Za-z0-9._-]{1,64}", incoming) else uuid.uuid4().hex[:16]

    @app.after_request
    def _log_request(response):
        response.headers["X-Request-ID"] = g.get("request_id", "")
        if request.endpoint != "static":
            app.logger.info("%s %s %s", request.method, request.path, response.status_code)
        return response
