"""The development Outbox: what the real SMTP sink received, listed and shown to admins."""
from __future__ import annotations

from email import message_from_bytes, policy
from pathlib import Path

import pytest

from app.runtime.outbound import deliver_message, send_reply
from app.mail.render import OutgoingAttachment
from app.mail.sink import start_sink
from tests.factories import make_sending_address, make_sending_conversation
from tests.servers import free_port


@pytest.fixture
def sink(app, tmp_path):
    """The demo's SMTP sink, with SMTP_RELAY_URL and OUTBOX_DIR pointing at it (as scripts/run does)."""
    directory = tmp_path / "outbox"
    port = free_port()
    controller = start_sink(directory, port=port)
    app.config.update(SMTP_RELAY_URL=f"smtp://127.0.0.1:{port}?tls=none", OUTBOX_DIR=str(directory))
    yield directory
    controller.stop()


def _send(db, **kw):
    address = make_sending_address(display_name="Acme Support", forwarded_from="support@acme.test")
    conversation = make_sending_conversation(address, email="carol@example.com", subject="Where is my parcel?")
    message = send_reply(conversation.id, None, "<p>It ships <b>today</b>.</p>", **kw)
    db.session.commit()
    assert deliver_message(message.id)["sent"] == 1
    return message


def test_the_sink_keeps_each_message_and_its_envelope(app, db, sink):
    message = _send(db)
    [eml] = list(Path(sink).glob("*.eml"))
    mail = message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert mail["Message-ID"] == message.message_id
    assert eml.with_suffix(".json").read_text().count("support@acme.test") == 1  # the Bcc, envelope only
    assert "stored as " + eml.stem in db.session.get(type(message), message.id).smtp_reply


def test_outbox_list_full_page_fragment_search_and_422(app, db, client, login_as, sink, htmx_headers):
    _send(db)
    login_as("admin")
    full = client.get("/ops/outbox/")
    html = full.get_data(as_text=True)
    assert full.status_code == 200 and html.startswith("<!doctype html>") and "<nav" in html
    assert "Where is my parcel?" in html and "Acme Support" in html
    assert "Bcc: support@acme.test" in html  # the platform rule, visible only in the envelope
    assert "HX-Request" in full.headers["Vary"]

    frag = client.get("/ops/outbox/", headers=htmx_headers)
    body = frag.get_data(as_text=True)
    assert frag.status_code == 200 and "<html" not in body and "<nav" not in body and 'id="outbox"' not in body
    assert "Where is my parcel?" in body

    assert "Nothing matches “invoice”" in client.get("/ops/outbox/?q=invoice", headers=htmx_headers).get_data(
        as_text=True)
    assert "Where is my parcel?" in client.get("/ops/outbox/?q=CAROL@example").get_data(as_text=True)

    bad = client.get("/ops/outbox/?q=" + "x" * 201, headers=htmx_headers)
    text = bad.get_data(as_text=True)
    assert bad.status_code == 422 and "Use at most 200 characters." in text and 'aria-invalid="true"' in text
    assert "Where is my parcel?" not in text


def test_outbox_message_page_html_part_raw_and_attachments(app, db, client, login_as, sink):
    pdf = OutgoingAttachment("Rechnung für März.pdf", "application/pdf", b"%PDF-1.4 test")
    _send(db, attachments=[pdf])
    login_as("admin")
    listing = client.get("/ops/outbox/").get_data(as_text=True)
    [name] = [p.stem for p in Path(sink).glob("*.eml")]
    assert f"/ops/outbox/{name}" in listing

    page = client.get(f"/ops/outbox/{name}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "support@acme.test" in html and "carol@example.com" in html
    assert f'src="/ops/outbox/{name}/body.html"' in html and "sandbox" in html
    assert "It ships today." in html  # the text part
    assert "Rechnung für März.pdf" in html

    frame = client.get(f"/ops/outbox/{name}/body.html")
    assert frame.status_code == 200 and "It ships <b>today</b>." in frame.get_data(as_text=True)
    assert frame.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert frame.headers["X-Frame-Options"] == "SAMEORIGIN"

    raw = client.get(f"/ops/outbox/{name}/raw")
    assert raw.data == (Path(sink) / f"{name}.eml").read_bytes()
    assert raw.headers["Content-Disposition"].startswith("attachment")

    part = client.get(f"/ops/outbox/{name}/parts/0")
    assert part.data == b"%PDF-1.4 test" and part.headers["X-Content-Type-Options"] == "nosniff"
    assert "filename*=UTF-8''Rechnung%20f%C3%BCr%20M%C3%A4rz.pdf" in part.headers["Content-Disposition"]
    for missing in (f"/ops/outbox/{name}/parts/9", "/ops/outbox/..%2Fsecret", "/ops/outbox/20260101T000000.000000Z-00000000"):
        assert client.get(missing).status_code == 404


def test_outbox_is_admin_only_and_absent_without_outbox_dir(app, client, login_as, tmp_path):
    login_as("admin")
    app.config["OUTBOX_DIR"] = ""
    assert client.get("/ops/outbox/").status_code == 404
    assert "Outbox" not in client.get("/ops/").get_data(as_text=True)
    app.config["OUTBOX_DIR"] = str(tmp_path / "empty")
    assert "No mail yet" in client.get("/ops/outbox/").get_data(as_text=True)
    assert 'href="/ops/outbox/"' in client.get("/ops/").get_data(as_text=True)


def test_agents_cannot_see_the_outbox(app, client, login_as, tmp_path):
    app.config["OUTBOX_DIR"] = str(tmp_path)
    login_as("agent")
    assert client.get("/ops/outbox/").status_code == 403
