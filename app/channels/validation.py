"""What the channel setup accepts, and the one way each value is written.

The choices an address offers (usage, connection security, incoming protocol) with
their labels, and the normal form of what an admin types: domain names and mail
addresses in lower-case ASCII (IDNA), server names, and the incoming and outgoing
server settings. Each raises a `ChannelError` subclass naming the form field.
"""
from __future__ import annotations

import ipaddress
import re

from app.channels.errors import AddressError, AddressErrors, DomainError
from app.mail.addresses import InvalidAddress, check_address
from app.mail.probe import default_port
from app.models.channels import Usage

USAGE_LABELS = {
    Usage.INBOUND.value: "Inbound",
    Usage.OUTBOUND.value: "Outbound",
    Usage.BOTH.value: "Inbound and Outbound",
}
SECURITY_LABELS = {"ssl": "SSL", "starttls": "STARTTLS", "none": "no encryption"}
INCOMING_PROTOCOLS = {"imap": "IMAP", "pop3": "POP3"}


def normalise_domain_name(name: str) -> str:
    """The domain in lower-case ASCII (IDNA for international names). Raises `DomainError`."""
    name = (name or "").strip().rstrip(".")
    if not name:
        raise DomainError("Enter a domain name, like acme.com.", "name")
    if "@" in name or "/" in name or " " in name:
        raise DomainError("Enter only the domain name, like acme.com (no @, spaces or slashes).", "name")
    try:
        checked = check_address(f"postmaster@{name}")  # the domain part of the one address policy
    except InvalidAddress as exc:
        text = str(exc).replace("The part after the @-sign", "The domain name")
        raise DomainError(text, "name") from None
    return checked.ascii_domain.lower()


def normalise_email(value: str, field: str = "address") -> str:
    """A mail address in lower-case ASCII (IDNA domain). Raises `AddressError` naming `field`."""
    try:
        checked = check_address(value)
    except InvalidAddress as exc:
        raise AddressError(str(exc), field) from None
    return checked.ascii_email.lower()


_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def normalise_host(host: str, field: str) -> str:
    """A server name (DNS name or IP address) in lower case. Raises `AddressError` naming `field`."""
    host = (host or "").strip().rstrip(".").lower()
    if not host:
        raise AddressError("Enter the server's name, like imap.acme.com.", field)
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        pass
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        ascii_host = ""
    if not ascii_host or len(ascii_host) > 253 or not all(_HOST_LABEL.match(p) for p in ascii_host.split(".")):
        raise AddressError(f"{host} is not a valid server name.", field)
    return ascii_host


def normalise_servers(values: dict, usage: str) -> dict:
    """Validated incoming and outgoing server settings; those the usage needs are required.

    Raises `AddressError` naming the field (`AddressErrors` when several fields are wrong).
    """
    out = {}
    errors: list[AddressError] = []
    needs = {"incoming": usage in (Usage.INBOUND.value, Usage.BOTH.value),
             "outgoing": usage in (Usage.OUTBOUND.value, Usage.BOTH.value)}
    for side in ("incoming", "outgoing"):
        protocol = values.get(f"{side}_protocol") if side == "incoming" else "smtp"
        if side == "incoming" and protocol not in INCOMING_PROTOCOLS:
            errors.append(AddressError("Choose IMAP or POP3.", "incoming_protocol"))
            protocol = "imap"
        security = values.get(f"{side}_security") or "ssl"
        if security not in SECURITY_LABELS:
            errors.append(AddressError("Choose how to secure the connection.", f"{side}_security"))
            security = "ssl"
        host = (values.get(f"{side}_host") or "").strip()
        if host or needs[side]:
            try:
                host = normalise_host(host, f"{side}_host")
            except AddressError as exc:
                errors.append(exc)
        port = values.get(f"{side}_port")
        if port in (None, ""):
            port = default_port(protocol, security)
        try:
            port = int(port)
        except (TypeError, ValueError):
            errors.append(AddressError("Enter a port number.", f"{side}_port"))
        else:
            if not 1 <= port <= 65535:
                errors.append(AddressError("A port is a number from 1 to 65535.", f"{side}_port"))
        if side == "incoming":
            out["incoming_protocol"] = protocol
        out.update({f"{side}_host": host or None, f"{side}_port": port, f"{side}_security": security})
    AddressErrors.raise_any(errors)
    return out
