"""Test Connection: log in to a custom domain's mailbox servers with unsaved wizard values.

The probe (`app.mail.probe`) runs on the values as typed, validated the same way as
saving them, and its outcome is kept on the wizard with an HMAC fingerprint of the
settings it proved (`connection_fingerprint`), never the password. Saving the wizard
carries a passing (or failing) test over to the address only when the fingerprint
still matches its settings, and forgets an earlier test when the connection changed.

It runs under the same rules as live traffic: a stored password goes only to the servers
it was typed for (`wizard.check_passwords_retyped`), and the servers must be public and
signed in to with encryption unless the settings allow otherwise (`app.runtime.netpolicy`).
"""
from __future__ import annotations

import hashlib
import hmac
import json

from flask import current_app

from app.channels.domains import platform_domain_name
from app.channels.errors import AddressError
from app.channels.validation import USAGE_LABELS, normalise_email, normalise_servers
from app.channels import sign_in
from app.channels.wizard import (check_app_token_hosts, check_passwords_retyped, clean_ca, setup_complete,
                                  stored_password,
                                  stored_smtp_password, with_preset)
from app.crypto import decrypt_secret
from app.extensions import db
from app.mail import oauth, probe
from app.models._types import utcnow
from app.models.channels import AddressSetup, DomainKind, Usage
from app.runtime.netpolicy import mail_policy
from app.runtime.oauth import mechanism_of
from app.runtime.tls import configured_context

def connection_key(values: dict, password_encrypted: bytes | None, smtp_password_encrypted: bytes | None = None) -> tuple:
    """What identifies a mailbox connection: servers, logins and (encrypted) passwords."""
    keys = ("address", "username", "incoming_protocol", "incoming_host", "incoming_port", "incoming_security",
            "outgoing_host", "outgoing_port", "outgoing_security", "tls_ca_pem", "smtp_username", "auth_method",
            "oauth_provider", "smtp_no_auth")
    return tuple(values.get(k) for k in keys) + (bool(values.get("allow_plaintext_auth")), password_encrypted,
                                                 smtp_password_encrypted)


def connection_fingerprint(values: dict, password: str, smtp_password: str = "") -> str:
    """An HMAC (keyed with SECRET_KEY) of what a connection test proves: servers, login and password.

    It lets the saved address say whether the last test passed *for these very settings*
    without storing anything the password could be recovered from.
    """
    keys = ("address", "username", "usage", "incoming_protocol", "incoming_host", "incoming_port",
            "incoming_security", "outgoing_host", "outgoing_port", "outgoing_security", "tls_ca_pem", "smtp_username",
            "auth_method", "oauth_provider")
    if values.get("smtp_no_auth"):  # older fingerprints (without the key) stay valid for addresses that sign in
        keys += ("smtp_no_auth",)
    if values.get("auth_method") == "oauth":  # signs in with tokens: a password left from before proves nothing
        password = smtp_password = ""
    material = json.dumps([values.get(k) for k in keys] + [bool(values.get("allow_plaintext_auth")), password,
                                                          smtp_password if values.get("smtp_username") else ""],
                          separators=(",", ":"))
    return hmac.new(current_app.config["SECRET_KEY"].encode(), material.encode(), hashlib.sha256).hexdigest()


def run_connection_test(setup: AddressSetup, values: dict, password: str | None,
                        smtp_password: str | None = None) -> list:
    """Run Test Connection on unsaved values and remember the outcome in the wizard.

    `values` are the step's form values (validated the same way as saving them,
    so `AddressError` names a bad field); `password` is what the admin typed, or
    empty to use the stored one; `smtp_password` likewise for an outgoing server
    with its own sign-in (`smtp_username`). Returns the `ProbeResult`s (incoming, outgoing,
    as the usage needs). Network failures are results, never exceptions.
    """
    usage = values.get("usage") if values.get("usage") in USAGE_LABELS else Usage.BOTH.value
    address = normalise_email(values.get("address") or "", "address")
    kind = values.get("mailbox_kind") or sign_in.PASSWORD
    if kind != sign_in.PASSWORD:  # an OAuth mailbox: the provider's servers unless typed, and a token
        sign_in.usable_provider(kind, setup.domain)
        values = {**with_preset(values, kind), "smtp_username": None, "smtp_no_auth": False}
    server = normalise_servers(values, usage)
    no_auth = bool(values.get("smtp_no_auth"))
    clean = {"address": address, "username": (values.get("username") or "").strip() or None, "usage": usage,
             **server, "tls_ca_pem": clean_ca(values, setup), "smtp_no_auth": no_auth,
             "smtp_username": None if no_auth else (values.get("smtp_username") or "").strip() or None,
             "allow_plaintext_auth": bool(values.get("allow_plaintext_auth")),
             "auth_method": "password" if kind == sign_in.PASSWORD else "oauth",
             "oauth_provider": None if kind == sign_in.PASSWORD else kind}
    check_passwords_retyped(setup, clean, password, smtp_password)
    check_app_token_hosts(clean)
    if kind != sign_in.PASSWORD:
        return _remember(setup, clean, "", "", oauth_connection_test(setup, clean, kind))
    password = password or decrypt_secret(stored_password(setup)) or ""
    incoming, outgoing = _servers(clean)
    if not password and (incoming is not None or not no_auth):  # a relay without sign-in alone needs none
        raise AddressError("Enter the mailbox password to test the connection.", "password")
    smtp_password = (smtp_password or decrypt_secret(stored_smtp_password(setup)) or "") if clean["smtp_username"] \
        else ""
    if clean["smtp_username"] and not smtp_password:
        raise AddressError("Enter the outgoing server's password to test the connection.", "smtp_password")
    results = probe.probe(incoming, outgoing, clean["username"] or address, password,
                          timeout=float(current_app.config["PROBE_TIMEOUT_SECONDS"]), context=configured_context(clean["tls_ca_pem"]),
                          local_hostname=platform_domain_name(),
                          outgoing_login=clean["smtp_username"], outgoing_password=smtp_password or None,
                          outgoing_no_auth=no_auth,
                          policy=mail_policy(clean["allow_plaintext_auth"]))
    return _remember(setup, clean, password, smtp_password, results)


def _servers(clean: dict) -> tuple:
    """The (incoming, outgoing) `ServerSettings` to probe, as the usage needs. `AddressError` when neither."""
    incoming = outgoing = None
    if clean["incoming_host"] and clean["usage"] != Usage.OUTBOUND.value:
        incoming = probe.ServerSettings(clean["incoming_protocol"], clean["incoming_host"], clean["incoming_port"],
                                        clean["incoming_security"])
    if clean["outgoing_host"] and clean["usage"] != Usage.INBOUND.value:
        outgoing = probe.ServerSettings("smtp", clean["outgoing_host"], clean["outgoing_port"],
                                        clean["outgoing_security"])
    if incoming is None and outgoing is None:
        raise AddressError("Enter the incoming or outgoing server to test.", "incoming_host")
    return incoming, outgoing


def oauth_connection_test(setup: AddressSetup, clean: dict, kind: str) -> list:
    """Test Connection of an OAuth mailbox: the token step, then IMAP/POP3 and SMTP with the token.

    A token that cannot be had is the first result (side "token"), and the servers are not tried.
    """
    incoming, outgoing = _servers(clean)
    try:
        token = sign_in.fresh_access_token(setup, kind)
    except oauth.TokenError as exc:
        return [probe.ProbeResult(side="token", ok=False, reason="token_refused", message=str(exc))]
    if kind == sign_in.APP_ONLY:
        message = (f"{sign_in.usable_provider(kind, setup.domain).name} gave an app token (client credentials); "
                   f"the servers are asked to open the mailbox {sign_in.mailbox_of(clean)} with it.")
    else:
        found = sign_in.signed_in_as(setup, kind)
        message = "The sign-in gave an access token" + (f" for {found[0]}." if found and found[0] else ".")
    results = [probe.ProbeResult(side="token", ok=True, message=message)]
    return results + probe.probe(incoming, outgoing, clean["username"] or clean["address"],
                                 probe.Token(token, mechanism_of(kind)),
                                 timeout=float(current_app.config["PROBE_TIMEOUT_SECONDS"]),
                                 context=configured_context(clean["tls_ca_pem"]), local_hostname=platform_domain_name(),
                                 policy=mail_policy(clean["allow_plaintext_auth"]))


def _remember(setup: AddressSetup, clean: dict, password: str, smtp_password: str, results: list) -> list:
    """Keep the outcome on the wizard with the fingerprint of what it proved; returns the results."""
    ok = all(r.ok for r in results)
    setup.test_result = {
        "ok": ok, "at": utcnow().isoformat(), "fingerprint": connection_fingerprint(clean, password, smtp_password),
        "results": [r.to_dict() for r in results],
        "summary": " ".join(r.message + (f" ({r.detail})" if r.detail else "") for r in results),
    }
    setup.updated_at = utcnow()
    db.session.flush()
    return results


def setup_test_outcome(setup: AddressSetup) -> bool | None:
    """Whether the wizard's last Test Connection passed, if it tested exactly its current settings; else None."""
    result = setup.test_result
    if not result or setup.domain.kind != DomainKind.CUSTOM.value or not setup_complete(setup):
        return None
    fingerprint = connection_fingerprint(setup.values, decrypt_secret(stored_password(setup)) or "",
                                         decrypt_secret(stored_smtp_password(setup)) or "")
    return bool(result["ok"]) if result.get("fingerprint") == fingerprint else None
