"""DKIM, SPF, DMARC and MX checks against a real DNS server on loopback: found, missing, wrong, no answer."""
from __future__ import annotations

import time

import pytest

from app.mail.dkim import generate_private_key, record_value
from app.mail.dnscheck import (FAILED, PENDING, SUCCESS, TEMPORARY, Resolver, check_dkim, check_dmarc, check_mx,
                               check_spf, parse_server)
from tests.dns_server import LoopbackDNS

RELAY = "include:_spf.relay.test"


@pytest.fixture(scope="module")
def dns():
    server = LoopbackDNS()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def key():
    return generate_private_key()


def test_dkim_record_found_missing_wrong_revoked_and_unanswered(dns, key):
    resolver = Resolver(dns.address, timeout=1)
    value = record_value(key)
    dns.txt("s1._domainkey.good.test", value)
    dns.txt("s1._domainkey.wrong.test", record_value(generate_private_key()))
    dns.txt("s1._domainkey.revoked.test", "v=DKIM1; k=rsa; p=")
    dns.txt("s1._domainkey.junk.test", "hello")
    dns.silence("s1._domainkey.slow.test")

    ok = check_dkim(resolver, "s1._domainkey.good.test", value)
    assert (ok.status, ok.value) == (SUCCESS, value)  # a 2048-bit record: two strings, joined again
    assert check_dkim(resolver, "s1._domainkey.none.test", value).status == PENDING
    wrong = check_dkim(resolver, "s1._domainkey.wrong.test", value)
    assert wrong.status == FAILED and "different public key" in wrong.detail
    assert "revoked" in check_dkim(resolver, "s1._domainkey.revoked.test", value).detail
    assert "not a DKIM key" in check_dkim(resolver, "s1._domainkey.junk.test", value).detail
    started = time.monotonic()
    slow = check_dkim(resolver, "s1._domainkey.slow.test", value)
    assert slow.status == TEMPORARY and "did not answer" in slow.detail and time.monotonic() - started < 5


def test_spf_says_what_to_add(dns):
    resolver = Resolver(dns.address, timeout=1)
    dns.txt("spf-ok.test", f"v=spf1 mx {RELAY} -all")
    dns.txt("spf-other.test", "v=spf1 mx ~all")
    dns.txt("spf-other.test", "google-site-verification=abc")
    dns.txt("spf-two.test", "v=spf1 mx ~all")
    dns.txt("spf-two.test", f"v=spf1 {RELAY} ~all")
    assert check_spf(resolver, "spf-ok.test", RELAY).status == SUCCESS
    missing = check_spf(resolver, "spf-none.test", RELAY)
    assert (missing.status, missing.value) == (PENDING, f"v=spf1 {RELAY} ~all")
    other = check_spf(resolver, "spf-other.test", RELAY)
    assert (other.status, other.value) == (FAILED, f"v=spf1 mx {RELAY} ~all") and RELAY in other.detail
    assert "Merge them" in check_spf(resolver, "spf-two.test", RELAY).detail


def test_dmarc_shows_its_policy(dns):
    resolver = Resolver(dns.address, timeout=1)
    dns.txt("_dmarc.dm.test", "v=DMARC1; p=reject; rua=mailto:d@dm.test")
    dns.txt("_dmarc.nopolicy.test", "v=DMARC1; rua=mailto:d@dm.test")
    found = check_dmarc(resolver, "dm.test")
    assert (found.status, found.name, found.detail) == (SUCCESS, "_dmarc.dm.test", "Policy: reject")
    missing = check_dmarc(resolver, "nodmarc.test")
    assert missing.status == PENDING and missing.value.startswith("v=DMARC1; p=none")
    assert check_dmarc(resolver, "nopolicy.test").status == FAILED


def test_mx_points_at_the_ingress(dns):
    resolver = Resolver(dns.address, timeout=1)
    dns.mx("mx-ok.test", "in.pigeonhole.test")
    dns.mx("mx-ok.test", "backup.pigeonhole.test", 20)
    dns.mx("mx-elsewhere.test", "mx.other.test")
    dns.silence("mx-slow.test")
    assert check_mx(resolver, "mx-ok.test", "in.pigeonhole.test").status == SUCCESS
    elsewhere = check_mx(resolver, "mx-elsewhere.test", "in.pigeonhole.test")
    assert elsewhere.status == FAILED and "mx.other.test" in elsewhere.detail
    assert elsewhere.value == "10 in.pigeonhole.test."
    assert check_mx(resolver, "mx-none.test", "in.pigeonhole.test").status == PENDING
    assert check_mx(resolver, "mx-slow.test", "in.pigeonhole.test").status == TEMPORARY


def test_resolver_addresses():
    assert parse_server("") is None
    assert parse_server("127.0.0.1") == ("127.0.0.1", 53)
    assert parse_server("127.0.0.1:5353") == ("127.0.0.1", 5353)
    assert parse_server("[::1]:5353") == ("::1", 5353) and parse_server("::1") == ("::1", 53)
