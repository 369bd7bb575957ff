"""Keep a server started by a command (the ingress, the SMTP sink) running until it is told to stop."""
from __future__ import annotations

import signal
import threading


def serve_until_signalled(controller) -> None:
    """Keep a started server (an aiosmtpd controller) running until SIGINT or SIGTERM, then stop it."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        stop.wait()
    finally:
        controller.stop()
