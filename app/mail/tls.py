"""TLS for our connections to mail servers (IMAP, POP3, SMTP).

Certificates are always verified. `MAIL_TLS_CA_FILE` adds a CA bundle to the
system's (an internal CA, or the throwaway certificate of the tests' servers).
"""
from __future__ import annotations

import ssl

#: Connection security choices for incoming and outgoing servers.
SECURITY_CHOICES = ("ssl", "starttls", "none")


def client_context(cafile: str | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if cafile:
        context.load_verify_locations(cafile=cafile)
    return context


def configured_context() -> ssl.SSLContext:
    """`client_context` with the app's `MAIL_TLS_CA_FILE`."""
    from flask import current_app

    return client_context(current_app.config.get("MAIL_TLS_CA_FILE") or None)
