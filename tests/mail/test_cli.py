"""`flask mail ingest` (the JSON-per-message contract) and `flask mail poll`."""
from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import func, select

from app.models.inbox import Message
from tests.mail.conftest import make_address, message
from tests.mail.test_mailboxes import append, imap_address

DATA = Path(__file__).resolve().parent.parent / "data" / "mail"
KEYS = {"file", "status", "conversation_id", "message_id", "from", "to", "cc", "subject", "text", "attachments",
        "auto_reply", "error"}


def ingest(app, *files, address="support@mail.pigeonhole.test"):
    result = app.test_cli_runner().invoke(args=["mail", "ingest", "--address", address, *map(str, files)])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines() if line.strip()]


def test_ingest_prints_one_json_object_per_message_with_the_contract_keys(app, db):
    make_address("support@mail.pigeonhole.test")
    out = ingest(app, DATA / "customer.eml", DATA / "reply.eml", DATA / "customer.eml", DATA / "autoreply.eml",
                 DATA / "bounce.eml", DATA / "broken.eml")
    assert all(KEYS <= set(o) for o in out)
    assert [o["status"] for o in out] == ["created", "threaded", "duplicate", "auto_reply", "bounce",
                                          "stored_with_error"]
    first = out[0]
    assert first["file"].endswith("customer.eml") and first["message_id"] == "<cli-1@example.com>"
    assert first["from"] == "José García <jose@example.com>"
    assert first["to"] == "Support <support@mail.pigeonhole.test>" and first["cc"] == '"Boss, The" <boss@example.com>'
    assert first["subject"] == "Pedido nº 42 late"
    assert first["text"] == "Hola, mi pedido no llegó."  # visible text: the quote is gone
    assert first["attachments"] == [
        {"filename": "logo.png", "content_type": "image/png", "size": 8, "content_id": "logo@cid", "inline": True},
        {"filename": "factura nº 1.pdf", "content_type": "application/pdf", "size": 9, "content_id": None,
         "inline": False},
    ]
    assert first["auto_reply"] is False and first["error"] is None
    assert out[1]["conversation_id"] == first["conversation_id"]
    assert out[3]["auto_reply"] is True and out[3]["conversation_id"] is None  # answers nothing we know
    assert out[4]["bounce"]["recipients"] == ["gone@example.org"] and out[4]["conversation_id"] is None
    assert out[5]["error"] and out[5]["conversation_id"] is None
    html = db.session.scalar(select(Message.html).where(Message.message_id == "<cli-1@example.com>"))
    assert "onclick" not in html and "<script" not in html and "llegó" in html


def test_ingest_reads_mbox_files(app, db):
    make_address("support@mail.pigeonhole.test")
    out = ingest(app, DATA / "two.mbox")
    assert [(o["index"], o["subject"], o["status"]) for o in out] == [
        (0, "First in mbox", "created"), (1, "Second in mbox", "created")]


def test_ingest_refuses_an_address_that_cannot_receive(app, db):
    make_address("out@mail.pigeonhole.test", usage="outbound")
    runner = app.test_cli_runner()
    for address in ("out@mail.pigeonhole.test", "nobody@mail.pigeonhole.test"):
        result = runner.invoke(args=["mail", "ingest", "--address", address, str(DATA / "reply.eml")])
        assert result.exit_code != 0 and address in result.output
    assert db.session.scalar(select(func.count()).select_from(Message)) == 0


def test_poll_command_polls_now_and_says_what_it_did(tls_app, db, dovecot, mailbox_user):
    login, password = mailbox_user
    tls_app.config["MAILBOX_BACKFILL"] = "7"
    imap_address(dovecot, login, password)
    append(dovecot, login, password, [message(to=login), message(to=login, subject="Second")])
    result = tls_app.test_cli_runner().invoke(args=["mail", "poll", login])
    assert result.exit_code == 0, result.output
    assert f"{login} (imap): 2 fetched: 2 created" in result.output
    again = tls_app.test_cli_runner().invoke(args=["mail", "poll", login])
    assert "0 fetched: no new mail" in again.output
    platform = make_address("support@mail.pigeonhole.test")
    refused = tls_app.test_cli_runner().invoke(args=["mail", "poll", platform.address])
    assert refused.exit_code != 0 and "not a published, enabled IMAP/POP3" in refused.output


def test_poll_command_reports_a_failing_mailbox(tls_app, db, dovecot):
    imap_address(dovecot, "ghost@acme.test", "nope")
    result = tls_app.test_cli_runner().invoke(args=["mail", "poll", "ghost@acme.test"])
    assert result.exit_code == 1 and "error:" in result.output and "nope" not in result.output
