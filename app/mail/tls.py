"""TLS for our connections to mail servers (IMAP, POP3, SMTP).

Certificates are always verified; `cafile` adds a CA bundle to the system's (an
internal CA, or the throwaway certificate of the tests' servers). The runtime passes
the app's `MAIL_TLS_CA_FILE` (`app.runtime.tls`).
"""
from __future__ import annotations

import ssl

def client_context(cafile: str | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if cafile:
        context.load_verify_locations(cafile=cafile)
    return context
