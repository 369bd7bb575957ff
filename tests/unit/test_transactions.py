"""`app.transactions`: jobs leave only after the transaction that made their rows commits."""
from __future__ import annotations

import pytest

from app import transactions
from app.extensions import begin_nested
from app.models.auth import Queue
from app.queues import get_queue


def _queued_ids() -> list[str]:
    return get_queue("ingest").get_job_ids()


def _empty_ingest_queue() -> None:
    get_queue("ingest").empty()


def test_a_committed_transaction_enqueues_once_and_a_rolled_back_one_nothing(app, db):
    _empty_ingest_queue()
    db.session.add(Queue(name="committed"))
    transactions.enqueue_on_commit("ingest", "jobs.ingest.ingest_raw", 1, job_id="ingest-raw-1")
    assert _queued_ids() == [] and transactions.pending_hooks() == 1  # nothing leaves before the commit
    db.session.commit()
    assert _queued_ids() == ["ingest-raw-1"]
    db.session.add(Queue(name="other"))
    db.session.commit()  # a later commit does not run the hook again
    assert _queued_ids() == ["ingest-raw-1"]

    db.session.add(Queue(name="rolled back"))
    transactions.enqueue_on_commit("ingest", "jobs.ingest.ingest_raw", 2, job_id="ingest-raw-2")
    db.session.rollback()
    db.session.add(Queue(name="after the rollback"))
    db.session.commit()  # the rolled-back hook is gone, not waiting for the next commit
    assert _queued_ids() == ["ingest-raw-1"]


def test_a_rolled_back_savepoint_drops_only_its_own_hooks(app, db):
    calls = []
    db.session.add(Queue(name="outer"))
    transactions.on_commit(calls.append, "outer")
    savepoint = begin_nested()
    transactions.on_commit(calls.append, "inside, rolled back")
    savepoint.rollback()
    kept = begin_nested()
    transactions.on_commit(calls.append, "inside, released")
    kept.commit()
    assert calls == []
    db.session.commit()
    assert calls == ["outer", "inside, released"]


def test_outside_a_transaction_the_hook_runs_at_once(app, db):
    calls = []
    db.session.commit()
    assert not db.session().in_transaction()
    transactions.on_commit(calls.append, "now")
    assert calls == ["now"]


def test_a_failing_hook_is_logged_and_the_others_still_run(app, db, caplog):
    calls = []

    def broken():
        raise RuntimeError("redis is down")

    db.session.add(Queue(name="q"))
    transactions.on_commit(broken)
    transactions.on_commit(calls.append, "second")
    db.session.commit()
    assert calls == ["second"]
    assert "after-commit hook" in caplog.text and "redis is down" in caplog.text


def test_the_sweeps_helper_refuses_to_run_inside_a_transaction(app, db):
    db.session.add(Queue(name="uncommitted"))
    with pytest.raises(RuntimeError, match="must wait for the commit"):
        transactions.outside_transaction(len, "abc")
    db.session.rollback()
    assert transactions.outside_transaction(len, "abc") == 3
