"""SpamAssassin (Debian's, local tests only) scores a typical rendered reply at most 1.0."""
from __future__ import annotations

import os
import re
import subprocess

from app.runtime.outbound import outgoing_bytes, send_reply
from tests.factories import make_sending_address, make_sending_conversation, make_user

MAX_SCORE = 1.0


def test_a_typical_reply_is_not_spam(app, db, tmp_path):
    app.config["SMTP_RELAY_URL"] = "smtp://127.0.0.1:25?tls=none"  # queueing only; nothing is sent here
    address = make_sending_address(
        "acme-support@mail.pigeonhole.test", display_name="Acme Support", forwarded_from="support@acme.test",
        send_vcard=True, template_enabled=True, header_html="<p>Hello {{ customer_name }},</p>",
        footer_html="<p>Kind regards,<br>{{ agent_name }}<br>Acme Support · Reference {{ conversation_reference }}</p>")
    conversation = make_sending_conversation(address, email="carol@example.com", name="Carol Jones",
                                     subject="Where is my order 1234?")
    agent = make_user("agent", name="Alex Agent")
    message = send_reply(
        conversation.id, agent.id,
        "<p>Thanks for your patience. Your order 1234 left our warehouse this morning and should arrive "
        "within two working days.</p><p>You can follow it with the tracking link in your account.</p>")
    db.session.commit()
    raw = outgoing_bytes(message.id)

    env = dict(os.environ, HOME=str(tmp_path))  # its user preferences go to a throwaway home
    run = subprocess.run(["spamassassin", "-L", "-t"], input=raw, capture_output=True, timeout=120, env=env)
    assert run.returncode == 0, run.stderr.decode(errors="replace")
    out = run.stdout.decode("utf-8", "replace")
    score = float(re.search(r"Content analysis details:\s+\((-?[\d.]+) points", out).group(1))
    report = out[out.index("Content analysis details"):]
    rules = re.findall(r"^\s*(-?[\d.]+)\s+([A-Z0-9_]+)\s+(.*)$", report, re.MULTILINE)
    print(f"\nSpamAssassin score {score} (at most {MAX_SCORE}); rules that fired:")
    for points, name, description in rules:
        print(f"  {points:>5} {name:<24} {description}")
    assert rules, report  # the report was read (there are always informational rules)
    assert score <= MAX_SCORE, report


def _score(raw: bytes, tmp_path, *cf: str) -> tuple[float, str]:
    env = dict(os.environ, HOME=str(tmp_path))
    args = ["spamassassin", "-t"] + [f"--cf={line}" for line in cf]
    run = subprocess.run(args, input=raw, capture_output=True, timeout=120, env=env)
    assert run.returncode == 0, run.stderr.decode(errors="replace")
    out = run.stdout.decode("utf-8", "replace")
    return float(re.search(r"Content analysis details:\s+\((-?[\d.]+) points", out).group(1)), out


def test_a_signed_reply_passes_dkim_and_scores_no_worse(app, db, tmp_path):
    """SpamAssassin checks the signature against our loopback DNS: DKIM_VALID, and no higher score than unsigned."""
    from app.runtime.dkim import add_key, record_of, verify_key
    from app.runtime.outbound.deliver import dkim_signed
    from tests.dns_server import LoopbackDNS

    dns = LoopbackDNS()
    try:
        app.config.update(DNS_RESOLVER=dns.address, DNS_TIMEOUT_SECONDS=1)
        app.config["SMTP_RELAY_URL"] = "smtp://127.0.0.1:25?tls=none"
        address = make_sending_address(display_name="Acme Support", forwarded_from="support@acme.test")
        conversation = make_sending_conversation(address, email="carol@example.com", name="Carol Jones",
                                                 subject="Where is my order 1234?")
        message = send_reply(conversation.id, None, "<p>Your order 1234 left our warehouse this morning.</p>")
        key = add_key("mail.pigeonhole.test", "s1")
        dns.txt(record_of(key)["name"], record_of(key)["value"])
        assert verify_key(key).status == "Success"
        db.session.commit()
        raw = outgoing_bytes(message.id)
        _, signed = dkim_signed(raw, address.address, {})  # what the send job hands the SMTP server
        cf = (f"dns_server {dns.address}", "dns_available yes", "use_razor2 0", "use_pyzor 0", "skip_rbl_checks 1",
              "use_bayes 0")
        unsigned_score, _ = _score(raw, tmp_path, *cf)
        signed_score, report = _score(signed, tmp_path, *cf)
        assert "DKIM_VALID " in report and "DKIM_INVALID" not in report, report
        assert signed_score <= unsigned_score, report
    finally:
        dns.stop()
