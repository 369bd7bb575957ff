"""`flask dkim generate|records|verify`: the JSON contract, against a loopback DNS server."""
from __future__ import annotations

import json

import pytest

from app.mail.dkim import txt_strings

DOMAIN = "mail.pigeonhole.test"


@pytest.fixture
def dns(dns, app):
    app.config.update(SPF_INCLUDE="include:_spf.relay.test", MX_HOST="in.pigeonhole.test")
    return dns


def test_generate_records_verify(app, db, dns):
    runner = app.test_cli_runner()
    made = runner.invoke(args=["dkim", "generate", DOMAIN.upper()], catch_exceptions=False)
    assert made.exit_code == 0, made.output
    record = json.loads(made.output)
    assert set(record) == {"domain", "selector", "name", "value"} and "PRIVATE" not in made.output
    assert (record["domain"], record["selector"], record["name"]) == (DOMAIN, "s1", f"s1._domainkey.{DOMAIN}")
    assert len(txt_strings(record["value"])) == 2

    failing = runner.invoke(args=["dkim", "verify", DOMAIN])
    assert failing.exit_code == 1
    assert json.loads(failing.output)[0]["status"] == "Pending"

    dns.txt(record["name"], record["value"])
    dns.txt(DOMAIN, "v=spf1 include:_spf.relay.test -all")
    dns.txt(f"_dmarc.{DOMAIN}", "v=DMARC1; p=quarantine")
    dns.mx(DOMAIN, "in.pigeonhole.test")
    ok = runner.invoke(args=["dkim", "verify", DOMAIN])
    assert ok.exit_code == 0, ok.output
    listed = json.loads(runner.invoke(args=["dkim", "records", DOMAIN]).output)
    assert [(r["type"], r["status"]) for r in listed] == [("DKIM", "Success"), ("SPF", "Success"),
                                                         ("DMARC", "Success"), ("MX", "Success")]
    assert listed[0]["value"] == record["value"] and {"type", "name", "value", "status"} <= set(listed[0])

    second = runner.invoke(args=["dkim", "generate", DOMAIN, "--selector", "s1"])
    assert second.exit_code != 0 and "already has a key with the selector s1" in second.output
    assert json.loads(runner.invoke(args=["dkim", "generate", DOMAIN]).output)["selector"] == "s2"
    bad = runner.invoke(args=["dkim", "generate", "nodots"])
    assert bad.exit_code != 0 and "Enter a domain name" in bad.output
