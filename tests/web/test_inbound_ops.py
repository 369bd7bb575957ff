"""Ops › Inbound mail: mailbox status per address, messages stored with an error, download, retry."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import select

from app.blobs import blob_store
from app.models.channels import MailboxState
from app.models.inbound import InboundRaw
from app.queues import get_queue
from tests.helpers import csrf_token
from tests.mail.conftest import make_address


def failed_arrival(db, address, message_row_id=None, raw=b"Subject: broken\r\n\r\n\x00"):
    row = InboundRaw(address_id=address.id, source="smtp", raw_sha256=blob_store().put(raw), size=len(raw),
                     status="stored_with_error", error="KeyError: boom", message_row_id=message_row_id)
    db.session.add(row)
    db.session.commit()
    return row


def mailbox(db):
    address = make_address("help@acme.test", "custom", usage="inbound", username="help@acme.test", password="pw",
                           incoming_protocol="imap", incoming_host="127.0.0.1", incoming_port=993,
                           incoming_security="ssl")
    db.session.add(MailboxState(address_id=address.id, folder="INBOX", error_count=3,
                                last_error="LoginError: [AUTHENTICATIONFAILED] Authentication failed.",
                                last_success_at=datetime(2026, 4, 1, 12, 0, tzinfo=timezone.utc)))
    db.session.commit()
    return address


def test_full_page_shows_mailboxes_and_errors(client, db, login_as):
    login_as("admin")
    mailbox(db)
    failed_arrival(db, make_address("support@mail.pigeonhole.test"))
    response = client.get("/ops/inbound/")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" in html and "Inbound mail" in html
    assert "help@acme.test" in html and "AUTHENTICATIONFAILED" in html and "3 in a row" in html
    assert "2026-04-01 12:00:00" in html
    assert "KeyError: boom" in html and "Download raw message" in html and ">Retry</button>" in html
    assert "Inbound mail" in client.get("/ops/").get_data(as_text=True)


def test_fragment_for_htmx(client, db, login_as, htmx_headers):
    login_as("admin")
    response = client.get("/ops/inbound/", headers=htmx_headers)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in html and "Mailboxes" in html
    assert "No message was stored with an error." in html and "HX-Request" in response.headers["Vary"]


def test_only_admins(client, db, login_as):
    login_as("agent")
    assert client.get("/ops/inbound/").status_code == 403


def test_download_raw_is_an_attachment_never_rendered(client, db, login_as):
    login_as("admin")
    row = failed_arrival(db, make_address("support@mail.pigeonhole.test"), raw=b"Subject: <script>x</script>\r\n\r\n")
    response = client.get(f"/ops/inbound/{row.id}/raw")
    assert response.status_code == 200 and response.data == b"Subject: <script>x</script>\r\n\r\n"
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.mimetype == "application/octet-stream"
    assert client.get("/ops/inbound/999999/raw").status_code == 404


def test_retry_puts_it_back_to_pending_and_enqueues(client, db, login_as, htmx_headers):
    login_as("admin")
    row = failed_arrival(db, make_address("support@mail.pigeonhole.test"))
    token = csrf_token(client, "/ops/inbound/")
    response = client.post(f"/ops/inbound/{row.id}/retry", headers={**htmx_headers, "X-CSRFToken": token})
    assert response.status_code == 200 and "<html" not in response.get_data(as_text=True)
    db.session.refresh(row)
    assert row.status == "pending" and row.error is None
    assert get_queue("ingest").job_ids == [f"ingest-raw-{row.id}"]


def test_retry_of_a_stored_message_is_refused_with_422(client, db, login_as, htmx_headers):
    from app.models.inbox import Message

    login_as("admin")
    address = make_address("support@mail.pigeonhole.test")
    message = Message(address_id=address.id, direction="in", parse_error="unreadable")
    db.session.add(message)
    db.session.commit()
    row = failed_arrival(db, address, message_row_id=message.id)
    token = csrf_token(client, "/ops/inbound/")
    response = client.post(f"/ops/inbound/{row.id}/retry", headers={**htmx_headers, "X-CSRFToken": token})
    assert response.status_code == 422 and "retrying it would change nothing" in response.get_data(as_text=True)
    assert db.session.scalar(select(InboundRaw.status).where(InboundRaw.id == row.id)) == "stored_with_error"
    assert client.post("/ops/inbound/424242/retry", headers={"X-CSRFToken": token}).status_code == 404
    assert get_queue("ingest").count == 0
