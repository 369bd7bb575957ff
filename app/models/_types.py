"""Column helpers shared by the model modules, and `ordered_columns` for the read models' SQL text."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import DDL, DateTime, Table, column, event
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.sql.selectable import TextualSelect
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None:
            if value.tzinfo is None:
                value = value.replace(tzinfo=timezone.utc)
            value = value.astimezone(timezone.utc)
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value


def utc_of(value) -> datetime | None:
    """A datetime column's raw value as `UTCDateTime` reads it: SQLite's text ("2026-01-02 03:04:05.678901",
    naive UTC) parsed, a naive datetime made UTC, an aware one (PostgreSQL) as it is; None stays None.

    For a list's statement that reads its columns untyped: SQLAlchemy's result processors cost two Python
    calls per value, NULLs included (a fifth of an inbox page's statement for 50 rows of 7 times)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


def ordered_columns(statement: TextClause, names: str, **types) -> TextualSelect:
    """`statement` (SQL text) with every column of its result named in order (`names`, separated by
    spaces) and typed where `types` says (`seen_at=UTCDateTime()`); the rows' keys are these names.

    Named in order, the columns let SQLAlchemy build the result's description once and keep it with
    the compiled statement. `TextClause.columns(name=type)` alone (some columns, by keyword) matches
    the cursor's column names against them again on every execution: for the pages' statements of 20
    to 30 columns that was a third of reading a conversation. Raises ValueError for a type of a
    column that is not named.
    """
    listed = names.split()
    if unknown := set(types) - set(listed):
        raise ValueError(f"types for columns not named: {sorted(unknown)}")
    return statement.columns(*(column(name, types.get(name)) for name in listed))


def database_objects(table: Table, created: dict[str, list[str]], dropped: dict[str, list[str]] | None = None) -> None:
    """Have `db.create_all()` run `created[dialect]` after it creates `table` and `db.drop_all()` run
    `dropped[dialect]` before it drops it: the triggers, functions and tables outside the models (full-text
    search, copied columns), which a migration creates too (migrations never import app code)."""
    for when, statements in (("after_create", created), ("before_drop", dropped or {})):
        for dialect, listed in statements.items():
            for statement in listed:
                event.listen(table, when, DDL(statement).execute_if(dialect=dialect))
