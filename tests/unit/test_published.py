"""Draft vs published configuration: the runtime sees only what was published."""
from __future__ import annotations

import pytest

from app.channels.domains import ensure_platform_domain

from app.publish.services import NothingToPublish, publish_addresses
from app.runtime.live import published_address, published_addresses
from app.crypto import SecretUnreadable, decrypt_secret, encrypt_secret
from app.models.channels import Domain, EmailAddress


def _address(db, **kw):
    domain = ensure_platform_domain()
    a = EmailAddress(domain=domain, address=kw.pop("address", "support@mail.pigeonhole.test"),
                     display_name=kw.pop("display_name", "Support"), **kw)
    db.session.add(a)
    db.session.commit()
    return a


def test_never_published_is_not_live(db):
    a = _address(db)
    assert published_address(a.id) is None
    assert published_address("support@mail.pigeonhole.test") is None
    assert a.publish_state == "Never published"


def test_publish_then_draft_edit_changes_nothing_live(db):
    a = _address(db, header_html="<p>Hello</p>")
    record = publish_addresses([a.id], user_id=None, comment="go live")
    db.session.commit()
    live = published_address("SUPPORT@mail.pigeonhole.test")
    assert live.display_name == "Support" and live.header_html == "<p>Hello</p>" and live.is_platform
    assert record.changes == [{"kind": "address", "id": a.id, "name": a.address, "summary": "published"}]
    assert a.publish_state == "Published"

    a.display_name, a.header_html, a.enabled = "Changed", "<p>Draft</p>", False
    a.touch_draft()
    db.session.commit()
    live = published_address(a.id)
    assert live.display_name == "Support" and live.header_html == "<p>Hello</p>"
    assert a.publish_state == "Unpublished changes"

    publish_addresses([a.id], None, "disable it")
    db.session.commit()
    assert published_address(a.id) is None  # disabled once published


def test_archived_address_is_not_live(db):
    from datetime import datetime, timezone

    a = _address(db)
    publish_addresses([a.id], None, "live")
    a.archived_at = datetime.now(timezone.utc)
    db.session.commit()
    assert published_address(a.id) is None and published_addresses() == []


def test_publish_needs_a_comment_and_a_selection(db):
    a = _address(db)
    with pytest.raises(ValueError, match="comment"):
        publish_addresses([a.id], None, "  ")
    with pytest.raises(NothingToPublish):
        publish_addresses([], None, "why")


def test_usage_decides_send_and_receive(db):
    a = _address(db, usage="inbound")
    publish_addresses([a.id], None, "x")
    live = published_address(a.id)
    assert live.can_receive and not live.can_send


def test_password_encrypted_at_rest_and_published_with_the_snapshot(db):
    domain = Domain(name="acme.test", kind="custom")
    a = EmailAddress(domain=domain, address="help@acme.test", display_name="Acme",
                     password_encrypted=encrypt_secret("pässword"))
    db.session.add(a)
    db.session.commit()
    assert b"p\xc3\xa4ssword" not in a.password_encrypted
    publish_addresses([a.id], None, "x")
    db.session.commit()
    a.password_encrypted = encrypt_secret("new-draft-password")
    db.session.commit()
    assert published_address(a.id).password() == "pässword"
    assert published_address(a.id).login == "help@acme.test"


def test_unreadable_secret_is_a_clear_error(app):
    token = encrypt_secret("x")
    app.config["MAIL_SECRET_KEY"] = "Zm9vYmFyYmF6Zm9vYmFyYmF6Zm9vYmFyYmF6Zm9vYmE="
    with pytest.raises(SecretUnreadable, match="MAIL_SECRET_KEY"):
        decrypt_secret(token)
    assert decrypt_secret(None) is None
