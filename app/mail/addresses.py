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

from functools import lru_cache

from email_validator import EmailNotValidError, ValidatedEmail, validate_email


class InvalidAddress(ValueError):
    """The value is not an address Pigeonhole accepts; the message says why."""


def check_address(value: str) -> ValidatedEmail:
    """The checked address: `.normalized` (domain in Unicode) and `.ascii_email` (domain in punycode).

    Raises `InvalidAddress`. Every Send checks its recipients, and email-validator's work
    (IDNA, Unicode normalisation) outweighs the rest of a Send's checks, so answers are kept
    per process (`_checked`; the same customers write again and again).
    """
    return _checked((value or "").strip())


@lru_cache(maxsize=4096)
def _checked(value: str) -> ValidatedEmail:
    if not value:
        raise InvalidAddress("Enter an email address.")
    try:
        return validate_email(value, check_deliverability=False, test_environment=True, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise InvalidAddress(str(exc)) from None


def is_valid_address(value: str) -> bool:
    """True when `check_address` accepts the value."""
    try:
        check_address(value)
    except InvalidAddress:
        return False
    return True
