"""Sender authentication on arrival (docs/inbound.md, "Sender authentication"): verdicts for the ingest job.

* `verdict_for_arrival(raw, client_ip, helo, mail_from)` runs the SPF, DKIM and DMARC checks
  (`app.mail.senderauth.check`) for mail that reached our ingress, with `DNS_RESOLVER` and
  `DNS_TIMEOUT_SECONDS`. It is called by the ingest job before it takes the address lock,
  never in the SMTP session; it never raises (a check that breaks is stored as `temperror`).
* `verdict_from_headers(raw)` reads the provider's `Authentication-Results` for polled mail
  (trusted authserv-ids: `AUTH_RESULTS_TRUSTED_HOSTS`); no network.
* `record(message, verdict)` writes a verdict on an inbound `Message`, with the own domain its
  From domain imitates (`app.mail.lookalike`) among the domains of our addresses.
"""
from __future__ import annotations

import logging

from flask import current_app
from sqlalchemy import select

from app.extensions import db
from app.mail import senderauth
from app.mail.lookalike import lookalike_of
from app.models.channels import Domain
from app.models.inbox import Message
from app.runtime.dkim import resolver

log = logging.getLogger(__name__)


def trusted_hosts() -> list[str]:
    value = current_app.config.get("AUTH_RESULTS_TRUSTED_HOSTS")
    if value is None:
        return list(senderauth.DEFAULT_TRUSTED_HOSTS)
    return [h.strip() for h in str(value).split(",") if h.strip()]


def verdict_for_arrival(raw: bytes, client_ip: str | None, helo: str | None,
                        mail_from: str | None) -> senderauth.Verdict:
    try:
        return senderauth.check(raw, client_ip=client_ip or "", helo=helo or "", mail_from=mail_from or "",
                                resolver=resolver())
    except Exception as exc:  # noqa: BLE001 - the mail is stored all the same, the verdict says why
        log.exception("sender authentication failed")
        return senderauth.Verdict(spf="temperror", dkim="temperror", dmarc="temperror",
                                  reason=f"the checks could not run: {exc.__class__.__name__}: {exc}"[:1000])


def verdict_from_headers(raw: bytes) -> senderauth.Verdict:
    try:
        return senderauth.from_authentication_results(raw, trusted_hosts())
    except Exception as exc:  # noqa: BLE001 - an unreadable header proves nothing
        log.warning("Authentication-Results unreadable: %s", exc)
        return senderauth.Verdict(reason="the Authentication-Results header could not be read: not checked")


def own_domains() -> list[str]:
    names = set(db.session.scalars(select(Domain.name)))
    names.add(current_app.config.get("PLATFORM_MAIL_DOMAIN") or "")
    return sorted(n.lower() for n in names if n)


def record(message: Message, verdict: senderauth.Verdict, domains: list[str] | None = None) -> None:
    """Store the verdict (and the look-alike test of its From domain) on an inbound message."""
    message.auth_spf, message.auth_spf_domain = verdict.spf, verdict.spf_domain[:253] or None
    message.auth_dkim, message.auth_dkim_domain = verdict.dkim, verdict.dkim_domain[:253] or None
    message.auth_dmarc, message.auth_from_domain = verdict.dmarc, verdict.from_domain[:253] or None
    message.auth_reason = verdict.reason or None
    lookalike = lookalike_of(verdict.from_domain, own_domains() if domains is None else domains)
    message.auth_lookalike = lookalike[:253] if lookalike else None
