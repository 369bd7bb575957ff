"""Mailboxes that say what is wrong: poll errors in Test Connection's words, Poll now, alerts, per-address CA."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from app.mail.probe import NetPolicy, ServerSettings, probe_incoming
from app.mail.tls import client_context
from app.models.channels import MailboxState
from app.runtime.poll import poll_address
from tests.channel_fixtures import MAILBOX
from tests.mail.conftest import make_address


def mailbox(dovecot, address, login, password, protocol="imap", port=None, security="ssl", usage="inbound", **fields):
    """A published inbound address polling `login` on `dovecot` (implicit TLS unless told)."""
    port = port or dovecot.ports["imaps" if protocol == "imap" else "pop3s"]
    return make_address(address, "custom", usage=usage, username=login, password=password,
                        incoming_protocol=protocol, incoming_host="127.0.0.1", incoming_port=port,
                        incoming_security=security, **fields)


@pytest.fixture
def recent_tls(tls_app):
    tls_app.config["MAILBOX_BACKFILL"] = "7"
    return tls_app


def state_of(db, address_id) -> MailboxState:
    db.session.expire_all()
    return db.session.scalars(select(MailboxState).where(MailboxState.address_id == address_id)).one()


def test_poll_errors_are_the_plain_sentences_test_connection_says(tls_app, db, penalty_dovecots, mail_servers,
                                                                   tmp_path):
    first, second = penalty_dovecots
    tls_app.config["MAIL_TLS_CA_FILE"] = str(first.cert)
    imap = mailbox(first, "imap@acme.test", MAILBOX, "wrong-pw")
    pop3 = mailbox(second, "pop3@acme.test", MAILBOX, "wrong-pw", protocol="pop3", port=second.ports["pop3"],
                   security="none")
    refused_port = mail_servers.closed_port()
    closed = mailbox(first, "closed@acme.test", MAILBOX, "pw", port=refused_port)

    error = poll_address(imap.id).error
    where = f"IMAP at 127.0.0.1:{first.ports['imaps']} (SSL)"
    assert error == f"{where}: The server refused the user name or password. ([AUTHENTICATIONFAILED] " \
                    "Authentication failed.)"
    assert "LoginError" not in error and "b'" not in error and "wrong-pw" not in error
    # The very words Test Connection shows for the same settings.
    probed = probe_incoming(ServerSettings("imap", "127.0.0.1", first.ports["imaps"], "ssl"), MAILBOX, "wrong-pw", 10,
                            client_context(str(first.cert)), policy=NetPolicy(allow_private=True))
    assert error == f"{probed.message} ({probed.detail})"

    assert poll_address(pop3.id).error == (f"POP3 at 127.0.0.1:{second.ports['pop3']} (no encryption): The server refused the "
                                           "user name or password. (-ERR [AUTH] Authentication failed.)")
    refused = poll_address(closed.id).error
    assert refused == (f"IMAP at 127.0.0.1:{refused_port} (SSL): The server refused the connection. Check the port "
                       "and the security setting. (connection refused)")
    assert "Errno" not in refused
    assert state_of(db, closed.id).last_error == refused


def run_polls(app):
    from rq import SimpleWorker
    from rq.serializers import JSONSerializer

    import jobs
    from app.queues import get_queue, redis_connection

    jobs.use_app(app)
    SimpleWorker([get_queue("poll")], connection=redis_connection(), serializer=JSONSerializer).work(burst=True)


def test_publishing_a_fixed_mailbox_forgets_the_backoff_and_polls_it_at_once(recent_tls, db, dovecot, mailbox_user,
                                                                             mail_servers):
    from app.publish.services import publish_addresses
    from app.queues import get_queue
    from app.models.channels import EmailAddress
    from tests.mail.conftest import message
    from tests.mail.test_mailboxes import append, messages_of

    login, password = mailbox_user
    address = mailbox(dovecot, login, login, password, port=mail_servers.closed_port())
    for _ in range(3):
        assert "refused the connection" in poll_address(address.id).error
    failing = state_of(db, address.id)
    assert failing.error_count == 3 and failing.next_poll_at is not None  # backing off: 4 minutes away
    append(dovecot, login, password, [message(to=login)])

    row = db.session.get(EmailAddress, address.id)
    row.incoming_port = dovecot.ports["imaps"]
    row.touch_draft()
    publish_addresses([address.id], None, "fix the port")
    assert get_queue("poll").job_ids == []  # nothing before the commit
    db.session.commit()
    state = state_of(db, address.id)
    assert (state.error_count, state.next_poll_at) == (0, None)
    assert get_queue("poll").job_ids == [f"poll-mailbox-{address.id}"]
    run_polls(recent_tls)
    assert len(messages_of(db, address.id)) == 1
    assert state_of(db, address.id).last_error is None


def test_publishing_a_new_mailbox_leaves_its_first_poll_to_cron(recent_tls, db, dovecot, mailbox_user):
    from app.queues import get_queue

    login, password = mailbox_user
    mailbox(dovecot, login, login, password)
    assert get_queue("poll").job_ids == []


@pytest.fixture
def relay(recent_tls, tmp_path):
    from tests.servers import SMTPServer

    server = SMTPServer(tmp_path / "relay")
    recent_tls.config["SMTP_RELAY_URL"] = f"smtp://127.0.0.1:{server.port}?tls=none"
    yield server
    server.stop()


def test_a_mailbox_failing_for_long_tells_the_admins_once_and_once_more_when_it_works(recent_tls, db, dovecot,
                                                                                     mailbox_user, relay,
                                                                                     mail_servers):
    from email import message_from_bytes, policy

    from app.models.channels import EmailAddress
    from app.publish.services import publish_addresses
    from app.runtime.mailbox_alerts import failing_mailboxes
    from tests.factories import make_user

    make_user("admin", email="ada@example.test")
    make_user("admin", email="bob@example.test")
    make_user("agent", email="agent@example.test")
    make_user("admin", email="gone@example.test").active = False
    db.session.commit()
    login, password = mailbox_user
    address = mailbox(dovecot, login, login, password, port=mail_servers.closed_port())

    assert poll_address(address.id).error
    assert state_of(db, address.id).failing_since is not None and relay.messages == []
    assert failing_mailboxes() == []  # failing, but not for 15 minutes yet
    failing = state_of(db, address.id)
    failing.failing_since -= timedelta(minutes=16)
    db.session.commit()
    assert [m.address for m in failing_mailboxes()] == [login]

    for _ in range(3):  # the next polls fail as well: one mail, not one per poll
        assert poll_address(address.id).error
    assert len(relay.messages) == 1
    alert = relay.messages[0]
    assert sorted(alert["rcpt_tos"]) == ["ada@example.test", "bob@example.test"]
    mail = message_from_bytes(alert["data"], policy=policy.default)
    assert mail["Subject"] == f"{login} has not fetched mail for 16 minutes"
    assert mail["Auto-Submitted"] == "auto-generated"
    assert "The server refused the connection" in mail.get_content() and password not in mail.get_content()
    assert state_of(db, address.id).alerted_at is not None

    row = db.session.get(EmailAddress, address.id)
    row.incoming_port = dovecot.ports["imaps"]
    row.touch_draft()
    publish_addresses([address.id], None, "fix the port")
    db.session.commit()
    assert poll_address(address.id).error is None
    assert poll_address(address.id).error is None
    assert len(relay.messages) == 2
    mail = message_from_bytes(relay.messages[1]["data"], policy=policy.default)
    assert mail["Subject"] == f"{login} fetches mail again" and "works again" in mail.get_content()
    healthy = state_of(db, address.id)
    assert (healthy.failing_since, healthy.alerted_at) == (None, None) and failing_mailboxes() == []


def test_an_alert_the_relay_refuses_is_tried_again_on_the_next_failed_poll(recent_tls, db, dovecot, mailbox_user,
                                                                           relay, mail_servers):
    from tests.factories import make_user

    make_user("admin", email="ada@example.test")
    recent_tls.config["MAILBOX_ALERT_MINUTES"] = 0
    relay.script = ["451 4.3.0 Try again later"]
    login, password = mailbox_user
    address = mailbox(dovecot, login, login, password, port=mail_servers.closed_port())
    assert poll_address(address.id).error
    assert relay.messages == [] and state_of(db, address.id).alerted_at is None
    assert poll_address(address.id).error
    assert len(relay.messages) == 1 and state_of(db, address.id).alerted_at is not None


def test_an_address_with_its_private_ca_polls_over_tls_without_the_environment_variable(app, db, dovecot,
                                                                                       mailbox_user):
    from app.models.channels import EmailAddress
    from app.publish.services import publish_addresses
    from tests.mail.conftest import message
    from tests.mail.test_mailboxes import append, messages_of

    assert not app.config.get("MAIL_TLS_CA_FILE")
    app.config["MAILBOX_BACKFILL"] = "7"
    login, password = mailbox_user
    append(dovecot, login, password, [message(to=login)])
    address = mailbox(dovecot, login, login, password)
    assert "certificate could not be verified" in poll_address(address.id).error  # verified, and not trusted

    row = db.session.get(EmailAddress, address.id)
    row.tls_ca_pem = dovecot.cert.read_text()
    row.touch_draft()
    assert poll_address(address.id).error  # a draft is not live
    publish_addresses([address.id], None, "our CA")
    db.session.commit()
    assert poll_address(address.id).error is None
    assert len(messages_of(db, address.id)) == 1


def test_an_address_with_its_private_ca_sends_over_tls(app, db, tmp_path):
    from app.crypto import encrypt_secret
    from app.runtime.outbound import deliver_message, send_reply
    from tests.factories import make_sending_address, make_sending_conversation
    from tests.servers import SMTPServer

    server = SMTPServer(tmp_path, tls="implicit", users={"help@acme.test": "s3cret"})
    try:
        address = make_sending_address("help@acme.test", platform=False, outgoing_host="127.0.0.1",
                                       outgoing_port=server.port, outgoing_security="ssl",
                                       password_encrypted=encrypt_secret("s3cret"),
                                       tls_ca_pem=server.cert.read_text())
        message = send_reply(make_sending_conversation(address).id, None, "<p>It ships today.</p>")
        db.session.commit()
        assert deliver_message(message.id)["sent"] == 1 and len(server.messages) == 1
    finally:
        server.stop()


def test_replies_are_saved_to_the_folder_flagged_sent_when_the_address_asks(tls_app, db, dovecot, mailbox_user,
                                                                           tmp_path):
    from email import message_from_bytes, policy

    from imapclient import IMAPClient
    from rq import SimpleWorker
    from rq.serializers import JSONSerializer

    import jobs
    from app.queues import get_queue, redis_connection
    from app.runtime.dkim import add_key
    from app.runtime.outbound import deliver_message, send_reply
    from tests.factories import make_sending_conversation
    from tests.servers import SMTPServer

    login, password = mailbox_user
    smtp = SMTPServer(tmp_path, users={login: password})
    try:
        outgoing = dict(outgoing_host="127.0.0.1", outgoing_port=smtp.port, outgoing_security="none")
        keeps = mailbox(dovecot, login, login, password, usage="both", save_to_sent=True, **outgoing)
        # The domain signs (a verified key, set up directly): the copy carries the signature it went out with.
        key = add_key(login.rpartition("@")[2], "s1")
        key.status, key.active = "Success", True
        other = mailbox(dovecot, "other@acme.test", login, password, usage="both", **outgoing)
        sent = []
        for address in (keeps, other):
            message = send_reply(make_sending_conversation(address).id, None, "<p>It ships today.</p>")
            db.session.commit()
            assert deliver_message(message.id)["sent"] == 1
            sent.append(message)
        assert get_queue("send").job_ids == [f"sent-copy-{sent[0].id}"]  # only the address that asks
        jobs.use_app(tls_app)
        SimpleWorker([get_queue("send")], connection=redis_connection(), serializer=JSONSerializer).work(burst=True)
    finally:
        smtp.stop()

    with IMAPClient("127.0.0.1", port=dovecot.imap_port, ssl=False) as imap:
        imap.login(login, password)
        flagged = [name for flags, _, name in imap.list_folders() if b"\\Sent" in flags]
        assert flagged == ["Gesendete Elemente"]
        imap.select_folder("Gesendete Elemente", readonly=True)
        copies = imap.fetch(imap.search(["ALL"]), ["FLAGS", "BODY.PEEK[]"])
    assert len(copies) == 1
    (data,) = copies.values()
    assert b"\\Seen" in data[b"FLAGS"]
    copy = message_from_bytes(data[b"BODY[]"], policy=policy.default)
    delivered = message_from_bytes(smtp.messages[0]["data"], policy=policy.default)
    assert delivered["DKIM-Signature"] and copy["DKIM-Signature"] == delivered["DKIM-Signature"]
    assert copy["Message-ID"] == delivered["Message-ID"] and copy["From"] == delivered["From"]
