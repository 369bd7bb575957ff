"""The contact card: a vCard 3.0 that parses back with the address's name, email and organisation."""
from __future__ import annotations

import vobject

from app.mail.vcard import card_filename, contact_card, contact_card_attachment


def test_card_parses_back():
    raw = contact_card("Söpport Team", "support@acme.test", "Acme GmbH")
    assert raw.startswith(b"BEGIN:VCARD\r\nVERSION:3.0\r\n") and raw.endswith(b"END:VCARD\r\n")
    card = vobject.readOne(raw.decode("utf-8"))
    assert card.fn.value == "Söpport Team"
    assert card.email.value == "support@acme.test" and card.email.type_param == "INTERNET"
    assert card.org.value == ["Acme GmbH"]
    assert card.contents["x-abshowas"][0].value == "COMPANY"


def test_organisation_defaults_to_the_display_name_and_names_fall_back_to_the_address():
    card = vobject.readOne(contact_card("", "help@acme.test").decode())
    assert card.fn.value == "help@acme.test" and card.org.value == ["help@acme.test"]
    assert card_filename("Acme / Support: EU", "x@y") == "Acme Support EU.vcf"
    assert card_filename("", "help@acme.test") == "help.vcf"
    att = contact_card_attachment("Acme", "help@acme.test")
    assert att.content_type == "text/vcard; charset=utf-8" and att.filename == "Acme.vcf"
