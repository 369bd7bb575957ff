"""Ops › Inbound mail: mailbox status per address, messages stored with an error, download, ingest again."""
from __future__ import annotations

import re
from datetime import datetime, timezone

from sqlalchemy import func, select

from app.blobs import blob_store
from app.models.channels import MailboxState
from app.models.inbound import InboundRaw
from app.models.inbox import Attachment, Message
from app.publish.services import publish_addresses
from app.queues import get_queue
from tests.helpers import csrf_token
from tests.mail.conftest import make_address, message


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
    assert "KeyError: boom" in html and "Download raw message" in html and ">Ingest again</button>" in html
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


def old_bug_arrival(db, address, raw: bytes, error: str):
    """What an older version wrote for mail its parser failed on: a message row with the error, no conversation."""
    sha = blob_store().put(raw)
    broken = Message(address_id=address.id, direction="in", message_id="<refund-7@example.com>",
                     dedupe_key="mid:<refund-7@example.com>", subject="Refund for double charge", raw_sha256=sha,
                     parse_error=error, text="")
    db.session.add(broken)
    db.session.flush()
    db.session.add(Attachment(message_id=broken.id, filename="part.bin", content_type="application/octet-stream",
                              size=3, sha256=blob_store().put(b"abc")))
    row = InboundRaw(address_id=address.id, source="imap", raw_sha256=sha, size=len(raw), status="stored_with_error",
                     error=error, message_row_id=broken.id)
    copy = InboundRaw(address_id=address.id, source="imap", raw_sha256=sha, size=len(raw), status="duplicate",
                      message_row_id=broken.id)
    db.session.add_all([row, copy])
    db.session.commit()
    return row, copy, broken.id


def test_ingest_again_after_a_parser_fix_opens_the_conversation(client, db, login_as):
    login_as("admin")
    address = make_address("support@mail.pigeonhole.test")
    raw = message(msgid="<refund-7@example.com>", subject="Refund for double charge")
    row, copy, _broken_id = old_bug_arrival(db, address, raw, "the body could not be read: LookupError: x-old")
    page = client.get("/ops/inbound/").get_data(as_text=True)
    form = re.search(r'<form method="post" action="(/ops/inbound/%d/ingest)".*?</form>' % row.id, page, re.S)
    assert form and 'name="csrf_token"' in form.group(0) and ">Ingest again</button>" in form.group(0)
    response = client.post(form.group(1), data={"csrf_token": csrf_token(client, "/ops/inbound/")})
    assert response.status_code == 303 and response.headers["Location"].endswith("/ops/inbound/")

    db.session.expire_all()
    row, copy = db.session.get(InboundRaw, row.id), db.session.get(InboundRaw, copy.id)
    assert row.status == "created" and row.error is None and row.message_row_id is not None
    fixed = db.session.get(Message, row.message_row_id)
    assert fixed.conversation_id is not None and fixed.parse_error is None
    assert fixed.dedupe_key == "mid:<refund-7@example.com>" and fixed.subject == "Refund for double charge"
    assert db.session.scalar(select(func.count()).select_from(Message)) == 1  # the broken copy made way for it
    assert db.session.scalar(select(func.count()).select_from(Attachment)) == 0
    assert copy.status == "duplicate" and copy.message_row_id == fixed.id  # the other copy follows
    assert get_queue("flows").job_ids == [f"flow-message-{fixed.id}"]
    html = client.get("/ops/inbound/").get_data(as_text=True)
    assert f"Ingested again: it opened conversation #{fixed.conversation_id}." in html
    assert "No message was stored with an error." in html


def test_ingest_again_of_mail_that_still_fails_keeps_it_with_the_new_error(client, db, login_as, htmx_headers):
    login_as("admin")
    address = make_address("support@mail.pigeonhole.test")
    raw = b"Please call me back.\r\n"  # no header at all: nobody to answer
    row = failed_arrival(db, address, raw=raw)
    token = csrf_token(client, "/ops/inbound/")
    for _ in range(2):  # again and again: the error row written the first time does not make it a duplicate
        response = client.post(f"/ops/inbound/{row.id}/ingest", headers={**htmx_headers, "X-CSRFToken": token})
        html = response.get_data(as_text=True)
        assert response.status_code == 200 and "<html" not in html
        assert "Still stored with an error: no sender address" in html and ">Ingest again</button>" in html
        db.session.expire_all()
        row = db.session.get(InboundRaw, row.id)
        assert row.status == "stored_with_error" and row.error.startswith("no sender address")
        assert db.session.scalar(select(func.count()).select_from(Message)) == 1
    assert db.session.get(Message, row.message_row_id).parse_error.startswith("no sender address")
    assert client.get(f"/ops/inbound/{row.id}/raw").data == raw  # nothing lost


def test_ingest_again_is_refused_for_what_it_cannot_change(client, db, login_as, htmx_headers):
    login_as("admin")
    address = make_address("support@mail.pigeonhole.test")
    row = failed_arrival(db, address)
    row.status = "created"
    db.session.commit()
    token = csrf_token(client, "/ops/inbound/")
    headers = {**htmx_headers, "X-CSRFToken": token}
    response = client.post(f"/ops/inbound/{row.id}/ingest", headers=headers)
    assert response.status_code == 422 and "not stored with an error (it is created)" in response.get_data(as_text=True)
    assert client.post("/ops/inbound/424242/ingest", headers=headers).status_code == 404
    assert client.post(f"/ops/inbound/{row.id}/ingest").status_code == 400  # no CSRF token


def test_ingest_again_for_an_address_that_stopped_receiving_changes_nothing(client, db, login_as, htmx_headers):
    login_as("admin")
    address = make_address("support@mail.pigeonhole.test")
    row, _copy, broken_id = old_bug_arrival(db, address, message(), "KeyError: boom")
    address.enabled = False
    publish_addresses([address.id], None, "off")
    db.session.commit()
    token = csrf_token(client, "/ops/inbound/")
    response = client.post(f"/ops/inbound/{row.id}/ingest", headers={**htmx_headers, "X-CSRFToken": token})
    assert response.status_code == 422 and "does not receive mail now" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(InboundRaw, row.id).status == "stored_with_error"
    assert db.session.get(InboundRaw, row.id).message_row_id == broken_id
    assert db.session.get(Message, broken_id) is not None


def test_ingest_again_is_for_admins_only(client, db, login_as):
    address = make_address("support@mail.pigeonhole.test")
    row = failed_arrival(db, address)
    login_as("agent")
    token = csrf_token(client, "/inbox/")
    assert client.post(f"/ops/inbound/{row.id}/ingest", data={"csrf_token": token}).status_code == 403
    db.session.refresh(row)
    assert row.status == "stored_with_error" and row.attempts == 0


def test_an_arrival_whose_ingest_job_was_lost_is_listed_and_ingest_now_opens_its_conversation(client, db, login_as):
    """Issue 18, fault 1: arrivals acknowledged with 250 whose job died were not listed, and Retry did not
    move them."""
    from datetime import timedelta

    login_as("admin")
    support = make_address("support@mail.pigeonhole.test")
    raw = message(subject="Stranded since the crash")
    row = InboundRaw(address_id=support.id, source="smtp", raw_sha256=blob_store().put(raw), size=len(raw),
                     received_at=datetime.now(timezone.utc) - timedelta(minutes=12))
    db.session.add(row)
    db.session.commit()
    page = client.get("/ops/inbound/").get_data(as_text=True)
    assert 'id="inbound-stale"' in page and "its ingest job was lost" in page and ">Ingest now</button>" in page
    answer = client.post(f"/ops/inbound/{row.id}/ingest", data={"csrf_token": csrf_token(client, "/ops/inbound/")},
                         follow_redirects=True)
    assert "Ingested again: it opened conversation #" in answer.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(InboundRaw, row.id).status == "created"
    assert db.session.scalar(select(Message.subject).where(Message.id == db.session.get(InboundRaw, row.id)
                                                           .message_row_id)) == "Stranded since the crash"
    assert 'id="inbound-stale"' not in client.get("/ops/inbound/").get_data(as_text=True)
