"""Published means published: an address edited in every field but not published changes nothing live.

One test per runtime path (ingress, polling, IDLE, flows, sending, the composer's From list):
each publishes an address, edits every field of its draft (the address itself included),
does not publish, and proves the runtime still acts on the published version.
"""
from __future__ import annotations

import smtplib
from email import message_from_bytes, policy

import pytest
from sqlalchemy import select

from app.channels.addresses import SNAPSHOT_FIELDS, snapshot
from app.crypto import encrypt_secret
from app.extensions import db as _db
from app.flows.runner import run_flow
from app.models.channels import EmailAddress
from app.models.inbox import Conversation
from app.publish.services import PublishError, publish_addresses
from app.runtime.idle.supervisor import idle_candidates
from app.runtime.outbound import deliver_message, send_reply
from app.runtime.poll import poll_address
from tests.factories import make_queue, make_sending_address, make_sending_conversation
from tests.flow_factories import make_flow, make_inbound
from tests.flow_factories import make_address as make_flow_address
from tests.helpers import csrf_token
from tests.mail.conftest import make_address, message
from tests.mail.test_ingress import running, work_ingest_queue
from tests.mail.test_mailboxes import append, imap_address
from tests.pages import HX, location
from tests.servers import SMTPServer

PLATFORM = "mail.pigeonhole.test"


def edit_every_field(address_id: int, *, local: str = "tmp2", usage: str = "outbound") -> EmailAddress:
    """Change every draft field of a published address (and its passwords), without publishing."""
    row = _db.session.get(EmailAddress, address_id)
    draft_flow = make_flow([], name=f"Draft flow {address_id}")
    row.address = f"{local}@{row.address.rpartition('@')[2]}"
    row.display_name = "Draft Name"
    row.usage = usage
    row.send_vcard = not row.send_vcard
    row.enabled = not row.enabled
    row.when_disabled = "refuse" if row.when_disabled != "refuse" else "hold"
    row.template_enabled = not row.template_enabled
    row.header_html, row.footer_html = "<p>Draft header</p>", "<p>Draft footer</p>"
    row.forwarded_from = "draft@elsewhere.example"
    row.username = "draft-user"
    row.incoming_protocol = "pop3" if row.incoming_protocol != "pop3" else "imap"
    row.incoming_host, row.incoming_port, row.incoming_security = "draft.invalid", 1, "none"
    row.outgoing_host, row.outgoing_port, row.outgoing_security = "draft.invalid", 2, "none"
    row.use_reply_to_identity = not row.use_reply_to_identity
    row.channel_sessions = not row.channel_sessions
    row.flow_id = draft_flow.id
    row.auth_method, row.oauth_provider = "oauth", "google"
    row.tls_ca_pem = "-----BEGIN CERTIFICATE-----\ndraft\n-----END CERTIFICATE-----\n"
    row.smtp_username = "draft-smtp-user"
    row.save_to_sent = not row.save_to_sent
    row.allow_plaintext_auth = not row.allow_plaintext_auth
    row.smtp_no_auth = not row.smtp_no_auth
    row.password_encrypted = encrypt_secret("draft-password")
    row.smtp_password_encrypted = encrypt_secret("draft-smtp-password")
    row.touch_draft()
    _db.session.commit()
    draft, live = snapshot(row), row.published
    same = [k for k in (*SNAPSHOT_FIELDS, "password_encrypted", "smtp_password_encrypted") if draft[k] == live.get(k)]
    assert same == [], f"edit_every_field leaves these fields as published: {same}"
    assert row.publish_state == "Unpublished changes"
    return row


def rcpt(controller, recipient: str) -> tuple[int, bytes]:
    with smtplib.SMTP(controller.hostname, controller.port, timeout=10) as smtp:
        smtp.ehlo()
        smtp.mail("carla@example.com")
        return smtp.rcpt(recipient)


def test_ingress_keeps_the_published_name_after_a_rename_through_edit_until_publish(app, db, client, login_as):
    address = make_address(f"tmp1@{PLATFORM}")
    login_as("admin")
    token = csrf_token(client, "/channels/email/")
    base = client.get(f"/channels/email/addresses/{address.id}/edit").headers["Location"].rsplit("/", 1)[0]
    location(client.post(f"{base}/address", headers=HX, data={
        "csrf_token": token, "address": "tmp2", "display_name": "Renamed", "forwarded_from": "help@acme.example",
        "usage": "both", "send_vcard": "no", "enabled": "yes", "use_reply_to_identity": "no",
        "channel_sessions": "no"}))
    client.post(f"{base}/review", data={"csrf_token": token})
    db.session.expire_all()
    assert db.session.get(EmailAddress, address.id).address == f"tmp2@{PLATFORM}"  # the draft was updated

    with running(app) as ingress:
        assert rcpt(ingress, f"tmp2@{PLATFORM}")[0] == 550
        with smtplib.SMTP(ingress.hostname, ingress.port, timeout=10) as smtp:
            assert smtp.sendmail("carla@example.com", [f"tmp1@{PLATFORM}"], message(to=f"tmp1@{PLATFORM}")) == {}
    work_ingest_queue(app)
    db.session.expire_all()
    assert db.session.scalars(select(Conversation.address_id)).all() == [address.id]

    publish_addresses([address.id], None, "rename")
    db.session.commit()
    with running(app) as ingress:  # a new ingress: no cached answers
        assert rcpt(ingress, f"tmp1@{PLATFORM}")[0] == 550
        assert rcpt(ingress, f"tmp2@{PLATFORM}")[0] == 250


def test_ingress_ignores_every_unpublished_field(app, db):
    address = make_address(f"tmp1@{PLATFORM}")
    edit_every_field(address.id, usage="outbound")  # the draft is also disabled and send-only
    with running(app) as ingress:
        assert rcpt(ingress, f"tmp1@{PLATFORM}")[0] == 250
        code, reply = rcpt(ingress, f"tmp2@{PLATFORM}")
        assert code == 550 and reply.startswith(b"5.1.1")


def test_publish_refuses_a_name_still_live_on_a_renamed_address(app, db):
    old = make_address(f"tmp1@{PLATFORM}")
    edit_every_field(old.id)
    newcomer = make_address(f"tmp1@{PLATFORM}", publish=False)
    with pytest.raises(PublishError, match="tmp1@mail.pigeonhole.test is still live"):
        publish_addresses([newcomer.id], None, "take the old name")
    db.session.rollback()
    publish_addresses([old.id, newcomer.id], None, "both together")  # the rename frees the name
    db.session.commit()
    assert db.session.get(EmailAddress, newcomer.id).live_address == f"tmp1@{PLATFORM}"


def test_polling_uses_the_published_servers_and_login(tls_app, db, dovecot, mailbox_user):
    tls_app.config["MAILBOX_BACKFILL"] = "7"
    login, password = mailbox_user
    address = imap_address(dovecot, login, password)
    append(dovecot, login, password, [message(to=login, subject="Before any publish")])
    edit_every_field(address.id, local="renamed", usage="outbound")
    result = poll_address(address.id)
    assert result.error is None and result.statuses == {"created": 1}
    db.session.expire_all()
    assert db.session.scalars(select(Conversation.subject)).all() == ["Before any publish"]


def test_idle_watches_the_published_mailbox(tls_app, db, dovecot, mailbox_user):
    login, password = mailbox_user
    address = imap_address(dovecot, login, password)
    edit_every_field(address.id, local="renamed", usage="outbound")  # the draft says POP3 on another host
    live = idle_candidates()[address.id]
    assert (live.incoming_protocol, live.incoming_host, live.incoming_port, live.login, live.password()) == (
        "imap", "127.0.0.1", dovecot.ports["imaps"], login, password)


def test_flows_run_the_published_flow(app, db):
    published_queue, draft_queue = make_queue("Published queue"), make_queue("Draft queue")
    flow = make_flow([{"name": "All", "conditions": [], "actions": [{"type": "set_queue",
                                                                     "queue_id": published_queue.id}]}])
    address = make_flow_address(flow=flow)
    row = edit_every_field(address.id)
    draft_flow = _db.session.get(type(flow), row.flow_id)
    from app.flows import editing, publishing
    editing.add_rule(draft_flow.id, {"name": "All", "conditions": [],
                                     "actions": [{"type": "set_queue", "queue_id": draft_queue.id}]})
    publishing.publish_flows([draft_flow.id], None)  # even a published draft flow is not the address's yet
    db.session.commit()
    inbound = make_inbound(address, subject="Where is my order?")
    run = run_flow(inbound.conversation_id, inbound.id)
    db.session.commit()
    assert run.outcome == "ran" and run.flow_id == flow.id
    assert db.session.get(Conversation, inbound.conversation_id).queue_id == published_queue.id


def test_sending_uses_the_published_from_name_reply_to_and_template(app, db, tmp_path):
    relay = SMTPServer(tmp_path / "relay")
    try:
        app.config["SMTP_RELAY_URL"] = f"smtp://127.0.0.1:{relay.port}?tls=none"
        address = make_sending_address(f"tmp1@{PLATFORM}", display_name="Published Name",
                                       forwarded_from="help@acme.example", template_enabled=True,
                                       header_html="<p>Published header</p>")
        conversation = make_sending_conversation(address)
        edit_every_field(address.id, usage="inbound")  # the draft can no longer send, and is disabled
        reply = send_reply(conversation.id, None, "<p>It ships today.</p>")
        db.session.commit()
        assert deliver_message(reply.id)["sent"] == 1
        got = relay.messages[0]
        mail = message_from_bytes(got["data"], policy=policy.default)
        assert got["mail_from"] == f"tmp1@{PLATFORM}"
        assert str(mail["From"]) == f"Published Name <tmp1@{PLATFORM}>"
        assert mail["Reply-To"] == "help@acme.example"
        html = mail.get_body(("html",)).get_content()
        assert "Published header" in html and "Draft header" not in html
    finally:
        relay.stop()


def test_the_composer_offers_the_published_from_addresses(app, db, client, login_as):
    login_as("supervisor")
    address = make_sending_address(f"tmp1@{PLATFORM}", display_name="Published Name")
    edit_every_field(address.id, usage="inbound")
    token = csrf_token(client, "/inbox/")
    created = client.post("/inbox/new", headers={"HX-Request": "true", "X-CSRFToken": token})
    page = client.get(created.headers["HX-Redirect"]).get_data(as_text=True)
    assert f"Published Name &lt;tmp1@{PLATFORM}&gt;" in page
    assert "Draft Name" not in page and f"tmp2@{PLATFORM}" not in page
