"""Inbound mail fixtures: published addresses (platform and custom), a Dovecot, message builders."""
from __future__ import annotations

import itertools
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import pytest

from tests.servers import DovecotServer

_seq = itertools.count(1)


def make_address(email: str, kind: str = "platform", *, publish: bool = True, **fields):
    """An EmailAddress on the platform domain or a custom domain, published (the contract's only way in)."""
    from sqlalchemy import select

    from app.channels.domains import ensure_platform_domain

    from app.publish.services import publish_addresses
    from app.crypto import encrypt_secret
    from app.extensions import db
    from app.models.channels import Domain, EmailAddress

    if kind == "platform":
        domain = ensure_platform_domain()
    else:
        name = email.rpartition("@")[2]
        domain = db.session.scalar(select(Domain).where(Domain.name == name))
        if domain is None:
            domain = Domain(name=name, kind="custom")
            db.session.add(domain)
            db.session.flush()
    password = fields.pop("password", None)
    address = EmailAddress(domain_id=domain.id, address=email.lower(), display_name=fields.pop("display_name", "Support"),
                           **fields)
    if password is not None:
        address.password_encrypted = encrypt_secret(password)
    db.session.add(address)
    db.session.flush()
    if publish:
        publish_addresses([address.id], None, "test")
    db.session.commit()
    return address


def message(subject="Where is my order?", sender="Carla Customer <carla@example.com>",
            to="support@mail.pigeonhole.test", body="Hello,\n\nmy order 17 did not arrive.\n\nCarla\n",
            msgid: str | None = "", date=None, html: str | None = None, attachments=(), **headers) -> bytes:
    """A realistic customer message as raw bytes (CRLF)."""
    from datetime import datetime, timezone

    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(date or datetime.now(timezone.utc))
    if msgid is not None:
        msg["Message-ID"] = msgid or make_msgid(f"m{next(_seq)}", domain="example.com")
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    if html:
        msg.add_alternative(html, subtype="html")
    for filename, ctype, data in attachments:
        maintype, subtype = ctype.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


_users = itertools.count(1)
POOL = 60


@pytest.fixture(scope="session")
def dovecot():
    server = DovecotServer()
    # Users are added up front: Dovecot re-reads its passwd-file only when the file's mtime changes,
    # which a user added within the same second as the last read would not show.
    for n in range(1, POOL + 1):
        server.add_user(f"inbox{n}@acme.test", f"pw-{n}")
    yield server
    server.stop()


@pytest.fixture
def mailbox_user(dovecot):
    """A fresh, empty Dovecot mailbox (login, password) per test."""
    n = next(_users)
    assert n <= POOL, "raise POOL in tests/mail/conftest.py"
    return f"inbox{n}@acme.test", f"pw-{n}"


@pytest.fixture
def tls_app(app, dovecot):
    app.config["MAIL_TLS_CA_FILE"] = str(dovecot.cert)
    return app
