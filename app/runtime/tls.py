"""The TLS context of the runtime's connections to mail servers: the system's CAs, `MAIL_TLS_CA_FILE`, and the
address's own private CA (uploaded in the wizard, kept with the address)."""
from __future__ import annotations

import ssl

from flask import current_app

from app.mail.tls import client_context


def configured_context(ca_pem: str | None = None) -> ssl.SSLContext:
    """`app.mail.tls.client_context` with the app's `MAIL_TLS_CA_FILE` and `ca_pem`, an address's private CA."""
    return client_context(current_app.config.get("MAIL_TLS_CA_FILE") or None, ca_pem or None)
