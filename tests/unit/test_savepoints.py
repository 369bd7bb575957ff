"""`app.extensions.begin_nested`: a savepoint taken before any write is released, not committed."""
from __future__ import annotations

from sqlalchemy import select

from app.extensions import begin_nested
from app.models.inbox import Contact


def _emails(db) -> list[str]:
    return db.session.scalars(select(Contact.email).order_by(Contact.email)).all()


def test_a_savepoint_before_any_write_goes_with_the_outer_rollback(app, db):
    db.session.scalar(select(Contact.id))  # a read: the session's transaction has begun, SQLite's not yet
    with begin_nested():
        db.session.add(Contact(email="inner@example.com"))
        db.session.flush()
    db.session.add(Contact(email="after@example.com"))
    db.session.flush()
    db.session.rollback()
    assert _emails(db) == []  # the released savepoint's row went with the rollback


def test_a_savepoint_after_a_write_and_nested_savepoints(app, db):
    db.session.add(Contact(email="outer@example.com"))
    db.session.flush()  # pysqlite has begun SQLite's transaction: no second BEGIN
    first = begin_nested()
    db.session.add(Contact(email="first@example.com"))
    db.session.flush()
    second = begin_nested()
    db.session.add(Contact(email="second@example.com"))
    db.session.flush()
    second.rollback()
    first.commit()
    db.session.commit()
    assert _emails(db) == ["first@example.com", "outer@example.com"]


def test_without_it_sqlite_commits_at_the_release(app, db):
    """Why the helper exists: pysqlite's plain savepoint before a write is SQLite's outermost one."""
    db.session.scalar(select(Contact.id))
    with db.session.begin_nested():
        db.session.add(Contact(email="inner@example.com"))
        db.session.flush()
    db.session.rollback()
    if db.engine.dialect.name == "sqlite":
        assert _emails(db) == ["inner@example.com"]  # committed by the RELEASE: the rollback came too late
        db.session.execute(Contact.__table__.delete())
        db.session.commit()
    else:
        assert _emails(db) == []  # PostgreSQL's transaction began with the session's first statement
