"""DNS checks of a sending domain: DKIM, SPF, DMARC and MX, each with what to publish when it fails.

Lookups go through dnspython with the resolver and timeout the caller gives
(`Resolver("127.0.0.1:5353", timeout=3)`; an empty address means the system's resolvers),
so tests and split-horizon setups can point them at a DNS server of their own.

Every check returns a `Check` in the four states admins see (the ones Kore's DKIM
Configuration uses):

* **Pending**: the record is not there (yet): NXDOMAIN or no record of that type;
* **Success**: it is there and says what it should;
* **Failed**: it is there but different; `detail` says how;
* **Temporary Failure**: the DNS did not answer (timeout, SERVFAIL); worth asking again later.

`value` is always the record to publish (the whole value, for a copy button), `detail` what
was found or what to change.
"""
from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass

import dkim
import dns.exception
import dns.resolver

from app.mail.dkim import record_tags

PENDING, SUCCESS, FAILED, TEMPORARY = "Pending", "Success", "Failed", "Temporary Failure"
STATUSES = (PENDING, SUCCESS, FAILED, TEMPORARY)


class TemporaryDNSFailure(Exception):
    """The DNS gave no answer (timeout, SERVFAIL, no usable server)."""


@dataclass(frozen=True)
class Check:
    type: str     # DKIM, SPF, DMARC, MX
    name: str     # the DNS name the record lives at
    value: str    # the record to publish there
    status: str   # one of STATUSES
    detail: str   # what was found, or what to change

    def as_json(self) -> dict:
        return {"type": self.type, "name": self.name, "value": self.value, "status": self.status,
                "detail": self.detail}


def parse_server(address: str) -> tuple[str, int] | None:
    """`host`, `host:port`, `[v6]:port` or a bare IPv6 address as (IP, port); None for empty (the system's)."""
    text = (address or "").strip()
    if not text:
        return None
    host, port = text, 53
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest.startswith(":"):
            port = int(rest[1:])
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        port = int(port_text)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        host = socket.gethostbyname(host)  # dnspython talks to IP addresses
    return host, port


class Resolver:
    """TXT and MX lookups with one resolver address and one timeout (seconds, for the whole lookup)."""

    def __init__(self, address: str = "", timeout: float = 5.0) -> None:
        server = parse_server(address)
        self._resolver = dns.resolver.Resolver(configure=server is None)
        if server is not None:
            self._resolver.nameservers = [server[0]]
            self._resolver.port = server[1]
        self.timeout = float(timeout)
        self._resolver.timeout = self._resolver.lifetime = self.timeout
        self._resolver.cache = None

    def _answer(self, name: str, rdtype: str):
        try:
            return self._resolver.resolve(name, rdtype, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.exception.Timeout:
            raise TemporaryDNSFailure(f"the DNS did not answer for {name} in time") from None
        except (dns.resolver.NoNameservers, dns.resolver.NoResolverConfiguration) as exc:
            raise TemporaryDNSFailure(f"the DNS could not answer for {name}: {exc}") from None

    def records(self, name: str, rdtype: str) -> list:
        """The rdata of `name`'s records of one type (A, AAAA, MX, PTR, TXT, ...); [] for none.
        Raises `TemporaryDNSFailure`."""
        return list(self._answer(name, rdtype))

    def txt(self, name: str) -> list[str]:
        """Each TXT record at `name`, its character-strings joined. Raises `TemporaryDNSFailure`."""
        return [b"".join(r.strings).decode("utf-8", "replace") for r in self._answer(name, "TXT")]

    def mx(self, name: str) -> list[tuple[int, str]]:
        """(preference, host without the final dot, lower-cased), best first. Raises `TemporaryDNSFailure`."""
        found = [(r.preference, r.exchange.to_text(omit_final_dot=True).lower()) for r in self._answer(name, "MX")]
        return sorted(found)

    def dkim_txt(self, name: bytes, timeout: float = 5) -> bytes | None:
        """dkimpy's `dnsfunc`: the TXT record at a name, or None (dkimpy verifies against this DNS then)."""
        try:
            records = self.txt(name.decode("ascii").rstrip("."))
        except TemporaryDNSFailure as exc:  # dkimpy's own type: its verifier reports a temporary error
            raise dkim.DnsTimeoutError(str(exc)) from None
        return records[0].encode("utf-8") if records else None


def check_dkim(resolver: Resolver, name: str, expected_value: str) -> Check:
    """The DKIM record at `name` (`<selector>._domainkey.<domain>`) against the one to publish."""

    def result(status: str, detail: str) -> Check:
        return Check("DKIM", name, expected_value, status, detail)

    try:
        records = resolver.txt(name)
    except TemporaryDNSFailure as exc:
        return result(TEMPORARY, f"Could not look it up: {exc}. It is checked again automatically.")
    if not records:
        return result(PENDING, f"No TXT record at {name} yet. Publish the value shown; DNS changes can take a while.")
    expected = record_tags(expected_value)
    if len(records) > 1:
        return result(FAILED, f"{len(records)} TXT records at {name}; receivers need exactly one. "
                              "Remove all but the one shown.")
    found = record_tags(records[0])
    if "p" not in found:
        return result(FAILED, "The TXT record there is not a DKIM key (no p= tag). Replace it with the value shown.")
    if found.get("v", "DKIM1") != "DKIM1":
        return result(FAILED, f"The record says v={found['v']}; it must say v=DKIM1.")
    if found.get("k", "rsa").lower() != "rsa":
        return result(FAILED, f"The record says k={found['k']}; this key is an RSA key (k=rsa).")
    if not found["p"]:
        return result(FAILED, "The record's key is empty (p=): that means the key is revoked. Publish the value shown.")
    if found["p"] != expected["p"]:
        return result(FAILED, "The record holds a different public key (p=) than this selector's private key: "
                              "mail signed with it would fail. Replace it with the value shown (maybe an older "
                              "key, or the value was cut when pasting).")
    return result(SUCCESS, "The record matches this selector's key.")


_SPF_ALL = re.compile(r"\s([-~?+]?all)\b", re.IGNORECASE)


def check_spf(resolver: Resolver, domain: str, required: str) -> Check:
    """The SPF record of `domain`: one `v=spf1` record that authorises the relay (has the `required` term).

    `required` is a term like `include:_spf.relay.example` or `ip4:192.0.2.10`; empty asks
    only that a record exists.
    """
    suggested = f"v=spf1 {required} ~all" if required else "v=spf1 mx ~all"

    try:
        records = [r for r in resolver.txt(domain) if r.lower().startswith("v=spf1")]
    except TemporaryDNSFailure as exc:
        return Check("SPF", domain, suggested, TEMPORARY, f"Could not look it up: {exc}.")
    if not records:
        return Check("SPF", domain, suggested, PENDING, f"No SPF record (TXT v=spf1) at {domain}. Publish the value shown.")
    if len(records) > 1:
        return Check("SPF", domain, suggested, FAILED,
                     f"{len(records)} SPF records at {domain}; receivers treat that as an error (RFC 7208). "
                     "Merge them into one.")
    found = records[0]
    if required and required.lower() not in found.lower().split():
        merged = _SPF_ALL.sub(f" {required} \\1", found, count=1) if _SPF_ALL.search(found) else f"{found} {required}"
        return Check("SPF", domain, merged, FAILED,
                     f"The SPF record ({found}) does not authorise the relay: add {required} before the all term.")
    return Check("SPF", domain, found, SUCCESS, f"Found: {found}")


def check_dmarc(resolver: Resolver, domain: str) -> Check:
    """The DMARC record at `_dmarc.<domain>`: it exists and has a policy (p=), which is shown."""
    name = f"_dmarc.{domain}"
    suggested = "v=DMARC1; p=none; adkim=r; aspf=r"
    try:
        records = [r for r in resolver.txt(name) if r.replace(" ", "").upper().startswith("V=DMARC1")]
    except TemporaryDNSFailure as exc:
        return Check("DMARC", name, suggested, TEMPORARY, f"Could not look it up: {exc}.")
    if not records:
        return Check("DMARC", name, suggested, PENDING,
                     f"No DMARC record at {name}. Publish the value shown (p=none only reports; move to "
                     "p=quarantine once reports show your mail passes).")
    if len(records) > 1:
        return Check("DMARC", name, suggested, FAILED, f"{len(records)} DMARC records at {name}; keep exactly one.")
    policy = record_tags(records[0]).get("p", "").lower()
    if policy not in ("none", "quarantine", "reject"):
        return Check("DMARC", name, suggested, FAILED,
                     f"The DMARC record ({records[0]}) has no valid policy: add p=none, p=quarantine or p=reject.")
    return Check("DMARC", name, records[0], SUCCESS, f"Policy: {policy}")


def check_mx(resolver: Resolver, domain: str, host: str) -> Check:
    """The MX records of the platform domain: they point at the ingress `host`."""
    wanted = host.lower().rstrip(".")
    suggested = f"10 {wanted}."
    try:
        records = resolver.mx(domain)
    except TemporaryDNSFailure as exc:
        return Check("MX", domain, suggested, TEMPORARY, f"Could not look it up: {exc}.")
    if not records:
        return Check("MX", domain, suggested, PENDING, f"No MX record at {domain}: mail for it cannot arrive. "
                                                       "Publish the value shown.")
    hosts = [h for _, h in records]
    if wanted not in hosts:
        return Check("MX", domain, suggested, FAILED,
                     f"The MX records point at {', '.join(hosts)}, not at the ingress {wanted}. Publish the value shown.")
    return Check("MX", domain, suggested, SUCCESS, f"Found: {', '.join(f'{p} {h}' for p, h in records)}")
