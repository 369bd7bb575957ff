"""The rich-text editor's server side: image uploads (limits, clear errors, who may), images served to the
editor from our URL, stored as `cid:` and sent inline; the Preview and the sent mail carry the same HTML."""
from __future__ import annotations

import base64
import html
import io
import json
import re
from email import message_from_bytes, policy

import pytest
from sqlalchemy import select

from app.channels.preview import render_preview
from app.mail.inline_images import content_id
from app.models.channels import AddressSetup, EmailAddress
from app.models.template_images import TemplateImage
from app.publish.services import publish_addresses
from app.runtime.outbound import deliver_message, send_reply
from tests.e2e.conftest import PNG
from tests.factories import make_sending_conversation
from tests.helpers import csrf_token
from tests.pages import HX, full
from tests.servers import SMTPServer
from tests.web.test_channel_pages import new_setup, platform_form

UPLOAD = "/channels/email/template-images"
DARK = '<div style="background: #1d2330; color: #ffffff; padding: 8px">Acme Support</div>'


@pytest.fixture
def token(client, login_as):
    login_as("admin")
    return csrf_token(client, "/channels/email/")


def upload(client, token, data: bytes, name: str = "logo.png"):
    return client.post(UPLOAD, data={"image": (io.BytesIO(data), name)}, headers={"X-CSRFToken": token},
                       content_type="multipart/form-data")


def test_upload_stores_an_image_once_and_serves_it_to_the_editor(client, db, token):
    first = upload(client, token, PNG)
    assert first.status_code == 201
    reply = first.get_json()
    assert re.fullmatch(r"/channels/email/template-images/[0-9a-f]{64}", reply["url"]) and reply["name"] == "logo.png"
    assert upload(client, token, PNG, "again.png").get_json()["url"] == reply["url"]  # the same bytes, one image
    assert db.session.scalar(select(TemplateImage.content_type)) == "image/png"

    served = client.get(reply["url"])
    assert served.status_code == 200 and served.data == PNG and served.headers["Content-Type"] == "image/png"
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert client.get(UPLOAD + "/" + "0" * 64).status_code == 404
    assert client.get(UPLOAD + "/not-a-sha").status_code == 404


@pytest.mark.parametrize("data, name, message", [
    (b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>", "x.png", "“x.png” is not a PNG, JPEG or GIF"),
    (b"", "empty.png", "“empty.png” is empty"),
    (PNG + b"\0" * 2048, "big.png", "may be at most 1 KB"),
])
def test_upload_refuses_what_is_not_a_small_image_with_a_clear_error(app, client, db, token, data, name, message):
    app.config["TEMPLATE_IMAGE_MAX_BYTES"] = 1024
    refused = upload(client, token, data, name)
    assert refused.status_code == 422 and message in refused.get_json()["error"], refused.get_json()
    assert db.session.scalar(select(TemplateImage)) is None
    missing = client.post(UPLOAD, data={}, headers={"X-CSRFToken": token})
    assert missing.status_code == 422 and missing.get_json()["error"] == "Choose an image file to upload."


def test_only_admins_upload_or_see_template_images(app, client, db, token):
    url = upload(client, token, PNG).get_json()["url"]
    other = app.test_client()
    assert other.get(url).status_code == 302  # signed out: the sign-in page
    from tests.factories import PASSWORD, make_user

    agent = make_user("agent")
    other.post("/login", data={"email": agent.email, "password": PASSWORD, "csrf_token": csrf_token(other)})
    assert other.get(url).status_code == 403
    assert other.post(UPLOAD, data={"image": (io.BytesIO(PNG), "a.png")},
                      headers={"X-CSRFToken": csrf_token(other, "/inbox/")}).status_code == 403
    assert client.post(UPLOAD, data={"image": (io.BytesIO(PNG), "a.png")}).status_code == 400  # no CSRF token


def test_the_editor_shows_our_url_and_the_header_stores_cid_and_keeps_the_background(client, db, token):
    base = new_setup(client, token)
    client.post(f"{base}/address", data=platform_form(token), headers=HX)
    url = upload(client, token, PNG).get_json()["url"]
    sha = url.rsplit("/", 1)[1]
    gif = base64.b64encode(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;").decode()
    saved = client.post(f"{base}/design/header", headers=HX, data={"csrf_token": token, "html": (
        f'{DARK}<p><img src="{url}" alt="Logo"><img src="https://tracker.example/p.gif" alt="remote">'
        f'<img src="data:image/gif;base64,{gif}" alt="pasted"></p>')})
    assert saved.status_code == 204, saved.get_data(as_text=True)
    stored = db.session.scalar(select(AddressSetup).where(AddressSetup.token == base.rsplit("/", 1)[1])).values["header_html"]
    pasted = db.session.scalar(select(TemplateImage.sha256).where(TemplateImage.content_type == "image/gif"))
    assert stored == ('<div style="background:#1d2330;color:#ffffff;padding:8px">Acme Support</div>'
                      f'<p><img src="cid:{content_id(sha)}" alt="Logo"><img src="cid:{content_id(pasted)}" '
                      'alt="pasted"></p>')  # the remote image is gone, not left as an empty <img>

    editor = full(client.get(f"{base}/design/header"))
    textarea = html.unescape(editor.split("<textarea", 1)[1].split("</textarea>")[0])
    assert f'src="{url}"' in textarea and "cid:" not in textarea
    assert 'data-rich-editor' in editor and f'data-image-upload="{UPLOAD}"' in editor
    assert "What mail keeps" in editor and "background-color" in editor  # the allow-list, shown

    document = client.get(f"{base}/preview/0?on=1").get_data(as_text=True)
    assert '<div style="background:#1d2330;color:#ffffff;padding:8px">Acme Support</div>' in document
    assert "data:image/png;base64," + base64.b64encode(PNG).decode() in document and "cid:" not in document

    refused = client.post(f"{base}/design/header", headers=HX, data={
        "csrf_token": token, "html": '<img src="data:image/png;base64,PHN2Zz4=">'})
    assert refused.status_code == 422 and "is not a PNG, JPEG or GIF image" in refused.get_data(as_text=True)


def _header(html: str) -> str:
    return re.search(r'<div class="ph-header">.*?</div></div>|<div class="ph-header">.*?</p></div>', html, re.S).group(0)


def test_preview_and_the_sent_reply_carry_the_same_header_and_the_image_inline(app, client, db, token, tmp_path):
    server = SMTPServer(tmp_path / "relay")
    try:
        app.config["SMTP_RELAY_URL"] = f"smtp://127.0.0.1:{server.port}?tls=none"
        base = new_setup(client, token)
        client.post(f"{base}/address", data=platform_form(token, address="design"), headers=HX)
        client.post(f"{base}/design", data={"csrf_token": token, "template_enabled": "y", "action": "toggle"})
        url = upload(client, token, PNG).get_json()["url"]
        sha = url.rsplit("/", 1)[1]
        client.post(f"{base}/design/header", data={"csrf_token": token, "html": (
            f'{DARK}<p>Hello {{{{ customer_name }}}} <img src="{url}" alt="Logo"></p>')})
        setup = db.session.scalar(select(AddressSetup).where(AddressSetup.token == base.rsplit("/", 1)[1]))
        preview = render_preview(setup, {"template_enabled": True}, store=False).html
        assert client.post(f"{base}/review", data={"csrf_token": token}).status_code == 303
        address = db.session.scalar(select(EmailAddress).where(EmailAddress.address.startswith("design@")))
        publish_addresses([address.id], None, "test")
        db.session.commit()

        conversation = make_sending_conversation(address, email="carol@example.com", name="Carol Customer")
        message = send_reply(conversation.id, None, "<p>It ships today.</p>")
        db.session.commit()
        assert deliver_message(message.id)["sent"] == 1
        mail = message_from_bytes(server.messages[0]["data"], policy=policy.default)
        related = next(p for p in mail.walk() if p.get_content_type() == "multipart/related")
        html_part, image = related.get_payload()
        assert image["Content-ID"] == f"<{content_id(sha)}>" and image.get_content() == PNG
        assert image.get_content_type() == "image/png" and image.get_content_disposition() == "inline"
        sent_html = html_part.get_content()
        # The header in the Preview and in the mail: the same HTML, background and cid: image included.
        assert _header(sent_html) == _header(preview)
        assert 'style="background:#1d2330;color:#ffffff;padding:8px"' in _header(sent_html)
        assert f'src="cid:{content_id(sha)}"' in _header(sent_html) and "template-images" not in sent_html
        assert json.dumps(sent_html).count("cid:") == 1
    finally:
        server.stop()


def test_standard_responses_and_the_acknowledgement_get_the_rich_editor(client, db, login_as):
    login_as("admin")
    for url in ("/responses/new", "/flows/queues/new"):
        page = client.get(url)
        body = page.get_data(as_text=True)
        assert page.status_code == 200 and "data-rich-editor" in body and "/static/editor.js" in body, url
        assert "data-image-upload" not in body  # uploaded images: headers and footers only
