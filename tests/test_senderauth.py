"""Sender authentication (app.mail.senderauth, app.mail.lookalike) against a real DNS server on loopback:
SPF with pyspf, DKIM with dkimpy, DMARC alignment and policy, a DNS that does not answer, and
provider Authentication-Results trusted only by authserv-id."""
from __future__ import annotations

import pytest

from app.mail.dkim import generate_private_key, record_value, sign
from app.mail.dnscheck import Resolver
from app.mail.lookalike import lookalike_of, skeleton
from app.mail.senderauth import (DEFAULT_TRUSTED_HOSTS, aligned, check, from_authentication_results,
                                 organizational_domain, sender_authentication, trusted)
from tests.dns_server import LoopbackDNS

KEY = generate_private_key()


@pytest.fixture(scope="module")
def dns():
    server = LoopbackDNS()
    server.txt("bank.test", "v=spf1 ip4:127.0.0.1 -all")
    server.txt("_dmarc.bank.test", "v=DMARC1; p=reject; adkim=s; aspf=r")
    server.txt("s1._domainkey.bank.test", record_value(KEY))
    server.txt("s1._domainkey.mail.bank.test", record_value(KEY))
    server.txt("s1._domainkey.evil.test", record_value(KEY))
    server.txt("evil.test", "v=spf1 ip4:127.0.0.1 -all")
    server.txt("open.test", "v=spf1 ?all")
    yield server
    server.stop()


def mail(sender: str, body: str = "Please confirm your account.") -> bytes:
    return (f"From: Bank <{sender}>\r\nTo: help@acme.test\r\nSubject: Hello\r\nDate: Mon, 1 Jun 2026 10:00:00 +0000\r\n"
            f"Message-ID: <{abs(hash(sender + body))}@x>\r\n\r\n{body}\r\n").encode()


def test_signed_and_aligned_passes(dns):
    raw = sign(mail("alerts@bank.test"), "s1", "bank.test", KEY)
    v = check(raw, client_ip="127.0.0.1", helo="mx.bank.test", mail_from="bounce@bank.test",
              resolver=Resolver(dns.address, timeout=1))
    assert (v.spf, v.spf_domain, v.dkim, v.dkim_domain, v.dmarc, v.from_domain) == \
        ("pass", "bank.test", "pass", "bank.test", "pass", "bank.test")
    assert sender_authentication(v.dmarc) == "pass"


def test_spoofed_from_a_reject_domain_fails_dmarc(dns):
    # Sent by evil.test (its SPF passes, its own signature verifies) with From: bank.test
    raw = sign(mail("alerts@bank.test"), "s1", "evil.test", KEY)
    v = check(raw, client_ip="127.0.0.1", helo="evil.test", mail_from="x@evil.test",
              resolver=Resolver(dns.address, timeout=1))
    assert (v.spf, v.dkim, v.dkim_domain, v.dmarc) == ("pass", "pass", "evil.test", "fail")
    assert "p=reject" in v.reason and sender_authentication(v.dmarc) == "fail"


def test_spf_fail_unsigned_and_strict_dkim_alignment(dns):
    resolver = Resolver(dns.address, timeout=1)
    v = check(mail("alerts@bank.test"), client_ip="192.0.2.9", helo="x", mail_from="a@bank.test", resolver=resolver)
    assert (v.spf, v.dkim, v.dmarc) == ("fail", "none", "fail")
    # adkim=s: a signature of mail.bank.test is not aligned with bank.test, though SPF (relaxed) would be
    raw = sign(mail("alerts@bank.test", "strict"), "s1", "mail.bank.test", KEY)
    v = check(raw, client_ip="192.0.2.9", helo="x", mail_from="a@bank.test", resolver=resolver)
    assert (v.dkim, v.dmarc) == ("pass", "fail")


def test_tampered_signature_fails_and_no_policy_is_none(dns):
    resolver = Resolver(dns.address, timeout=1)
    raw = sign(mail("alerts@bank.test"), "s1", "bank.test", KEY).replace(b"confirm", b"wire money to")
    v = check(raw, client_ip="192.0.2.9", helo="x", mail_from="a@bank.test", resolver=resolver)
    assert (v.dkim, v.dmarc) == ("fail", "fail")
    v = check(mail("me@open.test"), client_ip="192.0.2.9", helo="x", mail_from="me@open.test", resolver=resolver)
    assert (v.spf, v.dmarc) == ("neutral", "none") and "no DMARC policy" in v.reason


def test_dns_that_does_not_answer_is_temperror(dns):
    dns.txt("_dmarc.slow.test", "v=DMARC1; p=reject")
    dns.silence("slow.test")
    dns.silence("s1._domainkey.slow.test")
    raw = sign(mail("a@slow.test"), "s1", "slow.test", KEY)
    v = check(raw, client_ip="127.0.0.1", helo="x", mail_from="a@slow.test", resolver=Resolver(dns.address, timeout=0.5))
    assert (v.spf, v.dkim, v.dmarc) == ("temperror", "temperror", "temperror")
    assert sender_authentication(v.dmarc) == "none"
    dns.silence("_dmarc.slower.test")
    v = check(mail("a@slower.test"), client_ip="127.0.0.1", helo="x", mail_from="", resolver=Resolver(dns.address, timeout=0.5))
    assert v.dmarc == "temperror"


GOOGLE = (b"Authentication-Results: mx.google.com;\r\n dkim=pass header.i=@bank.test header.s=s1 header.b=AbC;\r\n"
          b" spf=pass (google.com: domain of a@bank.test designates 1.2.3.4 as permitted sender)"
          b" smtp.mailfrom=a@bank.test;\r\n dmarc=fail (p=REJECT sp=REJECT dis=REJECT) header.from=bank.test\r\n")


def test_authentication_results_only_from_a_trusted_host():
    v = from_authentication_results(GOOGLE + mail("a@bank.test"), DEFAULT_TRUSTED_HOSTS)
    assert (v.spf, v.spf_domain, v.dkim, v.dkim_domain, v.dmarc, v.from_domain) == \
        ("pass", "bank.test", "pass", "bank.test", "fail", "bank.test")
    assert "mx.google.com" in v.reason
    forged = GOOGLE.replace(b"mx.google.com;", b"mx.evil.test;").replace(b"dmarc=fail", b"dmarc=pass")
    v = from_authentication_results(forged + mail("a@bank.test"), DEFAULT_TRUSTED_HOSTS)
    assert (v.spf, v.dkim, v.dmarc) == ("none", "none", "none") and "trusted" in v.reason
    # The topmost trusted header counts (the provider prepends its own above what the sender wrote)
    top = b"Authentication-Results: DM6PR01.prod.outlook.com; dmarc=pass header.from=bank.test\r\n"
    assert from_authentication_results(top + GOOGLE + mail("a@bank.test"), DEFAULT_TRUSTED_HOSTS).dmarc == "pass"
    # Microsoft's header without an authserv-id cannot be attributed: not used
    bare = b"Authentication-Results: spf=pass smtp.mailfrom=bank.test; dmarc=pass header.from=bank.test\r\n"
    assert from_authentication_results(bare + mail("a@bank.test"), DEFAULT_TRUSTED_HOSTS).dmarc == "none"
    assert trusted("EUR05.PROD.OUTLOOK.COM", DEFAULT_TRUSTED_HOSTS) and not trusted("prod.outlook.com.evil.test",
                                                                                    DEFAULT_TRUSTED_HOSTS)


def test_organisational_domain_and_alignment():
    assert organizational_domain("mail.bank.example") == "bank.example"
    assert organizational_domain("a.b.co.uk") == "b.co.uk"
    assert aligned("mail.bank.example", "bank.example") and not aligned("mail.bank.example", "bank.example", "s")
    assert not aligned("bank.example.evil.test", "bank.example")


@pytest.mark.parametrize("domain, expected", [
    ("acme.com", None), ("support.acme.com", None), ("example.org", None), ("other.test", None),
    ("acme.co", "acme.com"), ("amce.com", "acme.com"), ("acne.com", "acme.com"),
    ("\u0430cme.com", "acme.com"),              # Cyrillic a
    ("xn--cme-5cd.com", "acme.com"),            # the same, as punycode
    ("rnail.pigeonhole.test", "mail.pigeonhole.test"), ("paypa1.test", "paypal.test"),
])
def test_lookalike_domains(domain, expected):
    own = ["acme.com", "mail.pigeonhole.test", "paypal.test"]
    assert lookalike_of(domain, own) == expected


def test_skeleton_and_sender_authentication():
    assert skeleton("xn--pypal-4ve.test") == skeleton("paypal.test")
    assert sender_authentication("pass", "acme.com") == "fail"
    assert [sender_authentication(r) for r in ("pass", "fail", "none", "temperror", None)] == \
        ["pass", "fail", "none", "none", "none"]
