"""DKIM keys of the sending domains: add, verify, make active, sign; the SPF/DMARC/MX checks of a domain.

The admin page (Channels › DKIM Configuration), `flask dkim ...` and cron share these
functions; they flush and leave the commit to their caller. The rules:

* a key is added (generated, RSA 2048, or pasted, 1024-2048 bits) with status Pending and
  inactive; its private key is stored encrypted and never shown again;
* `verify_key` looks its record up (app.mail.dnscheck) and stores the status; the first key
  of a domain that reaches Success becomes active by itself, later ones (rotation) when an
  admin presses "Make active", which only a Success key can be;
* cron (`recheck_dkim_keys`) checks again keys that are Pending or Temporary Failure, every
  `DKIM_RECHECK_SECONDS`, until they succeed;
* the send job signs each message of a domain with the domain's active key
  (`signing_key` + `app.mail.dkim.sign`) right before SMTP: see outbound.deliver. A key
  that later fails its check keeps signing (a DNS outage must not stop signing); admins
  see its status on the page.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import or_, select, update

from app.crypto import decrypt_secret, encrypt_secret
from app.extensions import db
from app.mail import dkim as dkim_format
from app.mail.dnscheck import (PENDING, SUCCESS, TEMPORARY, Check, Resolver, check_dkim, check_dmarc, check_mx,
                               check_spf)
from app.models._types import utcnow
from app.models.dkim import DkimKey
from app.queues import enqueue

log = logging.getLogger(__name__)


class DkimError(ValueError):
    """Nothing was changed; the text says why, in words for the admin."""


@dataclass(frozen=True)
class SigningKey:
    domain: str
    selector: str
    pem: str


def resolver() -> Resolver:
    cfg = current_app.config
    return Resolver(cfg.get("DNS_RESOLVER") or "", timeout=float(cfg.get("DNS_TIMEOUT_SECONDS") or 5))


def platform_domain() -> str:
    return current_app.config["PLATFORM_MAIL_DOMAIN"].lower()


def clean_domain(domain: str) -> str:
    name = (domain or "").strip().lower().rstrip(".")
    if not name or "." not in name or len(name) > 253 or any(not part for part in name.split(".")):
        raise DkimError("Enter a domain name, for example mail.example.com.")
    return name


def add_key(domain: str, selector: str, private_key: str | None = None) -> DkimKey:
    """A new key for `domain` under `selector`: the pasted PEM, or a generated RSA 2048 key when None.

    Raises `DkimError` (bad domain or selector, the selector is taken, the key is unusable).
    """
    name = clean_domain(domain)
    try:
        chosen = dkim_format.check_selector(selector)
        pem = dkim_format.check_private_key(private_key) if private_key is not None else \
            dkim_format.generate_private_key()
    except ValueError as exc:
        raise DkimError(str(exc)) from None
    if db.session.scalar(select(DkimKey.id).where(DkimKey.domain == name, DkimKey.selector == chosen)):
        raise DkimError(f"{name} already has a key with the selector {chosen}; choose another selector.")
    key = DkimKey(domain=name, selector=chosen, private_key_encrypted=encrypt_secret(pem), status=PENDING,
                  active=False)
    db.session.add(key)
    db.session.flush()
    return key


def next_selector(domain: str) -> str:
    """A selector not yet used for the domain: s1, s2, ..."""
    taken = set(db.session.scalars(select(DkimKey.selector).where(DkimKey.domain == domain.lower())))
    number = 1
    while f"s{number}" in taken:
        number += 1
    return f"s{number}"


def record_of(key: DkimKey) -> dict:
    """What to publish for a key: {domain, selector, name, value, strings} (strings: the 255-byte split)."""
    value = dkim_format.record_value(decrypt_secret(key.private_key_encrypted))
    return {"domain": key.domain, "selector": key.selector, "name": dkim_format.record_name(key.selector, key.domain),
            "value": value, "strings": dkim_format.txt_strings(value)}


def verify_key(key: DkimKey) -> Check:
    """Look the key's record up now and store the result; the domain's first Success key becomes active."""
    record = record_of(key)
    check = check_dkim(resolver(), record["name"], record["value"])
    key.status, key.status_detail, key.last_checked_at = check.status, check.detail, utcnow()
    if check.status == SUCCESS and not db.session.scalar(
            select(DkimKey.id).where(DkimKey.domain == key.domain, DkimKey.active.is_(True), DkimKey.id != key.id)):
        key.active = True
    db.session.flush()
    return check


def make_active(key: DkimKey) -> None:
    """The key signs the domain's mail from now on (the others stop). Raises `DkimError` unless it is verified."""
    if key.status != SUCCESS:
        raise DkimError(f"Verify {key.selector}._domainkey.{key.domain} first: only a key whose record was found "
                        "(Success) can sign, or receivers would reject the signatures.")
    db.session.execute(update(DkimKey).where(DkimKey.domain == key.domain, DkimKey.id != key.id).values(active=False))
    key.active = True
    db.session.flush()


def delete_key(key: DkimKey) -> None:
    """Remove a key. Raises `DkimError` for the active key of a domain that has others (make another active first)."""
    if key.active and db.session.scalar(select(DkimKey.id).where(DkimKey.domain == key.domain, DkimKey.id != key.id)):
        raise DkimError("This is the key that signs; make another key active before deleting it.")
    db.session.delete(key)
    db.session.flush()


def keys_of(domain: str | None = None) -> list[DkimKey]:
    query = select(DkimKey).order_by(DkimKey.domain, DkimKey.created_at, DkimKey.id)
    if domain is not None:
        query = query.where(DkimKey.domain == domain.lower())
    return list(db.session.scalars(query))


def active_key(domain: str) -> DkimKey | None:
    return db.session.scalar(select(DkimKey).where(DkimKey.domain == domain.lower(), DkimKey.active.is_(True)))


def signing_key(domain: str) -> SigningKey | None:
    """The key that signs mail From this domain (the active, once verified, key), decrypted; None: send unsigned."""
    key = active_key(domain)
    if key is None:
        return None
    return SigningKey(key.domain, key.selector, decrypt_secret(key.private_key_encrypted))


def dns_checks(domain: str) -> list[Check]:
    """SPF, DMARC and, for the platform domain, MX of a sending domain, looked up now (nothing stored)."""
    name = clean_domain(domain)
    cfg = current_app.config
    lookups = resolver()
    checks = [check_spf(lookups, name, cfg.get("SPF_INCLUDE") or ""), check_dmarc(lookups, name)]
    if name == platform_domain():
        host = cfg.get("MX_HOST") or cfg.get("INGRESS_HOSTNAME") or ""
        if host:
            checks.append(check_mx(lookups, name, host))
        else:
            checks.append(Check("MX", name, "", PENDING, "Set MX_HOST (or INGRESS_HOSTNAME) to the ingress host name "
                                                         "to check where the MX records point."))
    return checks


def domain_checks(domain: str) -> list[Check]:
    """DKIM (the active key, else the newest; its result stored), then `dns_checks`: all looked up now."""
    name = clean_domain(domain)
    key = active_key(name) or next(iter(reversed(keys_of(name))), None)
    if key is not None:
        dkim_check = verify_key(key)
    else:
        dkim_check = Check("DKIM", f"<selector>._domainkey.{name}", "", PENDING, f"No DKIM key for {name} yet: add one.")
    return [dkim_check, *dns_checks(name)]


def _due_for_recheck():
    cutoff = utcnow() - timedelta(seconds=current_app.config["DKIM_RECHECK_SECONDS"])
    return (DkimKey.status.in_((PENDING, TEMPORARY)),
            or_(DkimKey.last_checked_at.is_(None), DkimKey.last_checked_at < cutoff))


def enqueue_dkim_rechecks() -> None:
    """Cron: when a key waits for its record (Pending, Temporary Failure), one job (`dkim-recheck`) looks again.

    The lookups run in a worker, not in the cron tick, so a DNS server that does not
    answer never holds up the other periodic work.
    """
    if db.session.scalar(select(DkimKey.id).where(*_due_for_recheck()).limit(1)) is not None:
        db.session.rollback()
        enqueue("poll", "jobs.dkim.recheck_dkim_keys_job", job_id="dkim-recheck")
    else:
        db.session.rollback()


def recheck_dkim_keys() -> int:
    """The job: check again the keys still Pending or in Temporary Failure whose last check is old enough. Commits."""
    keys = list(db.session.scalars(select(DkimKey).where(*_due_for_recheck()).order_by(DkimKey.id).limit(50)))
    for key in keys:
        try:
            verify_key(key)
        except Exception:  # noqa: BLE001 - one unreadable key must not stop the others' checks
            log.exception("DKIM check of %s._domainkey.%s failed", key.selector, key.domain)
            key.last_checked_at = utcnow()
    db.session.commit()
    return len(keys)
