"""What an enhanced status code (RFC 3463) means for the address it was said of.

* `failure_class(kind, status)`: "hard" for a final failure with a 5.x.x status (the address
  will not take mail: suppress it at once), "soft" for a final failure with a 4.x.x status or
  none at all (counted; enough of them suppress too), None for anything that is not a final
  failure: a delayed report ("delayed", Action: delayed, whatever its 4.x.x), a delivered or
  relayed one, a complaint, a read receipt;
* `status_meaning(status)`: the words an agent understands ("mailbox does not exist") for the
  common codes, else the class of the subject ("a problem with the mailbox"), else "".
"""
from __future__ import annotations

import re

HARD = "hard"
SOFT = "soft"

_CODE = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})$")

#: RFC 3463 section 3, in the words of the composer's warning.
_DETAIL = {
    "1.0": "the address is not valid",
    "1.1": "mailbox does not exist",
    "1.2": "the domain does not exist or takes no mail",
    "1.3": "the address is not valid",
    "1.6": "the mailbox has moved",
    "1.10": "the address takes no mail (null MX)",
    "2.0": "the mailbox is not available",
    "2.1": "the mailbox is disabled",
    "2.2": "mailbox full",
    "2.3": "the message is too large for the mailbox",
    "3.0": "the receiving mail system failed",
    "3.1": "the receiving mail system is full",
    "3.4": "the message is too large",
    "4.0": "the mail could not be routed",
    "4.1": "the receiving server did not answer",
    "4.4": "the mail could not be routed",
    "4.7": "delivery took too long and was given up",
    "5.0": "the receiving server refused the mail",
    "7.0": "the receiving server refused the mail (policy)",
    "7.1": "the receiving server refused the sender",
    "7.26": "the receiving server refused the mail (authentication failed)",
}
_SUBJECT = {
    "1": "a problem with the address",
    "2": "a problem with the mailbox",
    "3": "a problem with the receiving mail system",
    "4": "a network or routing problem",
    "5": "a mail protocol problem",
    "6": "a problem with the message content",
    "7": "refused by the receiving server's policy",
}


def failure_class(kind: str, status: str | None) -> str | None:
    """"hard", "soft" or None (not a final failure): see the module docstring."""
    if kind != "failed":
        return None
    match = _CODE.match((status or "").strip())
    if match and match.group(1) == "5":
        return HARD
    if match and match.group(1) == "2":  # a failed Action with a success status says nothing we trust
        return None
    return SOFT


def status_meaning(status: str | None) -> str:
    match = _CODE.match((status or "").strip())
    if not match:
        return ""
    _class, subject, detail = match.groups()
    return _DETAIL.get(f"{subject}.{detail}") or _SUBJECT.get(subject, "")
