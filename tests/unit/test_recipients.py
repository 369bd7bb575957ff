"""Reply, Reply All and Forward rules, and address validation (pure functions)."""
from __future__ import annotations

from app.inbox.recipients import Replied, parse_addresses, reply_all_recipients, reply_recipients
from app.mail.subjects import forward_subject, reply_subject

OWN = {"help@mail.pigeonhole.test", "help@acme.test"}


def _in(**kw):
    base = dict(direction="in", from_addr="Carol <carol@example.com>", reply_to="", to_addrs="help@acme.test",
                cc_addrs="", subject="Parcel")
    base.update(kw)
    return Replied(**base)


def test_reply_goes_to_the_sender_or_their_reply_to():
    assert reply_recipients(_in(), OWN) == (["Carol <carol@example.com>"], [])
    assert reply_recipients(_in(reply_to="orders@example.com"), OWN) == (["orders@example.com"], [])


def test_reply_to_our_own_message_goes_to_its_recipients_again():
    ours = _in(direction="out", from_addr="help@acme.test", to_addrs="carol@example.com, Dave <dave@example.com>")
    assert reply_recipients(ours, OWN) == (["carol@example.com", "Dave <dave@example.com>"], [])


def test_reply_all_keeps_cc_removes_our_addresses_and_duplicates():
    message = _in(to_addrs="help@acme.test, Eve <eve@example.com>, HELP@mail.pigeonhole.test",
                  cc_addrs="dave@example.com, carol@example.com, eve@example.com")
    to, cc = reply_all_recipients(message, OWN)
    assert to == ["Carol <carol@example.com>"]
    assert cc == ["Eve <eve@example.com>", "dave@example.com"]


def test_reply_all_on_our_message_keeps_its_to_and_cc():
    ours = _in(direction="out", from_addr="help@acme.test", to_addrs="carol@example.com",
               cc_addrs="dave@example.com, help@acme.test")
    assert reply_all_recipients(ours, OWN) == (["carol@example.com"], ["dave@example.com"])


def test_subjects():
    assert reply_subject("Parcel") == "Re: Parcel"
    assert reply_subject("RE: Parcel") == "Re: Parcel"
    assert reply_subject("AW: Paket") == "Re: Paket"
    assert reply_subject("") == "Re:"
    assert forward_subject("Parcel") == "Fwd: Parcel"
    assert forward_subject("Fw: Parcel") == "Fwd: Parcel"
    assert forward_subject("Re: Parcel") == "Fwd: Re: Parcel"


def test_parse_addresses_accepts_several_and_names_each_bad_one():
    parsed = parse_addresses('carol@example.com; "Smith, Dave" <dave@example.com>,\nbad@, not an address, '
                             'CAROL@example.com, x@localhost')
    assert parsed.addresses == ["carol@example.com", '"Smith, Dave" <dave@example.com>']
    assert parsed.emails == ["carol@example.com", "dave@example.com"]
    assert len(parsed.errors) == 3
    assert parsed.errors[0] == "“bad@” is not a valid email address."
    assert "not an address" in parsed.errors[1] and "x@localhost" in parsed.errors[2]
    assert parse_addresses("").addresses == [] and parse_addresses("  ,  ").errors == []


def test_the_composer_answers_as_setup_does_for_test_domains_and_unsendable_local_parts():
    # The composer refused customers on .test domains that channel setup accepted, and took
    # non-ASCII local parts that the send queue then refused: one policy now (app.mail.addresses).
    parsed = parse_addresses("carol@shop.test, jörg@example.com, ops@müller.de")
    assert parsed.emails == ["carol@shop.test", "ops@müller.de"]
    assert len(parsed.errors) == 1 and "jörg@example.com" in parsed.errors[0]
