"""Enable Channel's "When disabled" choice over HTTP: the wizard (label for, default, the sentence of what each
does, review), Publish's preview of the change, and the held count on the address list (issue 20, defect 5)."""
from __future__ import annotations

import re

from sqlalchemy import select

from app.models.channels import EmailAddress
from app.models.inbound import InboundRaw
from app.publish import services as publishing
from tests.pages import HX, fragment, full, location
from tests.web.test_channel_pages import admin, new_setup, platform_form, token  # noqa: F401 (fixtures)


def test_the_wizard_offers_hold_by_default_and_refuse_and_says_what_each_does(client, db, token):  # noqa: F811
    base = new_setup(client, token)
    page = full(client.get(f"{base}/address"))
    assert "<legend>When disabled</legend>" in page
    assert '<label for="when_disabled-0">Hold new mail</label>' in page
    assert '<label for="when_disabled-1">Refuse new mail</label>' in page
    radios = dict(re.findall(r'(<input[^>]*name="when_disabled"[^>]*value="(\w+)"[^>]*>)', page)[i][::-1]
                  for i in range(2))
    assert "checked" in radios["hold"] and "checked" not in radios["refuse"], radios
    assert "accepted and kept" in page and "routed as usual once you enable the channel and publish again" in page
    assert "bounces it back to the customer" in page
    assert '<label for="when_disabled-1">' in fragment(client.get(f"{base}/address", headers=HX))

    # Bad input: an unknown choice is refused with the form again, and nothing typed is lost.
    bad = fragment(client.post(f"{base}/address", data=platform_form(token, when_disabled="bounce"),
                               headers=HX), 422)
    assert "Not a valid choice" in bad and 'value="Acme Help"' in bad

    location(client.post(f"{base}/address", data=platform_form(token, enabled="no", when_disabled="refuse"),
                         headers=HX))
    location(client.post(f"{base}/design", data={"csrf_token": token, "action": "next"}, headers=HX))
    review = full(client.get(f"{base}/review"))
    assert "<dt>When disabled</dt><dd>Refuse new mail</dd>" in review
    client.post(f"{base}/review", data={"csrf_token": token})
    address = db.session.scalar(select(EmailAddress).where(EmailAddress.address == "help@mail.pigeonhole.test"))
    assert (address.enabled, address.when_disabled) == (False, "refuse")
    listing = full(client.get("/channels/email/"))
    assert "Refuse new mail" in listing.split(f'id="address-{address.id}"')[1].split("</tr>")[0]


def test_publish_preview_shows_the_choice_and_the_list_shows_what_is_held(client, db, admin, token):  # noqa: F811
    base = new_setup(client, token)
    location(client.post(f"{base}/address", data=platform_form(token, enabled="no"), headers=HX))
    location(client.post(f"{base}/design", data={"csrf_token": token, "action": "next"}, headers=HX))
    client.post(f"{base}/review", data={"csrf_token": token})
    address = db.session.scalar(select(EmailAddress).where(EmailAddress.address == "help@mail.pigeonhole.test"))
    assert address.when_disabled == "hold"
    assert "New address (Inbound and Outbound, disabled, hold new mail)" in full(client.get("/channels/publish/"))
    publishing.publish_addresses([address.id], admin.id, "go live disabled")
    db.session.commit()

    address.when_disabled = "refuse"
    address.touch_draft()
    db.session.commit()
    page = full(client.get("/channels/publish/"))
    assert "When disabled: Hold new mail → Refuse new mail" in page
    confirm = fragment(client.post("/channels/publish/new", headers=HX, data={
        "csrf_token": token, "comment": "refuse instead", "item": [f"address:{address.id}"]}))
    assert "When disabled: Hold new mail → Refuse new mail" in confirm

    for n in range(3):
        db.session.add(InboundRaw(address_id=address.id, source="smtp", raw_sha256=f"{n:064x}", status="held"))
    db.session.commit()
    row = full(client.get("/channels/email/")).split(f'id="address-{address.id}"')[1].split("</tr>")[0]
    assert "3 messages held" in row and "Refuse new mail" in row

    address.enabled = True
    address.touch_draft()
    db.session.commit()
    assert "Enable Channel: No → Yes (mail held meanwhile is routed now)" in full(client.get("/channels/publish/"))
    publishing.publish_addresses([address.id], admin.id, "on again")
    db.session.commit()
    address.enabled, address.when_disabled = False, "hold"
    address.touch_draft()
    db.session.commit()
    assert "Enable Channel: Yes → No (new mail is held, out of every queue, until enabled again)" in full(
        client.get("/channels/publish/"))
