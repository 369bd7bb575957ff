"""Base layout, fragments (full page vs HTMX block), security headers, error pages."""
from __future__ import annotations

from app.models.auth import Queue
from app.models.channels import Domain, EmailAddress
from app.models.inbox import Contact, Conversation
from tests.factories import make_queue


def _conversation(db, queue, subject="Where is my parcel?"):
    domain = Domain(name="mail.pigeonhole.test", kind="platform")
    address = EmailAddress(domain=domain, address="support@mail.pigeonhole.test", display_name="Support")
    contact = Contact(email="carol@example.com", name="Carol Customer")
    conv = Conversation(address=address, contact=contact, token="t" * 20, subject=subject, queue=queue)
    db.session.add(conv)
    db.session.commit()
    return conv


def test_inbox_full_page_and_fragment(client, db, login_as, htmx_headers):
    agent = login_as("agent")
    queue = make_queue("Billing", members=[db.session.merge(agent)])
    _conversation(db, queue)

    full = client.get("/inbox/?view=all")
    html = full.get_data(as_text=True)
    assert full.status_code == 200
    assert html.startswith("<!doctype html>") and "Where is my parcel?" in html and "<nav" in html
    assert "HX-Request" in full.headers["Vary"]

    frag = client.get("/inbox/?view=all", headers=htmx_headers)
    body = frag.get_data(as_text=True)
    assert frag.status_code == 200
    assert "Where is my parcel?" in body and "Carol Customer" in body
    assert "<html" not in body and "<nav" not in body and 'id="conversations"' not in body
    assert "HX-Request" in frag.headers["Vary"]


def test_inbox_hides_other_queues_from_agents(client, db, login_as):
    login_as("agent")
    other = make_queue("Secret")
    _conversation(db, other, subject="Not for you")
    assert "Not for you" not in client.get("/inbox/").get_data(as_text=True)


def test_supervisor_sees_all_queues(client, db, login_as):
    login_as("supervisor")
    _conversation(db, make_queue("Any"), subject="Visible to supervisors")
    assert "Visible to supervisors" in client.get("/inbox/").get_data(as_text=True)


def test_history_restore_gets_the_full_page(client, login_as):
    login_as("agent")
    r = client.get("/inbox/", headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    assert "<html" in r.get_data(as_text=True)


def test_security_headers_on_every_response(client, login_as):
    for path in ("/login", "/healthz", "/static/app.css", "/nope"):
        r = client.get(path)
        csp = r.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["X-Frame-Options"] == "DENY"
        assert r.headers["Referrer-Policy"] == "same-origin"
        assert r.headers["X-Request-ID"]
        r.close()


def test_pages_have_no_inline_script_or_style(client, login_as):
    login_as("admin")
    for path in ("/inbox/", "/channels/email/", "/flows/", "/responses/", "/channels/publish/history", "/ops/"):
        html = client.get(path).get_data(as_text=True)
        assert "<script>" not in html and " style=" not in html and " onclick=" not in html, path
        assert "<script src=" in html


def test_session_cookie_is_httponly_samesite_and_secure_over_https(client, app):
    r = client.get("/login")
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    secure = app.test_client().get("/login", base_url="https://localhost")
    assert "Secure" in secure.headers["Set-Cookie"]
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=")


def test_not_found_page(client, login_as):
    login_as("agent")
    r = client.get("/no/such/page")
    assert r.status_code == 404
    assert "Not found" in r.get_data(as_text=True)


def test_server_error_page_is_friendly_and_logged(app, client, login_as, caplog):
    @app.route("/boom")
    def boom():
        raise RuntimeError("kaboom")

    app.config["PROPAGATE_EXCEPTIONS"] = False
    login_as("agent")
    r = client.get("/boom")
    assert r.status_code == 500
    html = r.get_data(as_text=True)
    assert "Something went wrong" in html and "kaboom" not in html
    assert any("kaboom" in (rec.exc_text or "") or rec.exc_info for rec in caplog.records)


def test_flash_messages_ride_out_of_band_on_fragments(app, client, login_as, htmx_headers):
    from flask import flash

    from app.web import render

    @app.route("/flash-demo")
    def flash_demo():
        flash("Saved.", "success")
        return render("inbox/index.html", block="results", page=None, error=None, filters={})

    login_as("agent")
    body = client.get("/flash-demo", headers=htmx_headers).get_data(as_text=True)
    assert 'id="flashes"' in body and 'hx-swap-oob="true"' in body and "Saved." in body
    # ... and only once.
    assert "Saved." not in client.get("/inbox/", headers=htmx_headers).get_data(as_text=True)


def test_demo_queue_model_relationship(db):
    q = Queue(name="X")
    db.session.add(q)
    db.session.commit()
    assert q.members == []
