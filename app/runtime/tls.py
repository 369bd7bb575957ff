"""The TLS context of the runtime's connections to mail servers: `MAIL_TLS_CA_FILE` on top of the system's CAs."""
from __future__ import annotations

import ssl

from flask import current_app

from app.mail.tls import client_context


def configured_context() -> ssl.SSLContext:
    """`app.mail.tls.client_context` with the app's `MAIL_TLS_CA_FILE`."""
    return client_context(current_app.config.get("MAIL_TLS_CA_FILE") or None)
