"""DKIM end to end: keys verified against a loopback DNS sign what the send job gives the SMTP server."""
from __future__ import annotations

import dkim
import pytest

from app.mail.dkim import generate_private_key, record_tags, record_value
from app.mail.dnscheck import FAILED, PENDING, SUCCESS, TEMPORARY, Resolver
from app.models.inbox import Message
from app.runtime.dkim import (DkimError, add_key, make_active, record_of, recheck_dkim_keys, signing_key,
                              verify_key)
from app.runtime.outbound import deliver_message, send_reply
from tests.factories import make_sending_address, make_sending_conversation

DOMAIN = "mail.pigeonhole.test"


def _send(db, conversation) -> Message:
    message = send_reply(conversation.id, None, "<p>Your order left our warehouse today.</p>")
    db.session.commit()
    assert deliver_message(message.id)["sent"] == 1
    db.session.expire_all()
    return db.session.get(Message, message.id)


def test_replies_are_signed_once_a_key_is_verified_and_verify_at_the_receiver(app, db, dns, relay):
    address = make_sending_address(forwarded_from="support@acme.test")
    conversation = make_sending_conversation(address, email="carol@example.com")
    key = add_key(DOMAIN, "s1")
    db.session.commit()

    # Not published yet: Pending, not active, replies leave unsigned.
    assert verify_key(key).status == PENDING and not key.active
    db.session.commit()
    unsigned = _send(db, conversation)
    assert not relay.messages[0]["data"].startswith(b"DKIM-Signature") and unsigned.dkim_signature is None

    dns.txt(record_of(key)["name"], record_of(key)["value"])
    assert verify_key(key).status == SUCCESS and key.active  # the domain's first verified key signs
    db.session.commit()
    sent = _send(db, conversation)
    data = relay.messages[1]["data"]
    assert dkim.verify(data, dnsfunc=Resolver(dns.address, timeout=1).dkim_txt)
    assert data.startswith(sent.dkim_signature.encode()) and "s=s1;" in sent.dkim_signature.replace(" ", "")
    tags = record_tags(sent.dkim_signature.split(":", 1)[1])
    assert (tags["a"], tags["c"], tags["d"]) == ("rsa-sha256", "relaxed/relaxed", DOMAIN)
    assert tags["h"].split(":") == ["from", "reply-to", "to", "subject", "date", "message-id", "in-reply-to",
                                    "references", "mime-version", "content-type", "from"]
    # What a receiver does when the message is changed on the way: the signature fails.
    assert not dkim.verify(data.replace(b"warehouse", b"wareh0use"), dnsfunc=Resolver(dns.address, timeout=1).dkim_txt)


def test_rotation_a_second_selector_signs_once_verified_and_made_active(app, db, dns, relay):
    address = make_sending_address()
    conversation = make_sending_conversation(address)
    first = add_key(DOMAIN, "s1")
    dns.txt(record_of(first)["name"], record_of(first)["value"])
    verify_key(first)
    second = add_key(DOMAIN, "s2")
    db.session.commit()
    with pytest.raises(DkimError, match="already has a key with the selector s1"):
        add_key(DOMAIN, "S1")
    with pytest.raises(DkimError, match="Verify s2._domainkey"):
        make_active(second)
    # A wrong key published under s2: Failed, and it cannot sign.
    dns.txt(f"s2._domainkey.{DOMAIN}", record_value(generate_private_key()))
    check = verify_key(second)
    assert check.status == FAILED and "different public key" in check.detail and not second.active
    dns.remove(f"s2._domainkey.{DOMAIN}")
    dns.txt(record_of(second)["name"], record_of(second)["value"])
    assert verify_key(second).status == SUCCESS and not second.active  # s1 still signs until an admin switches
    assert signing_key(DOMAIN).selector == "s1"
    make_active(second)
    db.session.commit()
    db.session.refresh(first)
    assert not first.active and signing_key(DOMAIN).selector == "s2"
    _send(db, conversation)
    data = relay.messages[0]["data"]
    assert b"s=s2;" in data.split(b"\r\n\r\n", 1)[0].replace(b" ", b"")
    assert dkim.verify(data, dnsfunc=Resolver(dns.address, timeout=1).dkim_txt)


def test_cron_rechecks_pending_and_temporary_failures_until_verified(app, db, dns):
    app.config["DKIM_RECHECK_SECONDS"] = 0
    slow = add_key("slow.test", "s1")
    later = add_key(DOMAIN, "s1")
    dns.silence("s1._domainkey.slow.test")
    db.session.commit()
    assert recheck_dkim_keys() == 2
    db.session.refresh(slow)
    db.session.refresh(later)
    assert (slow.status, later.status) == (TEMPORARY, PENDING) and slow.last_checked_at is not None
    dns.txt(record_of(later)["name"], record_of(later)["value"])
    assert recheck_dkim_keys() == 2
    db.session.refresh(later)
    assert later.status == SUCCESS and later.active
    assert recheck_dkim_keys() == 1  # only the one still failing


def test_cron_enqueues_one_recheck_job_only_while_a_key_waits(app, db):
    from app.queues import get_queue
    from app.runtime.dkim import enqueue_dkim_rechecks

    enqueue_dkim_rechecks()
    assert "dkim-recheck" not in get_queue("poll").job_ids
    add_key(DOMAIN, "s1")
    db.session.commit()
    enqueue_dkim_rechecks()
    enqueue_dkim_rechecks()
    assert get_queue("poll").job_ids.count("dkim-recheck") == 1
