"""The "New Email Address" / "Edit" wizard: its state, its steps, and the address rules they check.

The wizard keeps its state in an `AddressSetup` row (never the session), so reload,
back and a second tab all work: each step validates its values and stores them
there, Test Connection (`connection_test`) and the Preview (`preview`) work on those
unsaved values, and `addresses.save_setup()` writes the address's draft in one go.

The rules of an address: unique (a new address on the same domain may take over an
archived one, whose conversations come back), on its domain, at most
`MAX_ADDRESSES_PER_CUSTOM_DOMAIN` live addresses per custom domain (`domains`); a
platform address names the contact center's own address that forwards to it
("Forwarded from"), outside the platform domain; a custom one needs its mailbox
password, encrypted at rest (`app.crypto`). Editing an address keeps its stored passwords
when the password fields stay empty, but not for a server it was not typed for: changing
where a side signs in (`sign_in_target`) needs that side's password typed again
(`check_passwords_retyped`), so a stored password can never be sent somewhere new.

Services raise `AddressError` / `DomainError` / `AddressLimitReached` naming the form
field, and flush but never commit: the caller commits.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, func, select

from app.channels.domains import check_room_for_address, platform_domain_name
from app.channels import sign_in
from app.channels.errors import AddressError, AddressErrors, DomainError
from app.channels.validation import USAGE_LABELS, normalise_email, normalise_servers
from app.crypto import encrypt_secret
from app.extensions import db
from app.mail import netguard
from app.mail.html import sanitize_html
from app.mail.render import TemplateError, check_template
from app.mail.tls import read_ca_pem
from app.models._types import utcnow
from app.models.channels import (WHEN_DISABLED_LABELS, AddressSetup, AuthMethod, Domain, DomainKind, EmailAddress, Usage,
                                 WhenDisabled)
from app.runtime.template_images import ImageRefused, html_for_storage

#: The wizard's steps, in order: (slug, title).
SETUP_STEPS = (("address", "Email Address"), ("design", "Email Template Design"), ("review", "Review"))

#: Unfinished wizards older than this are dropped when their owner starts another.
SETUP_MAX_AGE = timedelta(days=7)


#: What the wizard edits: `EmailAddress` columns (the password travels separately, encrypted).
WIZARD_FIELDS = ("address", "display_name", "usage", "send_vcard", "enabled", "when_disabled", "template_enabled",
                 "header_html",
                 "footer_html", "forwarded_from", "username", "incoming_protocol", "incoming_host", "incoming_port",
                 "incoming_security", "outgoing_host", "outgoing_port", "outgoing_security",
                 "use_reply_to_identity", "channel_sessions", "tls_ca_pem", "smtp_username", "save_to_sent",
                 "allow_plaintext_auth", "auth_method", "oauth_provider", "smtp_no_auth")


#: Where the incoming side's password goes, and where the outgoing side's.
_SIDE_KEYS = {"incoming": ("incoming_protocol", "incoming_host", "incoming_port", "incoming_security"),
              "outgoing": ("outgoing_host", "outgoing_port", "outgoing_security")}
_SIDE_USAGES = {"incoming": (Usage.INBOUND.value, Usage.BOTH.value),
                "outgoing": (Usage.OUTBOUND.value, Usage.BOTH.value)}


def sign_in_target(values: dict, side: str) -> tuple | None:
    """Where a side ("incoming", "outgoing") signs in, and as whom; None when the usage leaves it unused."""
    if values.get("usage") not in _SIDE_USAGES[side]:
        return None
    if side == "outgoing" and values.get("smtp_no_auth"):
        return tuple(values.get(k) for k in _SIDE_KEYS[side]) + ("nobody", None)  # no password goes there
    mailbox = ("mailbox", values.get("username") or values.get("address"))
    who = ("smtp", values["smtp_username"]) if side == "outgoing" and values.get("smtp_username") else mailbox
    return tuple(values.get(k) for k in _SIDE_KEYS[side]) + who


def check_app_token_hosts(clean: dict) -> None:
    """An app-only token opens every mailbox of its tenant: send it only to Exchange Online's servers.

    The hosts must end in one of `OAUTH_MICROSOFT_APP_HOSTS`; a private or loopback address is
    accepted too when `MAIL_ALLOW_PRIVATE_HOSTS` is on (tests, a proxy inside the network).
    Raises `AddressError` on the first server that is neither.
    """
    if clean.get("oauth_provider") != sign_in.APP_ONLY:
        return
    config = current_app.config
    suffixes = tuple(s.lower() for s in config["OAUTH_MICROSOFT_APP_HOSTS"])
    for side, field in (("incoming", "incoming_host"), ("outgoing", "outgoing_host")):
        host = (clean.get(field) or "").lower().rstrip(".")
        if not host or sign_in_target(clean, side) is None:
            continue
        if any(host == s.lstrip(".") or host.endswith(s if s.startswith(".") else "." + s) for s in suffixes):
            continue
        if config.get("MAIL_ALLOW_PRIVATE_HOSTS") and (host == "localhost" or netguard.is_non_public_literal(host)):
            continue
        raise AddressError(f"{host} is not an Exchange Online server: the app's token opens every mailbox of the "
                           f"tenant, so it is only sent to hosts ending in {', '.join(suffixes)} "
                           "(OAUTH_MICROSOFT_APP_HOSTS).", field)


def check_passwords_retyped(setup: AddressSetup, clean: dict, password: str | None,
                            smtp_password: str | None, signing_in: bool = False) -> None:
    """Refuse to send an address's stored password to a server (or as a user) it was not stored for.

    `clean` are the step's validated values. When a side's server, port, security,
    protocol or user name differs from the address's (or the side newly comes into
    use), its password must have been typed in this wizard: `password` / `smtp_password`
    now, or earlier (kept on the wizard). An OAuth mailbox must have signed in again in
    this wizard instead (`signing_in`: the step is saved on the way to doing so). Raises
    `AddressError` on that password's (or the kind's) field.
    """
    saved = setup.address
    if saved is None:
        return  # a new address: every password it has was typed in this wizard
    before = address_values(saved)
    for side, where in (("incoming", "incoming server"), ("outgoing", "outgoing (SMTP) server")):
        target = sign_in_target(clean, side)
        if target is None or target == sign_in_target(before, side) or target[-2] == "nobody":
            continue
        if clean.get("oauth_provider") == sign_in.APP_ONLY:
            continue  # no stored secret of the address: tokens come from the domain's app at each sign-in
        if clean.get("auth_method") == AuthMethod.OAUTH.value:
            if not signing_in and not (setup.oauth_sign_in or {}).get("tokens"):  # a bearer token, likewise
                raise AddressError(f"You changed the {where}: sign in again so the token is only sent to the "
                                   "servers it was given for.", "mailbox_kind")
            continue
        own_smtp = side == "outgoing" and bool(clean.get("smtp_username"))
        typed = (smtp_password or setup.smtp_password_encrypted) if own_smtp \
            else (password or setup.password_encrypted)
        if not typed:
            which = "the SMTP password" if own_smtp else "the mailbox password"
            raise AddressError(f"You changed the {where} or how it signs in: type {which} again. A stored password "
                               "is only sent to the server it was typed for.",
                               "smtp_password" if own_smtp else "password")


def address_values(address: EmailAddress) -> dict:
    """The wizard values of an existing address (its draft)."""
    return {k: getattr(address, k) for k in WIZARD_FIELDS}


def default_values(domain: Domain) -> dict:
    values = dict.fromkeys(WIZARD_FIELDS)
    values.update(address="", display_name="", usage=Usage.BOTH.value, send_vcard=False, enabled=True, smtp_no_auth=False,
                  when_disabled=WhenDisabled.HOLD.value,
                  template_enabled=False, header_html="", footer_html="", use_reply_to_identity=False,
                  channel_sessions=False, auth_method=AuthMethod.PASSWORD.value, oauth_provider=None)
    if domain.kind == DomainKind.CUSTOM.value:
        values.update(incoming_protocol="imap", incoming_port=993, incoming_security="ssl",
                      outgoing_port=465, outgoing_security="ssl")
    if domain.microsoft_exchange:  # its addresses are app-only, on Exchange Online's servers, unless changed
        values.update(sign_in.SERVER_PRESETS[sign_in.APP_ONLY], auth_method=AuthMethod.OAUTH.value,
                      oauth_provider=sign_in.APP_ONLY)
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


def get_setup(token: str, user_id: int) -> AddressSetup | None:
    """The wizard with this (unguessable) token in its URLs, if it exists and belongs to this user."""
    setup = db.session.scalar(select(AddressSetup).where(AddressSetup.token == token)) if token else None
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


def update_address_step(setup: AddressSetup, values: dict, password: str | None = None,
                        smtp_password: str | None = None, signing_in: bool = False) -> None:
    """Validate and store the "Email Address" step.

    `values` are the form's values (EmailAddress column names; for the platform
    domain `address` may be just the local part). `password` is what the admin
    typed; empty keeps the stored one. `smtp_password` likewise, for an outgoing server with a
    sign-in of its own (`smtp_username`; without one the mailbox's sign-in is used).
    `values["mailbox_kind"]` is "password" or an OAuth provider (`sign_in`): such a mailbox needs
    no password but a sign-in, except while `signing_in` (the step is saved on the way to it).
    Raises `AddressError` naming the field, or `AddressErrors` with every problem found at once.
    """
    domain = setup.domain
    errors: list[AddressError] = []  # every independent problem, shown together

    def checked(check, *args, default=None):
        try:
            return check(*args)
        except AddressErrors as exc:
            errors.extend(exc.errors)
        except AddressError as exc:
            errors.append(exc)
        return default

    clean: dict = {"display_name": (values.get("display_name") or "").strip(), "usage": values.get("usage"),
                   "send_vcard": bool(values.get("send_vcard")), "enabled": bool(values.get("enabled")),
                   "when_disabled": values.get("when_disabled") or WhenDisabled.HOLD.value,
                   "use_reply_to_identity": bool(values.get("use_reply_to_identity")),
                   "channel_sessions": bool(values.get("channel_sessions"))}
    if not clean["display_name"]:
        errors.append(AddressError("Enter the display name customers see.", "display_name"))
    if clean["usage"] not in USAGE_LABELS:
        errors.append(AddressError("Choose how the address is used.", "usage"))
        clean["usage"] = Usage.BOTH.value  # to check the rest against
    if clean["when_disabled"] not in WHEN_DISABLED_LABELS:
        errors.append(AddressError("Choose what happens to new mail while the channel is disabled.", "when_disabled"))

    raw = (values.get("address") or "").strip()
    if domain.kind == DomainKind.PLATFORM.value:
        if "@" in raw:
            local, _, at_domain = raw.rpartition("@")
            if at_domain.lower() != domain.name:
                errors.append(AddressError(f"Enter only the part before @{domain.name}.", "address"))
            raw = local
        if not raw:
            errors.append(AddressError(f"Enter the part before @{domain.name}.", "address"))
        elif not any(e.field == "address" for e in errors):
            clean["address"] = checked(normalise_email, f"{raw}@{domain.name}", "address")
        forwarded = checked(normalise_email, values.get("forwarded_from") or "", "forwarded_from")
        platform = platform_domain_name()
        if forwarded and (forwarded.endswith("@" + platform) or forwarded.endswith("." + platform)):
            errors.append(AddressError("Forwarded from is the contact center's own address, outside the platform "
                                       f"domain {platform}.", "forwarded_from"))
        clean["forwarded_from"] = forwarded
        clean.update(auth_method=AuthMethod.PASSWORD.value, oauth_provider=None)
        clean.update(tls_ca_pem=None, smtp_username=None, smtp_no_auth=False, save_to_sent=False,
                     allow_plaintext_auth=False, username=None,
                     incoming_protocol=None, incoming_host=None, incoming_port=None,
                     incoming_security=None, outgoing_host=None, outgoing_port=None, outgoing_security=None)
    else:
        clean["address"] = checked(normalise_email, raw, "address")
        if clean["address"] and clean["address"].rpartition("@")[2] != domain.name:
            errors.append(AddressError(f"The address must be on {domain.name}.", "address"))
        clean["forwarded_from"] = None
        clean["username"] = (values.get("username") or "").strip() or None
        kind = values.get("mailbox_kind") or sign_in.PASSWORD
        if kind != sign_in.PASSWORD:
            sign_in.usable_provider(kind, domain)
            values = with_preset(values, kind)
        clean.update(auth_method=AuthMethod.PASSWORD.value if kind == sign_in.PASSWORD else AuthMethod.OAUTH.value,
                     oauth_provider=None if kind == sign_in.PASSWORD else kind)
        clean.update(checked(normalise_servers, values, clean["usage"], default={}))
        clean["tls_ca_pem"] = checked(clean_ca, values, setup)
        clean["smtp_no_auth"] = bool(values.get("smtp_no_auth")) and kind == sign_in.PASSWORD
        clean["smtp_username"] = (values.get("smtp_username") or "").strip() or None \
            if kind == sign_in.PASSWORD and not clean["smtp_no_auth"] \
            else None  # an OAuth mailbox sends with its token; a relay without sign-in needs no user
        clean["save_to_sent"] = bool(values.get("save_to_sent"))
        clean["allow_plaintext_auth"] = bool(values.get("allow_plaintext_auth"))
        if clean["save_to_sent"] and values.get("incoming_protocol") not in (None, "", "imap"):
            errors.append(AddressError("Saving replies to the Sent folder needs an IMAP mailbox (POP3 has no "
                                       "folders).", "save_to_sent"))
        if clean.get("oauth_provider") is None and not password and not stored_password(setup) \
                and not (clean["usage"] == Usage.OUTBOUND.value and clean["smtp_no_auth"]):
            errors.append(AddressError("Enter the mailbox password.", "password"))
        if clean.get("smtp_username") and not smtp_password and not stored_smtp_password(setup):
            errors.append(AddressError("Enter the outgoing server's password, or leave its user name empty to sign "
                                       "in as the mailbox.", "smtp_password"))
    if clean.get("address"):
        checked(check_unique, clean["address"], setup)
    AddressErrors.raise_any(errors)
    if domain.kind == DomainKind.CUSTOM.value:
        check_passwords_retyped(setup, clean, password, smtp_password, signing_in)
        check_app_token_hosts(clean)

    if password:
        setup.password_encrypted = encrypt_secret(password)
    if clean.get("oauth_provider"):
        if not signing_in and not sign_in.has_sign_in(setup, clean["oauth_provider"]):
            name = sign_in.usable_provider(clean["oauth_provider"], domain).name
            raise AddressError(f"Sign in with {name} first: the mailbox is connected by signing in.", "mailbox_kind")
    if smtp_password:
        setup.smtp_password_encrypted = encrypt_secret(smtp_password)
    _set_values(setup, clean)
    db.session.flush()


def with_preset(values: dict, kind: str) -> dict:
    """The values with the provider's documented servers where the admin left a side's server empty."""
    preset = sign_in.SERVER_PRESETS.get(kind)
    if not preset:
        return values
    values = dict(values)
    for side in ("incoming", "outgoing"):
        if not (values.get(f"{side}_host") or "").strip():
            values.update({k: v for k, v in preset.items() if k.startswith(side)})
    return values


def clean_ca(values: dict, setup: AddressSetup) -> str | None:
    """The private CA the step keeps: `values["tls_ca_pem"]` is an upload (PEM bytes or text), "" removes
    the stored one, absent keeps it. Raises `AddressError` (field "tls_ca") for a file that is no usable CA."""
    if "tls_ca_pem" not in values:
        return (setup.values or {}).get("tls_ca_pem")
    if not values["tls_ca_pem"]:
        return None
    try:
        return read_ca_pem(values["tls_ca_pem"])
    except ValueError as exc:
        raise AddressError(str(exc), "tls_ca") from None


def _typed_or_saved(setup: AddressSetup, column: str) -> bytes | None:
    """An encrypted secret the wizard would save: typed in this wizard, else the address's."""
    return getattr(setup, column) or (getattr(setup.address, column) if setup.address is not None else None)


def stored_password(setup: AddressSetup) -> bytes | None:
    """The encrypted mailbox password the wizard would save."""
    return _typed_or_saved(setup, "password_encrypted")


def stored_smtp_password(setup: AddressSetup) -> bytes | None:
    """The encrypted SMTP password the wizard would save."""
    return _typed_or_saved(setup, "smtp_password_encrypted")


def update_design_step(setup: AddressSetup, template_enabled: bool) -> None:
    _set_values(setup, {"template_enabled": bool(template_enabled)})
    db.session.flush()


def set_template_part(setup: AddressSetup, part: str, html: str, editor_url: Callable[[str], str] | None = None,
                      uploaded_by_id: int | None = None) -> str:
    """Store a sanitised header or footer; returns what was stored.

    Images shown from `editor_url(sha256)` (the editor's uploads) and pasted `data:` images are
    stored as `cid:` images, sent inline; any other image (a link to the web) is removed.
    Raises `AddressError` (field "html") for an unknown placeholder or an image that cannot be stored.
    """
    if part not in ("header", "footer"):
        raise ValueError(part)
    try:
        check_template(html)
    except TemplateError as exc:
        raise AddressError(str(exc), "html") from None
    try:
        html = html_for_storage(html or "", editor_url, uploaded_by_id) if editor_url else html
    except ImageRefused as exc:
        raise AddressError(str(exc), "html") from None
    clean = sanitize_html(html or "", remote_images=False).strip()
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
