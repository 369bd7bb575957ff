"""The address wizard's rough edges, over HTTP: Test Connection needs only the connection, every form error
shows at once, wizard links cannot be guessed or reused, and a restored address keeps its past."""
from __future__ import annotations

import re
from datetime import datetime, timezone

from sqlalchemy import select

from app.channels import addresses
from app.models.channels import AddressSetup, EmailAddress
from app.publish.services import publish_addresses
from tests.channel_factories import custom_values, make_address, make_conversation, make_domain
from tests.factories import make_user
from tests.helpers import csrf_token
from tests.pages import HX, fragment, full
from tests.web.test_channel_pages import custom_form, new_setup, platform_form


def test_test_connection_runs_without_a_display_name(client, db, login_as):
    login_as("admin")
    token = csrf_token(client, "/channels/email/")
    base = new_setup(client, token, make_domain("acme.test").id)
    # Only the connection's fields: no Display Name, no Usage radios.
    form = custom_form(token, "help@acme.test", display_name="", incoming_host="127.0.0.1", incoming_port="1",
                       outgoing_host="127.0.0.1", outgoing_port="1", allow_plaintext_auth="y",
                       incoming_security="none", outgoing_security="none")
    for key in ("send_vcard", "enabled", "use_reply_to_identity", "channel_sessions"):
        form.pop(key)
    tested = fragment(client.post(f"{base}/test", data=form, headers=HX))
    assert "Test Connection needs these first" not in tested and "Display Name" not in tested
    assert "Incoming: Failed." in tested and "Outgoing: Failed." in tested  # it ran (nothing listens on port 1)
    # A missing connection field is still named.
    missing = fragment(client.post(f"{base}/test", data={**form, "address": ""}, headers=HX), 422)
    assert "Test Connection needs these first" in missing and "Email Address" in missing


def test_every_error_of_the_address_step_shows_at_once(client, db, login_as):
    login_as("admin")
    token = csrf_token(client, "/channels/email/")
    base = new_setup(client, token, make_domain("acme.test").id)
    page = fragment(client.post(f"{base}/address", headers=HX, data=custom_form(
        token, "help@elsewhere.test", display_name="", password="", incoming_host="bad host!",
        outgoing_port="70000")), 422)
    for said in ("Enter the display name customers see.", "The address must be on acme.test.",
                 "is not a valid server name.", "A port is a number from 1 to 65535.",
                 "Enter the mailbox password."):
        assert said in page, said
    assert page.count('aria-invalid="true"') >= 5

    platform = new_setup(client, token)
    both = fragment(client.post(f"{platform}/address", headers=HX,
                                data=platform_form(token, display_name="", forwarded_from="not an address")), 422)
    assert "Enter the display name customers see." in both and 'id="forwarded_from"' in both
    assert both.count('aria-invalid="true"') >= 2


def test_wizard_links_are_unguessable_and_never_reused(client, db, login_as):
    login_as("admin")
    token = csrf_token(client, "/channels/email/")
    first = new_setup(client, token)
    first_id = first.rsplit("/", 1)[1]
    assert re.fullmatch(r"[A-Za-z0-9_-]{32}", first_id)
    client.post(f"{first}/discard", data={"csrf_token": token})
    second = new_setup(client, token)
    assert second != first
    # The discarded wizard's link opens nothing, not the new wizard, and the row number is no key.
    assert client.get(f"{first}/address").status_code == 404
    row = db.session.scalar(select(AddressSetup).where(AddressSetup.token == second.rsplit("/", 1)[1]))
    assert client.get(f"/channels/email/setup/{row.id}/address").status_code == 404
    full(client.get(f"{second}/address"))


def test_a_restored_address_remembers_it_was_published_and_its_last_test(app, db):
    admin = make_user("admin")
    domain = make_domain("acme.test")
    address = make_address(admin, domain, custom_values("help@acme.test"), password="secret-pw")
    address.last_test_ok, address.last_test_at = True, datetime(2026, 1, 2, tzinfo=timezone.utc)
    address.last_test_message = "Connected"
    publish_addresses([address.id], admin.id, "live")
    make_conversation(address)
    assert addresses.delete_address(address.id) == "archived"
    db.session.commit()

    restored = make_address(admin, domain, custom_values("help@acme.test"), password="secret-pw")
    assert restored.id == address.id
    assert restored.publish_state == "Unpublished changes"  # it was live once; Publish makes it live again
    assert restored.last_test_ok is True and restored.last_test_message == "Connected"

    # Restored with another password, the old test proves nothing.
    make_conversation(restored)
    addresses.delete_address(restored.id)
    db.session.commit()
    again = make_address(admin, domain, custom_values("help@acme.test"), password="another-pw")
    assert again.last_test_ok is None and again.publish_state == "Unpublished changes"
    assert db.session.get(EmailAddress, again.id).published is None  # not live until published
