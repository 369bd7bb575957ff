"""Module-level extension singletons, bound to an app in `create_app` with `init_app`."""
from flask_login import LoginManager
from flask_mail import Mail
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from htmx_flask import Htmx
import sqlite3

from sqlalchemy import MetaData, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, make_transient, make_transient_to_detached
from sqlalchemy.pool import Pool
from sqlalchemy.orm import DeclarativeBase

# Stable constraint names so Alembic migrations work the same on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """Every SQLite connection: WAL journal, full sync, a busy timeout.

    WAL lets readers (web pages) and the writer (ingress, worker) run at once and
    makes a commit one append + one fsync of the log instead of a rollback journal's
    several fsyncs; `synchronous=FULL` keeps every committed transaction durable, which
    the ingress's "250 only after commit" and the send claim rely on. The journal mode
    sticks to the database file; an in-memory database answers "memory" and stays so.
    """
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA busy_timeout=10000")
    finally:
        cursor.close()


@event.listens_for(Session, "after_begin")
def _commit_without_fsync(session, _transaction, connection) -> None:
    """A session flagged `info["commit_without_fsync"]` (the send job) commits without waiting for the disk.

    SQLite: `synchronous=NORMAL` for this transaction, put back to FULL when the
    connection returns to the pool; PostgreSQL: `SET LOCAL synchronous_commit = off`,
    which ends with the transaction. See `app.runtime.outbound.deliver._commits_without_waiting_for_disk`.
    """
    if not session.info.get("commit_without_fsync"):
        return
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("PRAGMA synchronous=NORMAL")
        connection.connection.info["synchronous_normal"] = True
    elif connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")


@event.listens_for(Pool, "checkin")
def _full_sync_again(dbapi_connection, record) -> None:
    if record is not None and record.info.pop("synchronous_normal", False):
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA synchronous=FULL")
        finally:
            cursor.close()


def begin_writing(session=None) -> None:
    """Start the session's transaction as a writer now: on SQLite `BEGIN IMMEDIATE`, elsewhere nothing.

    For a job's transaction that reads before it writes (an ingest or flow batch). SQLite gives
    its one write lock to a deferred transaction only at its first write, and one whose snapshot
    another process's commit made stale meanwhile fails at once with "database is locked" (the
    busy timeout cannot help); the whole batch would then be rolled back and run again. Taken
    first, the write lock waits its turn in the busy timeout instead. A transaction already
    open is left as it is. PostgreSQL's row locks need nothing of the sort.
    """
    session = session or db.session
    connection = session.connection()
    if connection.dialect.name == "sqlite" and not connection.connection.driver_connection.in_transaction:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def begin_nested(session=None):
    """`session.begin_nested()` (default: `db.session`), inside a transaction that is really open.

    pysqlite opens SQLite's transaction only at the first INSERT, UPDATE or DELETE. A
    savepoint taken before any write is then the outermost one: SQLite starts a transaction
    with the SAVEPOINT, and its RELEASE commits it, so a later rollback could no longer undo
    what the savepoint wrote. Here the enclosing transaction is begun first on SQLite (a
    deferred BEGIN: it takes no lock before the first write, exactly as the SAVEPOINT alone
    would), so the RELEASE is only a release and the session's commit or rollback decides.
    Use it for every savepoint (`with begin_nested():` or `sp = begin_nested()`).
    """
    session = session or db.session
    connection = session.connection()
    if connection.dialect.name == "sqlite" and not connection.connection.driver_connection.in_transaction:
        connection.exec_driver_sql("BEGIN")
    return session.begin_nested()


def attach_inserted(session, obj) -> None:
    """Make `obj`, whose row this transaction has just inserted with Core, a persistent object of `session`.

    What an ORM flush of a new object leaves behind, without the unit of work (which costs more
    than the insert itself on the Send path): `obj` must carry its primary key; columns it was not given load on
    first access. If the transaction (or the savepoint it was inserted in) rolls back,
    `obj` is expunged and made transient again, as a flushed object would be, so nothing
    tries to reload a row that is gone.
    """
    make_transient_to_detached(obj)
    session.add(obj)
    root = session.get_transaction()
    transaction = session.get_nested_transaction() or root
    # Drop what a close() (not a commit or rollback) left from an earlier transaction.
    live = [(t, o) for t, o in session.info.get("inserted_with_core", ()) if _root(t) is root]
    session.info["inserted_with_core"] = live + [(transaction, obj)]


def _root(transaction):
    while transaction.parent is not None:
        transaction = transaction.parent
    return transaction


@event.listens_for(Session, "after_rollback")
def _forget_inserted_with_core(session) -> None:
    # Runs before the session expires what it holds, so the objects keep their values.
    inserted = session.info.get("inserted_with_core")
    if not inserted:
        return
    rolled_back = session.get_nested_transaction() or session.get_transaction()
    kept = []
    for transaction, obj in inserted:
        outer = transaction
        while outer is not None and outer is not rolled_back:
            outer = outer.parent
        if outer is None:  # inserted outside what was rolled back
            kept.append((transaction, obj))
            continue
        if obj in session:
            session.expunge(obj)
        make_transient(obj)
    session.info["inserted_with_core"] = kept


@event.listens_for(Session, "after_commit")
def _inserted_with_core_is_committed(session) -> None:
    if session.get_nested_transaction() is None:  # the whole transaction, not a savepoint
        session.info.pop("inserted_with_core", None)


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
csrf = CSRFProtect()
login = LoginManager()
htmx = Htmx()
mail = Mail()
