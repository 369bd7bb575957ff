"""Forwarding of a platform address over HTTP: the page (steps per provider, status), the ⋮ menu and the wizard's
Review lead to it, and a provider's confirmation is a notice admins can dismiss."""
from __future__ import annotations

import re

import pytest

from app.models.inbound import ForwardingConfirmation
from tests.factories import make_address
from tests.helpers import csrf_token
from tests.pages import full

LINK = "https://mail-settings.google.com/mail/vf-%5BABC%5D-def"


@pytest.fixture
def admin(login_as):
    return login_as("admin")


def confirmation(db, address, **fields) -> ForwardingConfirmation:
    row = ForwardingConfirmation(address_id=address.id, provider="gmail", requested_by="sales@acme.example",
                                 link=LINK, code="187412345", subject="(#187412345) Gmail Forwarding Confirmation")
    for name, value in fields.items():
        setattr(row, name, value)
    db.session.add(row)
    db.session.commit()
    return row


def test_forwarding_page_gives_each_providers_steps_for_the_published_address(client, db, admin):
    address = make_address("acme-support@mail.pigeonhole.test", forwarded_from="sales@acme.example")
    body = full(client.get(f"/channels/email/addresses/{address.id}/forwarding"))
    assert "<h1>Forwarding</h1>" in body
    for provider in ("Google Workspace and Gmail", "Microsoft 365", "Other providers and servers"):
        assert provider in body
    assert "Add a forwarding address. Enter acme-support@mail.pigeonhole.test" in body
    assert "X-Forwarded-For: sales@acme.example acme-support@mail.pigeonhole.test" in body
    assert "Redirect to" in body and "5.7.520" in body
    assert re.search(r'id="forwarding-status-text">\s*<span class="muted">Nothing received yet</span>', body)


def test_forwarding_page_is_for_admins_only(client, db, login_as):
    platform = make_address()
    login_as("supervisor")
    assert client.get(f"/channels/email/addresses/{platform.id}/forwarding").status_code == 403


def test_forwarding_page_is_for_platform_addresses_only(client, db, admin):
    custom = make_address("box@acme.example", kind="custom")
    assert client.get(f"/channels/email/addresses/{custom.id}/forwarding").status_code == 404
    assert client.get("/channels/email/addresses/987654/forwarding").status_code == 404


def test_unpublished_address_is_said_to_need_publishing_first(client, db, admin):
    address = make_address(publish=False)
    body = full(client.get(f"/channels/email/addresses/{address.id}/forwarding"))
    assert "is not published yet: publish it before you set up forwarding" in body


def test_the_address_menu_and_list_show_forwarding_for_platform_addresses_only(client, db, admin):
    platform = make_address("acme-support@mail.pigeonhole.test")
    custom = make_address("box@acme.example", kind="custom")
    body = full(client.get("/channels/email/"))
    assert f'href="/channels/email/addresses/{platform.id}/forwarding">Forwarding</a>' in body
    assert f"/channels/email/addresses/{custom.id}/forwarding" not in body
    assert "<th scope=\"col\">Forwarding</th>" in body and "Nothing received yet" in body


def test_the_wizards_review_shows_the_steps_and_links_the_page_when_editing(client, db, admin):
    address = make_address("acme-support@mail.pigeonhole.test", forwarded_from="sales@acme.example")
    token = csrf_token(client, "/channels/email/")
    edit = client.get(f"/channels/email/addresses/{address.id}/edit")
    base = edit.headers["Location"].rsplit("/", 1)[0]
    review = full(client.get(f"{base}/review"))
    assert "How to forward sales@acme.example to acme-support@mail.pigeonhole.test" in review
    assert f'href="/channels/email/addresses/{address.id}/forwarding">Forwarding</a>' in review
    assert 'id="review-fwd-google"' in review and token


def test_admins_see_a_confirmation_on_every_page_until_one_dismisses_it(client, db, admin):
    address = make_address("acme-support@mail.pigeonhole.test")
    row = confirmation(db, address)
    home = full(client.get("/channels/publish/"))
    notice = home.split('id="forwarding-notices"', 1)[1].split("</div>\n</div>", 1)[0]
    assert f'<a href="{LINK}" target="_blank" rel="noopener noreferrer">Confirm forwarding at Google</a>' in notice
    assert "<code>187412345</code>" in notice and "sales@acme.example" in notice
    token = csrf_token(client, "/channels/email/")
    gone = client.post(f"/channels/email/forwarding-confirmations/{row.id}/dismiss",
                       data={"csrf_token": token, "next": "/channels/publish/"})
    assert gone.status_code == 303 and gone.headers["Location"] == "/channels/publish/"
    db.session.expire_all()
    assert row.dismissed_at is not None and row.dismissed_by_id == admin.id
    assert 'id="forwarding-notices"' not in full(client.get("/channels/publish/"))
    assert LINK not in full(client.get(f"/channels/email/addresses/{address.id}/forwarding"))


def test_dismiss_goes_only_to_a_page_of_this_site_and_404s_on_an_unknown_one(client, db, admin):
    address = make_address()
    row = confirmation(db, address)
    token = csrf_token(client, "/channels/email/")
    response = client.post(f"/channels/email/forwarding-confirmations/{row.id}/dismiss",
                           data={"csrf_token": token, "next": "https://evil.example/"})
    assert response.headers["Location"] == f"/channels/email/addresses/{address.id}/forwarding"
    assert client.post("/channels/email/forwarding-confirmations/987654/dismiss",
                       data={"csrf_token": token}).status_code == 404


def test_a_confirmation_without_a_google_link_shows_its_code_and_no_link(client, db, admin):
    address = make_address()
    confirmation(db, address, link=None)
    body = full(client.get(f"/channels/email/addresses/{address.id}/forwarding"))
    assert "Confirm forwarding at Google" not in body and "<code>187412345</code>" in body


def test_a_confirmation_that_failed_dmarc_says_it_may_be_forged(client, db, admin):
    from tests.factories import make_conversation, make_message

    address = make_address()
    message = make_message(make_conversation(address=address))
    message.auth_dmarc = "fail"
    row = confirmation(db, address, message_id=message.id)
    body = full(client.get(f"/channels/email/addresses/{address.id}/forwarding"))
    assert "It failed the sender checks (DMARC): it may be" in body
    row.message.auth_dmarc = "pass"
    db.session.commit()
    assert "it may be" not in full(client.get(f"/channels/email/addresses/{address.id}/forwarding"))
