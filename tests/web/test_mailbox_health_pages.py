"""Mailboxes that say what is wrong, over HTTP: the "Poll now" buttons and the admins' banner of failing mailboxes."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from app.models.channels import MailboxState
from app.queues import get_queue
from tests.helpers import csrf_token
from tests.mail.conftest import make_address
from tests.pages import HX


def backing_off(db, email="help@acme.test", **fields):
    """A published IMAP mailbox that failed 5 times in a row (next poll an hour away)."""
    address = make_address(email, "custom", usage="inbound", username=email, password="pw",
                           incoming_protocol="imap", incoming_host="127.0.0.1", incoming_port=993,
                           incoming_security="ssl", **fields)
    db.session.add(MailboxState(address_id=address.id, folder="INBOX", error_count=5, last_error="refused",
                                next_poll_at=datetime.now(timezone.utc) + timedelta(hours=1)))
    db.session.commit()
    return address


def state(db, address_id):
    db.session.expire_all()
    return db.session.scalars(select(MailboxState).where(MailboxState.address_id == address_id)).one()


def test_poll_now_on_the_address_forgets_the_backoff_and_queues_the_poll(client, db, login_as):
    login_as("admin")
    address = backing_off(db)
    outbound = make_address("out@acme.test", "custom", usage="outbound", outgoing_host="127.0.0.1",
                            outgoing_port=25, outgoing_security="none")
    page = client.get("/channels/email/").get_data(as_text=True)
    assert f'action="/channels/email/addresses/{address.id}/poll"' in page and ">Poll now</button>" in page
    assert f"/channels/email/addresses/{outbound.id}/poll" not in page  # it polls nothing

    token = csrf_token(client, "/channels/email/")
    response = client.post(f"/channels/email/addresses/{address.id}/poll", data={"csrf_token": token})
    assert response.status_code == 303 and response.headers["Location"].endswith(f"#address-{address.id}")
    assert (state(db, address.id).error_count, state(db, address.id).next_poll_at) == (0, None)
    assert get_queue("poll").job_ids == [f"poll-mailbox-{address.id}"]
    assert "Polling help@acme.test now" in client.get("/channels/email/").get_data(as_text=True)

    # Twice: still one job. With htmx: a redirect header, not a page.
    again = client.post(f"/channels/email/addresses/{address.id}/poll", data={"csrf_token": token}, headers=HX)
    assert again.status_code == 204 and again.headers["HX-Redirect"].endswith(f"#address-{address.id}")
    assert get_queue("poll").job_ids == [f"poll-mailbox-{address.id}"]

    refused = client.post(f"/channels/email/addresses/{outbound.id}/poll", data={"csrf_token": token})
    assert refused.status_code == 303
    assert "does not poll a mailbox now" in client.get("/channels/email/").get_data(as_text=True)
    assert client.post(f"/channels/email/addresses/{outbound.id}/poll").status_code == 400  # no CSRF token
    assert client.post("/channels/email/addresses/999999/poll", data={"csrf_token": token}).status_code == 404


def test_poll_now_on_ops_inbound_mail_full_page_and_fragment(client, db, login_as):
    login_as("admin")
    address = backing_off(db)
    page = client.get("/ops/inbound/").get_data(as_text=True)
    assert f'hx-post="/ops/inbound/mailboxes/{address.id}/poll"' in page and 'aria-label="Poll help@acme.test now"' in page
    token = csrf_token(client, "/ops/inbound/")
    fragment = client.post(f"/ops/inbound/mailboxes/{address.id}/poll", data={"csrf_token": token}, headers=HX)
    html = fragment.get_data(as_text=True)
    assert fragment.status_code == 200 and "<html" not in html and "Polling now" in html and "Mailboxes" in html
    assert state(db, address.id).error_count == 0
    assert get_queue("poll").job_ids == [f"poll-mailbox-{address.id}"]
    full = client.post(f"/ops/inbound/mailboxes/{address.id}/poll", data={"csrf_token": token})
    assert full.status_code == 303 and full.headers["Location"].endswith("/ops/inbound/")
    gone = client.post("/ops/inbound/mailboxes/999999/poll", data={"csrf_token": token}, headers=HX)
    assert gone.status_code == 200 and "does not poll a mailbox now" in gone.get_data(as_text=True)


def test_poll_now_is_for_admins(client, db, login_as):
    login_as("agent")
    address = backing_off(db)
    token = csrf_token(client, "/inbox/")
    assert client.post(f"/ops/inbound/mailboxes/{address.id}/poll", data={"csrf_token": token}).status_code == 403
    assert client.post(f"/channels/email/addresses/{address.id}/poll", data={"csrf_token": token}).status_code == 403
    assert state(db, address.id).error_count == 5


def test_the_banner_of_a_mailbox_failing_for_long_shows_to_admins_on_every_page(client, db, login_as, htmx_headers):
    address = backing_off(db)
    row = state(db, address.id)
    row.last_error = "IMAP at 127.0.0.1:993 (SSL): The server refused the user name or password."
    row.failing_since = datetime.now(timezone.utc) - timedelta(minutes=10)
    db.session.commit()
    login_as("admin")
    assert 'id="mailbox-alerts"' not in client.get("/inbox/").get_data(as_text=True)  # 10 minutes: not yet

    row = state(db, address.id)
    row.failing_since = datetime.now(timezone.utc) - timedelta(minutes=20)
    db.session.commit()
    for url in ("/inbox/", "/channels/email/", "/ops/inbound/"):
        html = client.get(url).get_data(as_text=True)
        assert 'id="mailbox-alerts" role="alert"' in html, url
        assert "help@acme.test has not fetched mail since" in html
        assert "The server refused the user name or password." in html and 'href="/ops/inbound/"' in html
    assert "mailbox-alerts" not in client.get("/ops/inbound/", headers=htmx_headers).get_data(as_text=True)


def test_agents_never_see_the_banner(client, db, login_as):
    address = backing_off(db)
    row = state(db, address.id)
    row.failing_since = datetime.now(timezone.utc) - timedelta(hours=2)
    db.session.commit()
    login_as("agent")
    assert "mailbox-alerts" not in client.get("/inbox/").get_data(as_text=True)
