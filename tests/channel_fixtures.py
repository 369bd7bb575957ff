"""Real mail servers for the channel setup tests (Test Connection), shared by the whole session.

tests/conftest.py registers the fixtures for the whole suite.
One Dovecot serves IMAP/IMAPS/POP3/POP3S for `MAILBOX` (and `NO_INBOX`, a user whose
mailbox cannot be opened); aiosmtpd servers offer STARTTLS and implicit TLS with AUTH.
All of them use one throwaway certificate; `ca_file` trusts it (for `MAIL_TLS_CA_FILE`).

Wrong-password tests must not use this Dovecot: Dovecot delays every login from an
address that failed recently (auth penalty), which would slow the other tests down.
`penalty_dovecots` (module scope) gives them instances of their own.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers import DovecotServer, SilentServer, SMTPServer, free_port

MAILBOX = "help@acme.test"
PASSWORD = "mailbox-pw"
NO_INBOX = "nobox@acme.test"


@dataclass
class MailServers:
    dovecot: DovecotServer
    smtp_starttls: SMTPServer
    smtp_implicit: SMTPServer
    silent: SilentServer
    ca_file: Path

    def closed_port(self) -> int:
        return free_port()


def add_user_without_inbox(dovecot: DovecotServer, user: str, password: str) -> None:
    """A user Dovecot accepts but whose mailbox cannot be opened (its mail directory cannot be created)."""
    with (dovecot.base / "passwd").open("a") as fh:
        fh.write(f"{user}:{{PLAIN}}{password}::::::userdb_mail=maildir:/proc/self/pigeonhole-no-such-dir\n")


@pytest.fixture(scope="module")
def penalty_dovecots():
    """Two Dovecots of their own for wrong passwords (one failure each: the first costs ~2 s, the next ~6 s).

    Dovecot takes seconds to stop: they are signalled here and waited for in the
    background (non-daemon threads: the test run still waits for them before it exits).
    """
    import threading

    servers = [DovecotServer(), DovecotServer()]
    for server in servers:
        server.add_user(MAILBOX, PASSWORD)
    yield servers
    for server in servers:
        server.signal_stop()
        threading.Thread(target=server.wait_stopped, name="stop-penalty-dovecot").start()


@pytest.fixture(scope="session")
def mail_servers(tmp_path_factory):
    base = tmp_path_factory.mktemp("mailservers")
    dovecot = DovecotServer()
    dovecot.add_user(MAILBOX, PASSWORD)
    add_user_without_inbox(dovecot, NO_INBOX, PASSWORD)
    # One throwaway certificate for every server (SMTPServer reuses the one it finds in its folder).
    for name in ("starttls", "implicit"):
        (base / name / "tls").mkdir(parents=True)
        for path in (dovecot.cert, dovecot.key):
            (base / name / "tls" / path.name).write_bytes(path.read_bytes())
    users = {MAILBOX: PASSWORD}
    starttls = SMTPServer(base / "starttls", users=users, tls="starttls")
    implicit = SMTPServer(base / "implicit", users=users, tls="implicit")
    silent = SilentServer()
    ca_file = base / "ca.pem"
    ca_file.write_bytes(dovecot.cert.read_bytes())
    servers = MailServers(dovecot, starttls, implicit, silent, ca_file)
    yield servers
    import threading

    stopping = threading.Thread(target=dovecot.stop, name="stop-dovecot")  # takes seconds; overlap it
    stopping.start()
    for server in (starttls, implicit, silent):
        server.stop()
    stopping.join(30)
