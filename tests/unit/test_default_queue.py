"""The default queue, when two workers meet an empty Queues table at once."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import func, insert, select

from app.flows import queues
from app.models.auth import Queue


def test_the_worker_that_loses_the_race_takes_the_queue_the_other_committed(app, db, monkeypatch):
    real = queues._chosen_queue
    calls = []

    def empty_then_real():
        calls.append(1)
        if len(calls) > 1:
            return real()
        with db.engine.connect() as other:  # the other worker: it found no queue either and committed first
            other.execute(insert(Queue).values(name=queues.UNASSIGNED_QUEUE, description="theirs",
                                               created_at=datetime.now(timezone.utc)))
            other.commit()
        return None

    monkeypatch.setattr(queues, "_chosen_queue", empty_then_real)
    queue = queues.default_queue()
    assert queue.name == queues.UNASSIGNED_QUEUE and queue.description == "theirs"
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(Queue)) == 1
