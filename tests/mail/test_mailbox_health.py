"""Mailboxes that say what is wrong: poll errors in Test Connection's words, Poll now, alerts, per-address CA."""
from __future__ import annotations

from sqlalchemy import select

from app.mail.probe import ServerSettings, probe_incoming
from app.mail.tls import client_context
from app.models.channels import MailboxState
from app.runtime.poll import poll_address
from tests.channel_fixtures import MAILBOX
from tests.mail.conftest import make_address


def mailbox(dovecot, address, login, password, protocol="imap", port=None, security="ssl", **fields):
    """A published inbound address polling `login` on `dovecot` (implicit TLS unless told)."""
    port = port or dovecot.ports["imaps" if protocol == "imap" else "pop3s"]
    return make_address(address, "custom", usage="inbound", username=login, password=password,
                        incoming_protocol=protocol, incoming_host="127.0.0.1", incoming_port=port,
                        incoming_security=security, **fields)


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
                            client_context(str(first.cert)))
    assert error == f"{probed.message} ({probed.detail})"

    assert poll_address(pop3.id).error == (f"POP3 at 127.0.0.1:{second.ports['pop3']} (no encryption): The server refused the "
                                           "user name or password. (-ERR [AUTH] Authentication failed.)")
    refused = poll_address(closed.id).error
    assert refused == (f"IMAP at 127.0.0.1:{refused_port} (SSL): The server refused the connection. Check the port "
                       "and the security setting. (connection refused)")
    assert "Errno" not in refused
    assert state_of(db, closed.id).last_error == refused
