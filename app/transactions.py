"""Work that waits for the database: run it once the transaction commits, drop it if it rolls back.

A job must never run before the rows it reads exist, and must never run for rows a
rollback took back. So nothing enqueues directly: services call

    on_commit(enqueue_send, message.id, address_id=sender.id)
    enqueue_on_commit("ingest", "jobs.ingest.ingest_raw", raw_id, job_id=f"ingest-raw-{raw_id}")

and the caller commits as usual. The hooks run right after the outermost COMMIT, in
the order they were added; a rollback forgets them, and so does the rollback of a
savepoint for the hooks added inside it (`app.extensions.begin_nested`). With no
transaction in progress there is nothing to wait for: the hook runs at once (the
shape of Django's `transaction.on_commit`, warehouse's after-commit tasks and
zulip's `queue_event_on_commit`).

The cron sweeps, which only read committed rows and count what they enqueue, end their
read transaction and call `outside_transaction(enqueue..., ...)`, which refuses to run
inside an open transaction.

A job that writes runs through `retry_when_locked`: on SQLite, a transaction that read before
it writes fails at once with "database is locked" when another process committed in between
(the busy timeout cannot help: its snapshot is stale), so the work is rolled back and run again.

A hook that raises is logged, never re-raised: the commit already happened. Queued
messages and pending raw mail are found again by the cron sweeps, so a Redis outage
delays them and loses none; a flow step whose job could not be enqueued is logged.
"""
from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable

from sqlalchemy import event, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, SessionTransaction

from app.extensions import db
from app.queues import enqueue

log = logging.getLogger(__name__)

_HOOKS = "pigeonhole_on_commit"


def on_commit(fn: Callable, *args, **kwargs) -> None:
    """Call `fn(*args, **kwargs)` after the current transaction commits (now, if none is open)."""
    session = db.session()
    if not session.in_transaction():
        _call(fn, args, kwargs)
        return
    transaction = session.get_nested_transaction() or session.get_transaction()
    session.info.setdefault(_HOOKS, []).append((transaction, fn, args, kwargs))


def enqueue_on_commit(queue: str, func: str, *args, job_id: str | None = None, **options) -> None:
    """`app.queues.enqueue(queue, func, *args, ...)` once the current transaction commits."""
    on_commit(enqueue, queue, func, *args, job_id=job_id, **options)


def outside_transaction(fn: Callable, *args, **kwargs):
    """Call `fn(*args, **kwargs)` now and return what it returns; refused while a transaction is open.

    For the cron sweeps, which read committed rows, end their read transaction, then
    enqueue and count what they enqueued: nothing they announce can still roll back.
    Raises `RuntimeError` when called inside a transaction (use `on_commit` there).
    """
    if db.session().in_transaction():
        raise RuntimeError(f"{getattr(fn, '__qualname__', fn)} must wait for the commit: use on_commit()")
    return fn(*args, **kwargs)


def hold_row(model, row_id: int) -> None:
    """Hold `model`'s row `row_id` until the current transaction ends, so that work counted against that row
    goes one transaction at a time (a read-then-insert limit, say): two at once cannot both see room.

    PostgreSQL: `SELECT … FOR UPDATE` on the row. SQLite (pysqlite reads outside a transaction until the
    first write): the database's write lock, taken by a write that changes nothing, so what is read after
    it is read under the lock.
    """
    table = model.__table__
    if db.session.get_bind().dialect.name == "sqlite":
        db.session.execute(update(table).where(table.c.id == row_id).values(id=table.c.id))
    else:
        db.session.execute(select(table.c.id).where(table.c.id == row_id).with_for_update())


def retry_when_locked(fn: Callable, *args, attempts: int = 8, **kwargs):
    """`fn(*args, **kwargs)`, rolled back and run again while SQLite answers "database is locked".

    `fn` must do its work in one transaction that it commits (a job's service call): a rollback
    undoes all of it and forgets its after-commit hooks, so running it again is safe. Each retry waits
    a little longer, with jitter, and is logged in one line; after `attempts` tries the error is
    raised (the job fails and the cron sweep finds its row). Other errors pass through at once.
    """
    for attempt in range(1, attempts + 1):
        try:
            return fn(*args, **kwargs)
        except OperationalError as exc:
            if "database is locked" not in str(exc.orig) or attempt == attempts:
                raise
            db.session.rollback()
            delay = min(2.0, 0.02 * 2 ** attempt) * (0.5 + random.random())
            log.warning("database is locked (another writer committed first); %s tries again in %.2f s "
                        "(attempt %d of %d)", getattr(fn, "__qualname__", fn), delay, attempt + 1, attempts)
            time.sleep(delay)


def pending_hooks() -> int:
    """How many hooks wait for the current transaction (for tests and assertions)."""
    return len(db.session().info.get(_HOOKS, ()))


def _call(fn: Callable, args: tuple, kwargs: dict) -> None:
    try:
        fn(*args, **kwargs)
    except Exception:  # noqa: BLE001 - committed already; the cron sweeps find what this would have announced
        log.exception("after-commit hook %s failed", getattr(fn, "__qualname__", fn))


@event.listens_for(Session, "after_commit")
def _run_hooks(session: Session) -> None:
    if session.get_nested_transaction() is not None:
        return  # a savepoint was released (SQLAlchemy signals those too): wait for the real COMMIT
    hooks = session.info.pop(_HOOKS, None)
    for _transaction, fn, args, kwargs in hooks or ():
        _call(fn, args, kwargs)


@event.listens_for(Session, "after_soft_rollback")
def _drop_hooks(session: Session, previous_transaction: SessionTransaction) -> None:
    hooks = session.info.get(_HOOKS)
    if not hooks:
        return
    if not previous_transaction.nested:
        session.info.pop(_HOOKS, None)
        return
    session.info[_HOOKS] = [h for h in hooks if not _inside(h[0], previous_transaction)]


def _inside(transaction: SessionTransaction | None, ancestor: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is ancestor:
            return True
        transaction = transaction.parent
    return False
