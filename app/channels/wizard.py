"""Reading and changing the email channel configuration.

Draft and published: an `EmailAddress` row's columns are the admin's draft.
`publish()` copies drafts (of addresses and flows) into their published versions
atomically and records who, when, why and what changed. Everything that moves live
mail (ingress, polling, flows, sending) reads the configuration through
`published_address()`, which answers only for published, enabled, non-archived
addresses, so an unpublished edit never changes live traffic.

The rules of the setup live here, so the views and any later caller share them:

* domains: a custom domain is a valid DNS name, unique, and neither the platform
  domain nor below it; it can be deleted only when it holds no address;
* addresses: unique, on their domain, at most `MAX_ADDRESSES_PER_CUSTOM_DOMAIN` live
  (non-archived) addresses per custom domain; a platform address names the contact
  center's own address that forwards to it ("Forwarded from"), which must be
  outside the platform domain; passwords are encrypted at rest (`app.crypto`);
* the "New Email Address" / "Edit" wizard keeps its state in an `AddressSetup` row
  (never the session): each step validates and stores its values there, Test
  Connection and the Preview work on unsaved values, and `save_setup()` writes the
  address's draft in one go;
* delete: an address with conversations or messages is archived (kept, readable,
  no longer live, its published version dropped); any other address is erased.

Every service raises a `ChannelError` subclass (a `ValueError`) with a sentence
for the admin and, when it concerns one form field, that field's name. Services
flush but never commit: the caller (a view, a job, the demo seed) commits.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete, func, select

from app.channels.addresses import snapshot
from app.channels.domains import check_room_for_address, platform_domain_name
from app.channels.errors import AddressError, DomainError
from app.channels.validation import USAGE_LABELS, normalise_email, normalise_servers
from app.extensions import db
from app.models._types import utcnow
from app.models.channels import AddressSetup, Domain, DomainKind, EmailAddress, Usage

#: The wizard's steps, in order: (slug, title).
SETUP_STEPS = (("address", "Email Address"), ("design", "Email Template Design"), ("review", "Review"))

#: Unfinished wizards older than this are dropped when their owner starts another.
SETUP_MAX_AGE = timedelta(days=7)


# --- the setup wizard --------------------------------------------------------------------------

#: What the wizard edits: `EmailAddress` columns (the password travels separately, encrypted).
WIZARD_FIELDS = ("address", "display_name", "usage", "send_vcard", "enabled", "template_enabled", "header_html",
                 "footer_html", "forwarded_from", "username", "incoming_protocol", "incoming_host", "incoming_port",
                 "incoming_security", "outgoing_host", "outgoing_port", "outgoing_security",
                 "use_reply_to_identity", "channel_sessions")


def address_values(address: EmailAddress) -> dict:
    """The wizard values of an existing address (its draft)."""
    return {k: getattr(address, k) for k in WIZARD_FIELDS}


def default_values(domain: Domain) -> dict:
    values = dict.fromkeys(WIZARD_FIELDS)
    values.update(address="", display_name="", usage=Usage.BOTH.value, send_vcard=False, enabled=True,
                  template_enabled=False, header_html="", footer_html="", use_reply_to_identity=False,
                  channel_sessions=False)
    if domain.kind == DomainKind.CUSTOM.value:
        values.update(incoming_protocol="imap", incoming_port=993, incoming_security="ssl",
                      outgoing_port=465, outgoing_security="ssl")
    return values


def _drop_stale_setups(user_id: int) -> None:
    db.session.execute(delete(AddressSetup).where(
        AddressSetup.user_id == user_id, AddressSetup.updated_at < utcnow() - SETUP_MAX_AGE))


def start_setup(domain_id: int, user_id: int) -> AddressSetup:
    """Open a "New Email Address" wizard on a domain.

    Raises `AddressLimitReached` when the custom domain is full and `DomainError`
    for an unknown domain.
    """
    domain = db.session.get(Domain, domain_id)
    if domain is None:
        raise DomainError("This domain no longer exists.")
    check_room_for_address(domain)
    _drop_stale_setups(user_id)
    setup = AddressSetup(user_id=user_id, domain=domain, values=default_values(domain))
    db.session.add(setup)
    db.session.flush()
    return setup


def start_edit(address_id: int, user_id: int) -> AddressSetup:
    """The user's "Edit" wizard for an address: the open one, or a new one from its draft.

    Raises `AddressError` for an unknown or archived address.
    """
    address = db.session.get(EmailAddress, address_id)
    if address is None or address.archived_at is not None:
        raise AddressError("This email address no longer exists or is archived.")
    setup = db.session.scalar(select(AddressSetup).where(
        AddressSetup.address_id == address.id, AddressSetup.user_id == user_id).order_by(AddressSetup.id.desc()))
    if setup is None:
        _drop_stale_setups(user_id)
        setup = AddressSetup(user_id=user_id, domain_id=address.domain_id, address=address,
                             values=address_values(address))
        db.session.add(setup)
        db.session.flush()
    return setup


def get_setup(setup_id: int, user_id: int) -> AddressSetup | None:
    """The wizard, if it exists and belongs to this user."""
    setup = db.session.get(AddressSetup, setup_id)
    if setup is None or setup.user_id != user_id:
        return None
    return setup


def discard_setup(setup: AddressSetup) -> None:
    db.session.delete(setup)
    db.session.flush()


def _set_values(setup: AddressSetup, changes: dict) -> None:
    values = dict(setup.values or {})
    values.update(changes)
    setup.values = values  # a new dict, so the JSON column is written
    setup.updated_at = utcnow()


def _conflicting_address(address: str, setup: AddressSetup) -> EmailAddress | None:
    query = select(EmailAddress).where(func.lower(EmailAddress.address) == address)
    if setup.address_id is not None:
        query = query.where(EmailAddress.id != setup.address_id)
    return db.session.scalar(query)


def _restorable(conflict: EmailAddress | None, setup: AddressSetup) -> bool:
    """A new address may take over an archived row of the same domain (its conversations come back)."""
    return (conflict is not None and conflict.archived_at is not None and setup.address_id is None
            and conflict.domain_id == setup.domain_id)


def check_unique(address: str, setup: AddressSetup) -> EmailAddress | None:
    """Raise `AddressError` if another address has this name; return an archived row it would restore."""
    conflict = _conflicting_address(address, setup)
    if conflict is None:
        return None
    if _restorable(conflict, setup):
        return conflict
    if conflict.archived_at is not None:
        raise AddressError(f"{address} belongs to an archived address on another domain.", "address")
    raise AddressError(f"{address} already exists.", "address")


def update_address_step(setup: AddressSetup, values: dict, password: str | None = None) -> None:
    """Validate and store the "Email Address" step.

    `values` are the form's values (EmailAddress column names; for the platform
    domain `address` may be just the local part). `password` is what the admin
    typed; empty keeps the stored one. Raises `AddressError` naming the field.
    """
    domain = setup.domain
    clean: dict = {"display_name": (values.get("display_name") or "").strip(), "usage": values.get("usage"),
                   "send_vcard": bool(values.get("send_vcard")), "enabled": bool(values.get("enabled")),
                   "use_reply_to_identity": bool(values.get("use_reply_to_identity")),
                   "channel_sessions": bool(values.get("channel_sessions"))}
    if not clean["display_name"]:
        raise AddressError("Enter the display name customers see.", "display_name")
    if clean["usage"] not in USAGE_LABELS:
        raise AddressError("Choose how the address is used.", "usage")

    raw = (values.get("address") or "").strip()
    if domain.kind == DomainKind.PLATFORM.value:
        if "@" in raw:
            local, _, at_domain = raw.rpartition("@")
            if at_domain.lower() != domain.name:
                raise AddressError(f"Enter only the part before @{domain.name}.", "address")
            raw = local
        if not raw:
            raise AddressError(f"Enter the part before @{domain.name}.", "address")
        clean["address"] = normalise_email(f"{raw}@{domain.name}", "address")
        forwarded = normalise_email(values.get("forwarded_from") or "", "forwarded_from")
        platform = platform_domain_name()
        if forwarded.endswith("@" + platform) or forwarded.endswith("." + platform):
            raise AddressError("Forwarded from is the contact center's own address, outside the platform domain "
                               f"{platform}.", "forwarded_from")
        clean["forwarded_from"] = forwarded
        clean.update(username=None, incoming_protocol=None, incoming_host=None, incoming_port=None,
                     incoming_security=None, outgoing_host=None, outgoing_port=None, outgoing_security=None)
    else:
        clean["address"] = normalise_email(raw, "address")
        if clean["address"].rpartition("@")[2] != domain.name:
            raise AddressError(f"The address must be on {domain.name}.", "address")
        clean["forwarded_from"] = None
        clean["username"] = (values.get("username") or "").strip() or None
        clean.update(normalise_servers(values, clean["usage"]))
    check_unique(clean["address"], setup)

    if password:
        from app.crypto import encrypt_secret

        setup.password_encrypted = encrypt_secret(password)
    if domain.kind == DomainKind.CUSTOM.value and not stored_password(setup):
        raise AddressError("Enter the mailbox password.", "password")
    _set_values(setup, clean)
    db.session.flush()


def stored_password(setup: AddressSetup) -> bytes | None:
    """The encrypted password the wizard would save: typed in this wizard, else the address's."""
    if setup.password_encrypted:
        return setup.password_encrypted
    if setup.address is not None:
        return setup.address.password_encrypted
    return None


def update_design_step(setup: AddressSetup, template_enabled: bool) -> None:
    _set_values(setup, {"template_enabled": bool(template_enabled)})
    db.session.flush()


def set_template_part(setup: AddressSetup, part: str, html: str) -> str:
    """Store a sanitised header or footer; returns what was stored.

    Raises `AddressError` (field "html") for an unknown placeholder.
    """
    from app.mail.html import sanitize_html
    from app.mail.render import TemplateError, check_template

    if part not in ("header", "footer"):
        raise ValueError(part)
    try:
        check_template(html)
    except TemplateError as exc:
        raise AddressError(str(exc), "html") from None
    clean = sanitize_html(html or "").strip()
    _set_values(setup, {f"{part}_html": clean})
    db.session.flush()
    return clean


def setup_restores(setup: AddressSetup) -> EmailAddress | None:
    """The archived address this new wizard would restore on save, if any."""
    address = (setup.values or {}).get("address")
    if not address or setup.address_id is not None:
        return None
    conflict = _conflicting_address(address, setup)
    return conflict if _restorable(conflict, setup) else None


def setup_complete(setup: AddressSetup) -> bool:
    """True once the "Email Address" step has been filled in."""
    return bool((setup.values or {}).get("address")) and bool((setup.values or {}).get("display_name"))


def save_setup(setup: AddressSetup) -> tuple[EmailAddress, str]:
    """Write the wizard into the address's draft and close the wizard.

    Returns (address, what) with what in "created", "updated", "restored",
    "unchanged". Raises `AddressError` (incomplete, taken) or `AddressLimitReached`.
    """
    if not setup_complete(setup):
        raise AddressError("Fill in the Email Address step first.")
    domain = db.session.get(Domain, setup.domain_id, with_for_update=True)  # serialise the limit check
    values = dict(setup.values)
    restore = check_unique(values["address"], setup)
    if setup.address_id is None:
        check_room_for_address(domain)
        address = restore or EmailAddress(domain=domain)
        if restore is None:
            db.session.add(address)
        what = "restored" if restore is not None else "created"
    else:
        address = setup.address
        if address is None or address.archived_at is not None:
            raise AddressError("This email address no longer exists or is archived.")
        what = "updated"
    before = snapshot(address) if what == "updated" else None
    old_connection = _connection_key(address_values(address), address.password_encrypted) if what == "updated" else None

    for key in WIZARD_FIELDS:
        if key in values:
            setattr(address, key, values[key])
    if setup.password_encrypted:
        address.password_encrypted = setup.password_encrypted
    if restore is not None:
        address.archived_at = None
        address.domain = domain
    db.session.flush()

    new_connection = _connection_key(address_values(address), address.password_encrypted)
    result = setup.test_result
    from app.crypto import decrypt_secret

    tested = result and domain.kind == DomainKind.CUSTOM.value and result.get("fingerprint") == connection_fingerprint(
        address_values(address), decrypt_secret(address.password_encrypted) or "")
    if tested:
        address.last_test_ok = bool(result["ok"])
        address.last_test_at = datetime.fromisoformat(result["at"])
        address.last_test_message = result.get("summary")
    elif old_connection != new_connection:
        address.last_test_ok = address.last_test_at = address.last_test_message = None

    if what != "updated" or snapshot(address) != before:
        address.touch_draft()
    elif what == "updated":
        what = "unchanged"
    db.session.delete(setup)
    db.session.flush()
    return address, what


# --- Test Connection ---------------------------------------------------------------------------

def _connection_key(values: dict, password_encrypted: bytes | None) -> tuple:
    keys = ("address", "username", "incoming_protocol", "incoming_host", "incoming_port", "incoming_security",
            "outgoing_host", "outgoing_port", "outgoing_security")
    return tuple(values.get(k) for k in keys) + (password_encrypted,)


def connection_fingerprint(values: dict, password: str) -> str:
    """An HMAC (keyed with SECRET_KEY) of what a connection test proves: servers, login and password.

    It lets the saved address say whether the last test passed *for these very settings*
    without storing anything the password could be recovered from.
    """
    keys = ("address", "username", "usage", "incoming_protocol", "incoming_host", "incoming_port",
            "incoming_security", "outgoing_host", "outgoing_port", "outgoing_security")
    material = json.dumps([values.get(k) for k in keys] + [password], separators=(",", ":"))
    return hmac.new(current_app.config["SECRET_KEY"].encode(), material.encode(), hashlib.sha256).hexdigest()


def run_connection_test(setup: AddressSetup, values: dict, password: str | None) -> list:
    """Run Test Connection on unsaved values and remember the outcome in the wizard.

    `values` are the step's form values (validated the same way as saving them,
    so `AddressError` names a bad field); `password` is what the admin typed, or
    empty to use the stored one. Returns the `ProbeResult`s (incoming, outgoing,
    as the usage needs). Network failures are results, never exceptions.
    """
    from app.crypto import decrypt_secret
    from app.mail import probe
    from app.runtime.tls import configured_context

    usage = values.get("usage") if values.get("usage") in USAGE_LABELS else Usage.BOTH.value
    address = normalise_email(values.get("address") or "", "address")
    server = normalise_servers(values, usage)
    clean = {"address": address, "username": (values.get("username") or "").strip() or None, "usage": usage,
             **server}
    password = password or decrypt_secret(stored_password(setup)) or ""
    if not password:
        raise AddressError("Enter the mailbox password to test the connection.", "password")
    incoming = outgoing = None
    if clean["incoming_host"] and usage != Usage.OUTBOUND.value:
        incoming = probe.ServerSettings(clean["incoming_protocol"], clean["incoming_host"], clean["incoming_port"],
                                        clean["incoming_security"])
    if clean["outgoing_host"] and usage != Usage.INBOUND.value:
        outgoing = probe.ServerSettings("smtp", clean["outgoing_host"], clean["outgoing_port"],
                                        clean["outgoing_security"])
    if incoming is None and outgoing is None:
        raise AddressError("Enter the incoming or outgoing server to test.", "incoming_host")
    results = probe.probe(incoming, outgoing, clean["username"] or address, password,
                          timeout=float(current_app.config["PROBE_TIMEOUT_SECONDS"]), context=configured_context(),
                          local_hostname=platform_domain_name())
    ok = all(r.ok for r in results)
    setup.test_result = {
        "ok": ok, "at": utcnow().isoformat(), "fingerprint": connection_fingerprint(clean, password),
        "results": [r.to_dict() for r in results],
        "summary": " ".join(r.message + (f" ({r.detail})" if r.detail else "") for r in results),
    }
    setup.updated_at = utcnow()
    db.session.flush()
    return results


def setup_test_outcome(setup: AddressSetup) -> bool | None:
    """Whether the wizard's last Test Connection passed, if it tested exactly its current settings; else None."""
    from app.crypto import decrypt_secret

    result = setup.test_result
    if not result or setup.domain.kind != DomainKind.CUSTOM.value or not setup_complete(setup):
        return None
    fingerprint = connection_fingerprint(setup.values, decrypt_secret(stored_password(setup)) or "")
    return bool(result["ok"]) if result.get("fingerprint") == fingerprint else None
