"""The TLS context of the runtime's connections to mail servers: the system's CAs, `MAIL_TLS_CA_FILE`, and the
address's own private CA (uploaded in the wizard, kept with the address)."""
from __future__ import annotations

import os
import ssl
import threading

from flask import current_app

from app.mail.tls import client_context

# One context per CA file (and its modification time), shared by every connection of the process: a
# context holds the system's CA store (about 1 MB), and `flask mail idle` keeps hundreds of connections
# open. An SSLContext may be shared across threads; a changed CA file gets a fresh one.
_contexts: dict[tuple[str | None, float | None, str | None], ssl.SSLContext] = {}
_lock = threading.Lock()


def configured_context(ca_pem: str | None = None) -> ssl.SSLContext:
    """`app.mail.tls.client_context` with the app's `MAIL_TLS_CA_FILE` and `ca_pem`, an address's private CA.

    Built once per process for each (CA file version, private CA): a changed CA file gets fresh contexts.
    """
    cafile = current_app.config.get("MAIL_TLS_CA_FILE") or None
    try:
        version = os.stat(cafile).st_mtime if cafile else None
    except OSError:
        version = None  # missing: client_context raises the clear error
    key = (cafile, version, ca_pem or None)
    with _lock:
        context = _contexts.get(key)
        if context is None:
            context = client_context(cafile, ca_pem or None)
            for old in [k for k in _contexts if k[:2] != key[:2]]:
                del _contexts[old]  # an older version of the file is never used again
            _contexts[key] = context
    return context
