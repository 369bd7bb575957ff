"""`app.mail.subjects` and `app.mail.addresses`: the one subject rule and the one address policy."""
from __future__ import annotations

import pytest

from app.mail.addresses import InvalidAddress, check_address, is_valid_address
from app.mail.subjects import forward_subject, reply_subject, thread_key


@pytest.mark.parametrize("subject, reply", [
    ("order 17", "Re: order 17"),
    ("Re: order 17", "Re: order 17"),
    ("Re: Re: order 17", "Re: order 17"),
    ("RE: order 17", "Re: order 17"),
    ("AW: x", "Re: x"),
    ("Aw: AW: x", "Re: x"),
    ("SV: x", "Re: x"),
    ("Antw: x", "Re: x"),
    ("Antwort: x", "Re: x"),
    ("Re[2]: x", "Re: x"),
    ("Re (3): x", "Re: x"),
    ("回复：退款", "Re: 退款"),
    ("答复: x", "Re: x"),
    ("ΑΠ: x", "Re: x"),
    ("Odp: x", "Re: x"),
    ("Fwd: x", "Re: Fwd: x"),  # a forward marker stays
    ("Re: Fwd: x", "Re: Fwd: x"),
    ("  ", "Re:"),
    (None, "Re:"),
    ("Reorder 17", "Re: Reorder 17"),  # a word that starts like a prefix is not one
    ("Sverige: x", "Re: Sverige: x"),
])
def test_a_reply_has_re_once(subject, reply):
    assert reply_subject(subject) == reply


@pytest.mark.parametrize("subject, forward", [
    ("x", "Fwd: x"),
    ("Fwd: x", "Fwd: x"),
    ("FW: x", "Fwd: x"),
    ("WG: x", "Fwd: x"),
    ("TR: x", "Fwd: x"),
    ("转发: x", "Fwd: x"),
    ("Re: x", "Fwd: Re: x"),  # a reply marker stays
    ("", "Fwd:"),
])
def test_a_forward_has_fwd_once(subject, forward):
    assert forward_subject(subject) == forward


def test_thread_keys_drop_every_prefix_counter_and_case():
    assert thread_key("Re: AW: [2] Fwd: Order  17") == "order 17"
    assert thread_key("回复：Re[2]: ORDER 17") == "order 17"
    assert thread_key("Reorder 17") == "reorder 17"
    assert thread_key(None) == ""
    # A reply made by reply_subject threads with its original.
    for subject in ("AW: order 17", "Re: Re: order 17", "WG: order 17"):
        assert thread_key(reply_subject(subject)) == thread_key(subject) == "order 17"


@pytest.mark.parametrize("value", ["carol@example.com", "Carol.Customer+tag@Example.COM", "help@demo.test",
                                   "a@mail.pigeonhole.test", "ops@müller.de"])
def test_accepted_addresses(value):
    assert is_valid_address(value)


def test_an_internationalised_domain_is_kept_in_unicode_and_in_punycode():
    checked = check_address(" ops@müller.de ")
    assert (checked.normalized, checked.ascii_email) == ("ops@müller.de", "ops@xn--mller-kva.de")


@pytest.mark.parametrize("value, says", [
    ("", "Enter an email address."),
    ("x@localhost", "period"),
    ("x@printer.local", "special-use"),
    ("x@host.invalid", "special-use"),
    ("x@site.onion", "special-use"),
    ("jörg@example.com", "Internationalized characters before the @-sign"),
    ("no-at-sign", "@-sign"),
    ("a@@b.com", "@"),
])
def test_refused_addresses_say_why(value, says):
    with pytest.raises(InvalidAddress) as refused:
        check_address(value)
    assert says in str(refused.value)
    assert not is_valid_address(value)
