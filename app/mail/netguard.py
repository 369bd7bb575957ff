"""Which mail servers we connect to, and whether a password may cross the wire unencrypted.

An admin types a server name; Test Connection, polling, IDLE and sending connect to
it with the mailbox's password. Two rules keep that from being turned against the
installation or the password:

* **Only public addresses.** A server name is resolved once (`resolve_target`), every
  address it resolves to is checked, and the connection goes to the checked address
  (`Target.connect`), while TLS still verifies the certificate against the name. Refused:
  loopback (127/8, ::1), link-local (169.254/16 with the cloud metadata address,
  fe80::/10), private (RFC 1918, fc00::/7, 100.64/10), unspecified, multicast, reserved
  and documentation ranges, and an IPv4 address hidden in IPv6 (::ffff:127.0.0.1). A
  server name written as a number in an odd form (`2130706433`, `0x7f000001`,
  `0177.0.0.1`, `127.1`) is refused whatever it points to: resolvers read these as IPv4
  addresses, no real server is named so, and only a probe would write one.
  `NetPolicy.allow_private` lifts the rule (ops' `MAIL_ALLOW_PRIVATE_HOSTS`: mail
  servers on the local network, the tests' servers on loopback).
* **No password in clear text.** Signing in on a connection with no encryption (neither
  SSL nor STARTTLS) is refused (`PlaintextRefused`) unless the address allows it
  (`NetPolicy.allow_plaintext`, the wizard's "Allow unencrypted sign-in") or the server
  is on loopback, where nothing crosses a network (`NetPolicy.plaintext_on_loopback`).

Nothing here knows Flask or the database: the caller passes the policy as values.
"""
from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["NetPolicy", "Target", "HostRefused", "PlaintextRefused", "odd_ipv4", "refused_kind", "resolve_target"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Ranges `ipaddress` does not call private but that are no public mail server either.
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT (RFC 6598)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # an IPv4 address reached through a NAT64 gateway (RFC 6052)


class HostRefused(Exception):
    """The server is at an address we do not connect to; the text says which kind, for the admin."""


class PlaintextRefused(Exception):
    """Signing in without encryption was refused before anything was sent; the text says what to do."""


def refused_kind(ip: IPAddress) -> str | None:
    """What kind of non-public address `ip` is ("a loopback address", ...), or None for a public one."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and (int(ip) >> 32 == 0 and int(ip) > 1 or ip in _NAT64):
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)  # ::a.b.c.d ("IPv4-compatible"), NAT64
        if embedded is not None:
            kind = refused_kind(embedded)
            return f"{kind} inside an IPv6 address" if kind else None
    if ip.is_unspecified:
        return "the unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_reserved:
        return "a reserved address"
    if ip.is_private or (isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED):
        return "a private address"
    if not ip.is_global:
        return "a reserved address"
    return None


_NUMBER = r"(?:0x[0-9a-f]*|[0-9]+)"
_ODD_IPV4 = re.compile(rf"^{_NUMBER}(?:\.{_NUMBER}){{0,3}}$", re.IGNORECASE)


def odd_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address a resolver reads in a number that is not plain dotted-decimal, or None.

    `2130706433`, `0x7f000001`, `0177.0.0.1`, `127.1` all mean 127.0.0.1 to `inet_aton`
    (and so to `getaddrinfo`); `127.0.0.1` itself is not odd and gives None.
    """
    host = host.strip().rstrip(".")
    if not _ODD_IPV4.match(host):
        return None
    try:
        ipaddress.IPv4Address(host)
        return None  # the usual form
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def _literal(host: str) -> IPAddress | None:
    """An IP address written in its usual form (IPv6 perhaps in brackets, with a zone), or None."""
    text = host.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def is_non_public_literal(host: str) -> bool:
    """Whether `host` is an IP address in its usual form that is not public (loopback, private, ...)."""
    literal = _literal(host)
    return literal is not None and refused_kind(literal) is not None


@dataclass(frozen=True)
class Target:
    """A checked place to connect to: `host` as configured (for TLS: SNI and the certificate) and
    `address`, the IP address that was checked, which is the one connected to."""

    host: str
    port: int
    address: str

    @property
    def loopback(self) -> bool:
        return ipaddress.ip_address(self.address).is_loopback

    def connect(self, timeout: float | None, source_address=None) -> socket.socket:
        """A TCP connection to the checked address (never a new name lookup)."""
        return socket.create_connection((self.address, self.port), timeout, source_address)


Resolver = Callable[..., list]


def resolve_target(host: str, port: int, allow_private: bool = False,
                   getaddrinfo: Resolver = socket.getaddrinfo) -> Target:
    """Resolve `host` once and check every address it gives; the `Target` to connect to.

    Raises `HostRefused` for an address that is not public (unless `allow_private`) or a
    server name in an odd numeric form, and `socket.gaierror` when the name is not found.
    """
    odd = odd_ipv4(host)
    if odd is not None and not allow_private:
        raise HostRefused(f"{host} is not a server name but an IP address ({odd}) written in an unusual "
                          "form; write the server's name")
    literal = _literal(host)
    if literal is not None:
        addresses = [literal]
    else:
        infos = getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
        if not addresses:
            raise socket.gaierror(socket.EAI_NONAME, "no address")
    if not allow_private:
        for ip in addresses:
            kind = refused_kind(ip)
            if kind is not None:
                what = "is" if literal is not None else "resolves to"
                raise HostRefused(f"{host} {what} {kind}, which Pigeonhole does not connect to")
    return Target(host=host, port=port, address=str(addresses[0]))


@dataclass(frozen=True)
class NetPolicy:
    """Where connections may go and when a password may travel unencrypted (see the module docstring).

    The defaults are the strict ones: public servers only, no unencrypted sign-in.
    """

    allow_private: bool = False        # MAIL_ALLOW_PRIVATE_HOSTS
    allow_plaintext: bool = False      # the address's "Allow unencrypted sign-in"
    plaintext_on_loopback: bool = True  # MAIL_PLAINTEXT_SIGN_IN_ON_LOOPBACK

    def target(self, host: str, port: int, security: str, signs_in: bool = True,
               getaddrinfo: Resolver = socket.getaddrinfo) -> Target:
        """The checked `Target` for a connection with `security` ("ssl", "starttls", "none").

        Raises `HostRefused`, `PlaintextRefused` (before anything is sent: the check needs
        only the resolved address) or `socket.gaierror`.
        """
        target = resolve_target(host, port, self.allow_private, getaddrinfo)
        if signs_in and security == "none" and not self.allow_plaintext \
                and not (self.plaintext_on_loopback and target.loopback):
            raise PlaintextRefused(
                "the connection has no encryption, so the password would cross the network readable by anyone "
                "on the way; choose SSL or STARTTLS, or tick \u201cAllow unencrypted sign-in\u201d if this server "
                "offers neither")
        return target
