"""Logging: one line per record, tagged with the request id or RQ job id, secrets redacted.

Every record carries `request_id` (from `X-Request-ID` or a fresh one) or `job_id`
(inside an RQ job), so a support question can be followed across web and workers.
A filter masks anything that looks like a password, token or secret before it is
written, whatever logger it came from.
"""
from __future__ import annotations

import logging
import re
import uuid

from flask import Flask, g, has_request_context, request

_SECRET = re.compile(
    r"(?i)(password|passwd|pass|secret|token|api[_-]?key|authorization|csrf[_-]?token)"
    r"(\s*[=:]\s*|\"\s*:\s*\"|'\s*:\s*')([^\s,;&\"']+)"
)

FORMAT = "%(asctime)s %(levelname)s %(name)s [%(context)s] %(message)s"


def redact(text: str) -> str:
    """Mask the value of `password=...`, `"token": "..."` and similar pairs."""
    return _SECRET.sub(lambda m: f"{m.group(1)}{m.group(2)}***", text)


class ContextFilter(logging.Filter):
    """Adds `context` (request or job id) and redacts secrets in the final message."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = "-"
        if has_request_context():
            context = f"req:{getattr(g, 'request_id', '-')}"
        else:
            try:
                from rq import get_current_job

                job = get_current_job()
            except Exception:  # noqa: BLE001 - logging must never fail
                job = None
            if job is not None:
                context = f"job:{job.id}"
        record.context = context
        message = redact(record.getMessage())
        record.msg, record.args = message, None
        return True


def init_app(app: Flask) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(FORMAT))
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
