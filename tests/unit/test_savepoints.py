"""`app.extensions.begin_nested`: a savepoint taken before any write is released, not committed."""
from __future__ import annotations

import pytest
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


@pytest.mark.sqlite
def test_a_writer_that_began_with_begin_writing_is_not_failed_by_a_commit_in_between(app, db):
    """A job that read, then wrote after another process committed, failed at once with "database is
    locked" (a stale snapshot) and its whole batch ran again; begun with `begin_writing`, the other
    writer waits for its commit instead."""
    import threading

    from sqlalchemy.exc import OperationalError

    from app.extensions import begin_writing

    def read_then_write(begin, name: str) -> threading.Thread:
        begin()
        savepoint = begin_nested()  # a message of the batch, as ingest and the flow batch take one
        db.session.scalar(select(Contact.id))  # the snapshot is taken here
        engine = db.engine

        def other_writer() -> None:  # another process's writer, committing while we work
            with engine.connect() as other:
                other.execute(Contact.__table__.insert().values(email=f"other-{name}@example.com"))
                other.commit()

        thread = threading.Thread(target=other_writer)
        thread.start()
        thread.join(0.5)  # it commits now, unless our write lock makes it wait
        try:
            db.session.add(Contact(email=f"ours-{name}@example.com"))
            db.session.flush()
            savepoint.commit()
            db.session.commit()
        finally:
            db.session.rollback()
            thread.join(15)
        return thread

    with pytest.raises(OperationalError, match="database is locked"):
        read_then_write(lambda: None, "deferred")  # begin_nested's deferred BEGIN alone
    read_then_write(begin_writing, "immediate")
    assert _emails(db) == ["other-deferred@example.com", "other-immediate@example.com", "ours-immediate@example.com"]
