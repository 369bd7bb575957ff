"""Which email addresses Pigeonhole accepts, one policy for setup, the composer, flows and outbound mail.

`check_address(value)` answers for one bare address (`local@domain`):

* syntax as email-validator reads it (RFC 5321/5322 addr-spec, no quoted oddities);
* the domain has a dot and is not a special-use name nobody can deliver to
  (`localhost`, `.local`, `.invalid`, `.onion`, `.arpa`: RFC 6761 and friends).
  `.test` is accepted (RFC 2606 reserves it for testing: demos and staging installs
  use it) and so are the `example.*` domains;
* the local part is ASCII: we do not send SMTPUTF8 mail, so an address we could not
  send to is refused where it is typed, not later in the send queue.
  Internationalised domains are fine (sent as punycode).

It raises `InvalidAddress` with a sentence for the person who typed it. Nothing here
looks up DNS.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email


class InvalidAddress(ValueError):
    """The value is not an address Pigeonhole accepts; the message says why."""


class CheckedAddress(NamedTuple):
    """An accepted address: `normalized` (domain lower-case, in Unicode), `ascii_email` and `ascii_domain`
    (domain in punycode). The local part is kept as typed."""

    normalized: str
    ascii_email: str
    ascii_domain: str


#: The special-use names we refuse (RFC 6761 and friends); `.test` stays usable (see the module docstring).
REFUSED_TLDS = frozenset(SPECIAL_USE_DOMAIN_NAMES) - {"test"}

#: The plain shape most addresses have: a dot-atom local part and an ASCII host name with a letters-only
#: top-level label, no "--" (no punycode to check) and within RFC 5321's lengths. Such an address needs
#: none of email-validator's Unicode and IDNA work; anything else goes through it.
_PLAIN = re.compile(
    r"(?P<local>[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,64}(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,64})*)"
    r"@(?P<domain>(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63})")


def check_address(value: str) -> CheckedAddress:
    """The accepted address. Raises `InvalidAddress` with the reason.

    Every Send checks its recipients: the plain shape is read by a regular expression, the
    rest by email-validator, and answers are kept per process (the same customers write
    again and again).
    """
    return _checked((value or "").strip())


@lru_cache(maxsize=4096)
def _checked(value: str) -> CheckedAddress:
    plain = _PLAIN.fullmatch(value)
    if plain and "--" not in plain["domain"] and len(plain["local"]) <= 64 and len(value) <= 254 \
            and plain["domain"].rpartition(".")[2].lower() not in REFUSED_TLDS:
        domain = plain["domain"].lower()
        email = f"{plain['local']}@{domain}"
        return CheckedAddress(email, email, domain)
    if not value:
        raise InvalidAddress("Enter an email address.")
    try:
        checked = validate_email(value, check_deliverability=False, test_environment=True, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise InvalidAddress(str(exc)) from None
    return CheckedAddress(checked.normalized, checked.ascii_email, checked.ascii_domain)


def is_valid_address(value: str) -> bool:
    """True when `check_address` accepts the value."""
    try:
        check_address(value)
    except InvalidAddress:
        return False
    return True
