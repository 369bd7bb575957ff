"""The contact card (vCard 3.0, built with vobject) that introduces an address to a new customer.

The first message an address with "Send contact card (.VCF)" sends to a customer
carries this card as a `text/vcard` attachment, so the customer can save the
contact center in their address book in one click. The card describes the
organisation behind the address, not a person: `FN` is the display name, `N` is
empty (as vCard 3.0 wants for organisations), `ORG` the organisation, and
`X-ABShowAs:COMPANY` makes Apple's Contacts file it as a company.
"""
from __future__ import annotations

import re

import vobject

from app.mail.render import OutgoingAttachment

CONTENT_TYPE = "text/vcard; charset=utf-8"


def contact_card(display_name: str, email: str, organisation: str = "") -> bytes:
    """The vCard 3.0 of an address (UTF-8, CRLF lines)."""
    card = vobject.vCard()
    card.add("prodid").value = "-//Pigeonhole//Contact card//EN"
    name = (display_name or "").strip() or email
    card.add("fn").value = name
    card.add("n").value = vobject.vcard.Name()
    card.add("org").value = [(organisation or "").strip() or name]
    entry = card.add("email")
    entry.value = email
    entry.type_param = "INTERNET"
    card.add("x-abshowas").value = "COMPANY"
    return card.serialize().encode("utf-8")


def card_filename(display_name: str, email: str) -> str:
    """A file name for the card: the display name (or the mailbox name) with `.vcf`."""
    base = (display_name or "").strip() or email.split("@")[0]
    base = " ".join(re.sub(r'[\\/:*?"<>|\x00-\x1f]+', " ", base).split()) or "contact"
    return f"{base[:80]}.vcf"


def contact_card_attachment(display_name: str, email: str, organisation: str = "") -> OutgoingAttachment:
    return OutgoingAttachment(card_filename(display_name, email), CONTENT_TYPE,
                              contact_card(display_name, email, organisation))
