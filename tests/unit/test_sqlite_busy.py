"""Two writers on one database: the one whose snapshot went stale waits its turn instead of failing."""
from __future__ import annotations

import logging
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.exc import OperationalError

from app.extensions import begin_nested, db
from app.models.inbox import Contact
from app.transactions import retry_when_locked


def _read_then_write(email: str, interfere: list) -> int:
    """A job's shape: read in a transaction, then write; another process commits in between (once)."""
    with begin_nested():
        db.session.scalar(select(func.count()).select_from(Contact))
    if interfere:
        interfere.pop()
        with db.engine.connect() as other:  # the second writer: its own connection, committed first
            other.execute(insert(Contact).values(email=f"other-{email}", name="Other",
                                                 created_at=datetime.now(timezone.utc)))
            other.commit()
    db.session.add(Contact(email=email, name="Writer"))
    db.session.commit()
    return 1


pytestmark = pytest.mark.sqlite


def test_a_writer_whose_snapshot_went_stale_fails_without_the_retry(app, db):
    if db.engine.dialect.name != "sqlite":
        pytest.fail("this test is about SQLite; the PostgreSQL run deselects it (-m 'not sqlite')")
    with pytest.raises(OperationalError, match="database is locked"):
        _read_then_write("bare@example.com", [True])
    db.session.rollback()


def test_two_writers_one_waits_its_turn_and_logs_one_line(app, db, caplog):
    caplog.set_level(logging.WARNING, logger="app.transactions")
    assert retry_when_locked(_read_then_write, "retried@example.com", [True]) == 1
    emails = set(db.session.scalars(select(Contact.email)))
    assert {"retried@example.com", "other-retried@example.com"} <= emails
    locked = [r for r in caplog.records if "database is locked" in r.getMessage()]
    assert len(locked) == 1 and locked[0].exc_info is None
