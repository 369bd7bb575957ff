"""Which servers mail connections may reach (app/mail/netguard.py), the pinned clients, and trimmed server words."""
from __future__ import annotations

import smtplib
import socket
import ssl

import pytest

from app.mail.failures import classify, words
from app.mail.netguard import HostRefused, NetPolicy, PlaintextRefused, odd_ipv4, resolve_target
from app.mail.pinned import PinnedSMTP, PinnedSMTP_SSL
from app.mail.tls import client_context
from tests.channel_fixtures import MAILBOX, PASSWORD


def resolver(*addresses: str):
    """A stand-in for DNS in these unit tests: the name resolves to `addresses` (the real lookup is below)."""
    calls = []

    def getaddrinfo(host, port, type=0):
        calls.append(host)
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                for a in addresses]

    getaddrinfo.calls = calls
    return getaddrinfo


REFUSED = {
    "127.0.0.1": "a loopback address",
    "127.255.0.9": "a loopback address",
    "::1": "a loopback address",
    "[::1]": "a loopback address",
    "169.254.169.254": "a link-local address",  # the cloud metadata service
    "fe80::1": "a link-local address",
    "fe80::1%1": "a link-local address",
    "10.0.0.5": "a private address",
    "172.16.3.4": "a private address",
    "192.168.1.1": "a private address",
    "100.64.0.1": "a private address",
    "fc00::1": "a private address",
    "fd12:3456::1": "a private address",
    "0.0.0.0": "the unspecified address",
    "::": "the unspecified address",
    "224.0.0.251": "a multicast address",
    "ff02::1": "a multicast address",
    "240.0.0.1": "a reserved address",
    "::ffff:127.0.0.1": "a loopback address inside an IPv6 address",
    "::ffff:169.254.169.254": "a link-local address inside an IPv6 address",
    "::ffff:10.0.0.1": "a private address inside an IPv6 address",
    "::127.0.0.1": "a loopback address inside an IPv6 address",
    "64:ff9b::a9fe:a9fe": "a link-local address inside an IPv6 address",
}


@pytest.mark.parametrize("host, kind", REFUSED.items())
def test_every_non_public_address_is_refused(host, kind):
    with pytest.raises(HostRefused) as refused:
        resolve_target(host, 993)
    assert str(refused.value) == f"{host} is {kind}, which Pigeonhole does not connect to"
    assert classify(refused.value)[0] == "private_host"


@pytest.mark.parametrize("host", ["2130706433", "0x7f000001", "0X7F000001", "0177.0.0.1", "017700000001", "127.1",
                                  "0x7f.0.0.1", "127.0.1", "2852039166", "0xa9fea9fe", "134744072"])
def test_numbers_in_odd_forms_are_refused_whatever_they_point_to(host):
    assert odd_ipv4(host) is not None
    with pytest.raises(HostRefused) as refused:
        resolve_target(host, 25, getaddrinfo=resolver("8.8.8.8"))
    assert "written in an unusual form" in str(refused.value)


def test_odd_forms_mean_what_resolvers_read_in_them():
    assert str(odd_ipv4("2130706433")) == str(odd_ipv4("0x7f000001")) == str(odd_ipv4("0177.0.0.1")) == "127.0.0.1"
    assert str(odd_ipv4("0xa9fea9fe")) == "169.254.169.254"
    assert odd_ipv4("127.0.0.1") is None and odd_ipv4("imap.acme.com") is None and odd_ipv4("1e100.net") is None


@pytest.mark.parametrize("host", ["8.8.8.8", "2001:4860:4860::8888", "[2001:4860:4860::8888]"])
def test_public_literals_pass_without_a_lookup(host):
    lookup = resolver("10.0.0.1")
    target = resolve_target(host, 465, getaddrinfo=lookup)
    assert target.address == host.strip("[]") and target.host == host and target.port == 465
    assert lookup.calls == []


def test_a_name_is_resolved_once_and_every_address_checked():
    lookup = resolver("203.0.113.9", "8.8.4.4", "10.1.2.3")  # one private answer among public ones
    with pytest.raises(HostRefused) as refused:
        resolve_target("mail.acme.com", 993, getaddrinfo=lookup)
    assert str(refused.value) == "mail.acme.com resolves to a private address, which Pigeonhole does not connect to"
    assert "10.1.2.3" not in str(refused.value)  # the admin learns no internal address
    lookup = resolver("8.8.4.4", "2001:4860:4860::8844")
    target = resolve_target("mail.acme.com", 993, getaddrinfo=lookup)
    assert (target.host, target.address) == ("mail.acme.com", "8.8.4.4") and lookup.calls == ["mail.acme.com"]


def test_the_setting_allows_private_hosts_and_odd_forms():
    assert resolve_target("127.0.0.1", 25, allow_private=True).address == "127.0.0.1"
    assert resolve_target("2130706433", 25, allow_private=True).address == "127.0.0.1"  # the system resolver reads it
    assert resolve_target("localhost", 25, allow_private=True).loopback


def test_unknown_names_are_a_lookup_error():
    with pytest.raises(socket.gaierror):
        resolve_target("no-such-host.invalid", 25)


def test_signing_in_without_encryption_is_refused_unless_allowed_or_on_loopback():
    public = resolver("8.8.8.8")
    strict = NetPolicy()
    with pytest.raises(PlaintextRefused) as refused:
        strict.target("mail.acme.com", 143, "none", getaddrinfo=public)
    assert "Allow unencrypted sign-in" in str(refused.value)
    assert classify(refused.value)[0] == "unencrypted_sign_in"
    assert strict.target("mail.acme.com", 993, "ssl", getaddrinfo=public).address == "8.8.8.8"
    assert strict.target("mail.acme.com", 143, "starttls", getaddrinfo=public).address == "8.8.8.8"
    assert strict.target("mail.acme.com", 25, "none", signs_in=False, getaddrinfo=public).address == "8.8.8.8"
    assert NetPolicy(allow_plaintext=True).target("mail.acme.com", 143, "none", getaddrinfo=public)
    local = NetPolicy(allow_private=True)
    assert local.target("127.0.0.1", 143, "none").loopback
    with pytest.raises(PlaintextRefused):
        NetPolicy(allow_private=True, plaintext_on_loopback=False).target("127.0.0.1", 143, "none")
    with pytest.raises(PlaintextRefused):  # a private network is a network
        local.target("mail.lan", 143, "none", getaddrinfo=resolver("192.168.1.20"))


def test_words_show_only_the_first_line_trimmed():
    banner = b"500-internal daemon v2\nsecret_token=abc123\nmore"
    assert words(banner) == "500-internal daemon v2"
    assert words("b'* OK ready\\r\\nsecret_token=abc123'") == "* OK ready"  # imaplib's repr of bytes
    assert words([b"first", b"secret_token=abc123"]) == "first"
    long = words("x" * 1000)
    assert len(long) == 200 and long.endswith("\u2026")
    assert words(smtplib.SMTPConnectError(500, b"internal daemon\nsecret_token=abc123")) == \
        "(500, b'internal daemon"  # str() of the exception, cut at its line break
    reason, detail = classify(smtplib.SMTPConnectError(500, b"internal daemon\nsecret_token=abc123"))
    assert detail == "500 internal daemon" and "secret" not in detail


def test_pinned_smtp_connects_to_the_checked_address_and_verifies_the_name(mail_servers):
    """The name is never looked up again: `nowhere.invalid` does not exist, yet the connection goes to the
    checked address; TLS still checks the certificate against the name the admin typed."""
    from app.mail.netguard import Target

    plain = PinnedSMTP(Target("nowhere.invalid", mail_servers.smtp_starttls.port, "127.0.0.1"), timeout=5)
    try:
        assert plain.ehlo()[0] == 250
        plain.starttls(context=client_context(str(mail_servers.ca_file)))
        raise AssertionError("STARTTLS must fail: the certificate is not for nowhere.invalid")
    except ssl.SSLCertVerificationError as exc:
        assert "nowhere.invalid" in str(exc) or "match" in str(exc)
    finally:
        plain.close()
    implicit = PinnedSMTP_SSL(Target("localhost", mail_servers.smtp_implicit.port, "127.0.0.1"), timeout=5,
                              context=client_context(str(mail_servers.ca_file)))
    try:
        implicit.ehlo()
        implicit.login(MAILBOX, PASSWORD)
    finally:
        implicit.close()
    with pytest.raises(ssl.SSLCertVerificationError):
        PinnedSMTP_SSL(Target("imap.acme.example", mail_servers.smtp_implicit.port, "127.0.0.1"), timeout=5,
                       context=client_context(str(mail_servers.ca_file)))
