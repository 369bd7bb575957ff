"""`attach_inserted`: a row inserted with Core becomes a persistent object, and leaves again with a rollback."""
from __future__ import annotations

from sqlalchemy import select

from app.extensions import attach_inserted, begin_nested
from app.models.inbox import Message


def _insert(db, **values) -> Message:
    message_id = db.session.connection().execute(Message.__table__.insert(), dict(direction="out", **values)) \
        .inserted_primary_key[0]
    message = Message(id=message_id, direction="out", **values)
    attach_inserted(db.session(), message)
    return message


def test_committed_it_is_an_ordinary_persistent_object(app, db):
    message = _insert(db, subject="Hello")
    assert message in db.session and db.session.get(Message, message.id) is message
    message.subject = "Hello again"  # tracked like any loaded object
    db.session.commit()
    db.session.expire_all()
    assert db.session.scalar(select(Message.subject).where(Message.id == message.id)) == "Hello again"
    assert message.text == ""  # a column it was not given loads from the row (its default)


def test_rolled_back_it_is_transient_like_a_flushed_new_object(app, db):
    message = _insert(db, subject="Gone")
    kept_id = message.id
    db.session.rollback()
    assert message not in db.session and message.subject == "Gone"  # no reload of a row that is gone
    # The id may be used again (SQLite reuses it; a PostgreSQL sequence does not): no clash either way.
    again = _insert(db, subject="New")
    assert db.session.get(Message, again.id) is again
    if db.engine.dialect.name == "sqlite":
        assert again.id == kept_id
    db.session.commit()


def test_a_savepoint_rollback_forgets_only_what_was_inserted_inside_it(app, db):
    outer = _insert(db, subject="outer")
    savepoint = begin_nested()
    inner = _insert(db, subject="inner")
    savepoint.rollback()
    assert outer in db.session and inner not in db.session
    db.session.commit()
    assert db.session.scalars(select(Message.subject)).all() == ["outer"]


def test_a_released_savepoint_still_goes_with_the_outer_rollback(app, db):
    outer = _insert(db, subject="outer")
    with begin_nested():
        inner = _insert(db, subject="inner")
    later = _insert(db, subject="later")  # attaching again keeps what the released savepoint inserted
    assert inner in db.session and later in db.session
    db.session.rollback()
    assert {inner in db.session, outer in db.session, later in db.session} == {False}
    assert inner.subject == "inner"
    assert db.session.scalars(select(Message.subject)).all() == []
