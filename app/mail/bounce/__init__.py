"""Delivery reports: bounces (RFC 3464 DSNs and the many that are not), ARF complaints, MDNs.

`detect_report(msg, parsed, envelope_from)` answers a `Bounce` (or None) with the
failed recipients, the original Message-ID (so the ingest service can mark our
outgoing message as bounced) and the diagnostic text. It asks the detectors of
`DETECTORS` in turn, one module per format, and the first answer wins:

1. `mdn.read_receipt`, `arf.complaint`, `dsn.delivery_status`: a `multipart/report`
   says what it is, and that is the most reliable word there is. A disposition
   notification (read receipt, kind "mdn") wins over a feedback report (ARF, kind
   "feedback"), which wins over a delivery-status report (per-recipient Action,
   Status, Final-Recipient, Diagnostic-Code);
2. `mailman.known_formats`: GNU Mailman's `flufl.bounce` detectors, which know the
   non-standard formats of Exim, Postfix, qmail, Exchange, Yahoo, AOL, GroupWise and
   others; only for a likely report, since they read every line of every part;
3. `heuristic.failed_recipients_header`: the X-Failed-Recipients header, when the
   detectors above found no recipient;
4. `heuristic.plain_text`, for what is left: a sender like MAILER-DAEMON or postmaster
   (or a null reverse path) together with a bounce-like subject, recipients read from
   the text near SMTP codes, and as a last resort the To of the returned original.

Standard formats come first because they are read field by field; each guess further
down accepts more and reads less exactly. Every detector takes the same arguments and
answers a `Bounce` or None (see `result.Detector`); shared reading lives in `_fields`
(report fields, addresses, the returned original) and `_text` (status codes, excerpts,
senders and subjects).

Detectors read LF or CRLF payloads (`\r?\n`, `splitlines`, and flufl's `body_line_iterator`, which
splits on LF only). A CR-only report would defeat them all, so `parse_message` turns bare CRs into
LFs before it parses (`app.mail.lines`), and the same report is read the same way with LF, CRLF or
CR-only line endings (tests/unit/test_bounce_line_endings.py, and sisimai's corpus in all three).

It never raises; a detector that breaks on odd input is logged at debug and skipped.
"""
from __future__ import annotations

import logging
from email.message import Message
from typing import TYPE_CHECKING

from app.mail.bounce import arf, dsn, heuristic, mailman, mdn
from app.mail.bounce.result import Bounce, Detector

if TYPE_CHECKING:  # only for annotations: parse.py imports this package
    from app.mail.parse import ParsedMessage

__all__ = ["DETECTORS", "Bounce", "Detector", "detect_report"]

log = logging.getLogger(__name__)

#: In order; the first that answers wins (the module docstring says why this order).
DETECTORS: tuple[Detector, ...] = (
    mdn.read_receipt,
    arf.complaint,
    dsn.delivery_status,
    mailman.known_formats,
    heuristic.failed_recipients_header,
    heuristic.plain_text,
)


def detect_report(msg: Message, parsed: ParsedMessage, envelope_from: str | None = None) -> Bounce | None:
    for detector in DETECTORS:
        try:
            found = detector(msg, parsed, envelope_from)
        except Exception:  # noqa: BLE001 - a detector's reading of odd input
            log.debug("bounce detector %s.%s failed", detector.__module__, detector.__name__, exc_info=True)
            continue
        if found is not None:
            return found
    return None
