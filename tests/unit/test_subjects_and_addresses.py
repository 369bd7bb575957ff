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


def test_the_plain_shape_shortcut_never_disagrees_with_email_validator():
    # check_address reads plain ASCII addresses with a regular expression; whatever it accepts that way,
    # email-validator (the policy's reference) must accept with the same normalisation, and what it refuses
    # must be refused. Random strings from the characters that matter, plus the edge cases.
    import random

    from email_validator import EmailNotValidError, validate_email

    from app.mail.addresses import _PLAIN

    rng = random.Random(5322)
    alphabet = "aZ09.-_+@" + "x" * 6
    samples = ["a@b.co", "a..b@x.com", ".a@x.com", "a.@x.com", "a@-x.com", "a@x-.com", "a@x..com", "a@x.c",
               "a@x.c0m", "a@x.123", "a@xn--mller-kva.de", "a@ab--cd.com", "a@x.local", "a@x.LOCALHOST",
               "a@printer.Local", "a@x.test", "a@x.example", "A+b=c/d?e@Example.ORG", "x" * 64 + "@x.com",
               "x" * 65 + "@x.com", "a@" + "b" * 63 + ".com", "a@" + "b" * 64 + ".com",
               "a@" + ".".join(["b" * 60] * 4) + ".com", "a@x.co_m", "a b@x.com", "a@x.com."]
    samples += ["".join(rng.choice(alphabet) for _ in range(rng.randint(3, 14))) for _ in range(2000)]

    def part(chars: str, n: int) -> str:
        return "".join(rng.choice(chars) for _ in range(rng.randint(1, n)))

    for _ in range(2000):  # address-shaped: atoms, labels and top-level labels with the awkward characters
        local = ".".join(part("ab9Z_+-=.", 8) for _ in range(rng.randint(1, 3)))
        labels = [part("ab9-", 10) for _ in range(rng.randint(1, 3))]
        samples.append(f"{local}@{'.'.join(labels)}.{rng.choice(['com', 'de', 'c', 'c0', 'test', 'local', 'onion', 'Co'])}")
    fast = 0
    for value in samples:
        try:
            reference = validate_email(value, check_deliverability=False, test_environment=True,
                                       allow_smtputf8=False)
        except EmailNotValidError:
            reference = None
        if _PLAIN.fullmatch(value):
            fast += 1
        if reference is None:
            assert not is_valid_address(value), value
        else:
            checked = check_address(value)
            assert (checked.normalized, checked.ascii_email, checked.ascii_domain) == (
                reference.normalized, reference.ascii_email, reference.ascii_domain), value
    assert fast > 300  # the shortcut was exercised (353 of these samples take it)
