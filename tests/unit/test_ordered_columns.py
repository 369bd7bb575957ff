"""`ordered_columns`: SQL text whose result columns are named in order keeps its result description with
the compiled statement (SQLAlchemy builds it once), and its rows have those names and types."""
from __future__ import annotations

from datetime import timezone

import pytest
from sqlalchemy import create_engine, text

from app.models._types import UTCDateTime, ordered_columns


def _descriptions(engine, statement, times: int) -> set[int]:
    """The result descriptions SQLAlchemy used for `times` executions of `statement` (each kept, so that
    their ids are not reused), by id."""
    with engine.connect() as conn:
        kept = [conn.execute(statement)._metadata for _ in range(times)]
    return {id(m) for m in kept}


def test_rows_have_the_names_and_types_and_the_description_is_built_once():
    engine = create_engine("sqlite://")
    statement = ordered_columns(text("SELECT 7, '2026-01-02 03:04:05.000000', 'x'"), "id when_at label",
                                when_at=UTCDateTime())
    with engine.connect() as conn:
        row = conn.execute(statement).one()
    assert (row.id, row.label) == (7, "x")
    assert row.when_at.tzinfo is timezone.utc and row.when_at.hour == 3
    assert len(_descriptions(engine, statement, 3)) == 1
    # By keyword alone, SQLAlchemy matches the cursor's names again on each execution: the cost this avoids.
    by_keyword = text("SELECT 7 AS id, 'x' AS label").columns(label=UTCDateTime())
    assert len(_descriptions(engine, by_keyword, 3)) == 3


def test_a_type_for_a_column_not_named_is_refused():
    with pytest.raises(ValueError, match="when_at"):
        ordered_columns(text("SELECT 1"), "id", when_at=UTCDateTime())


def test_utc_of_reads_a_raw_time_as_utc_datetime_does():
    """`utc_of` (the inbox list's untyped times) gives what `UTCDateTime` gives for SQLite's text, a naive and an
    aware datetime, and None."""
    from datetime import datetime, timedelta

    from app.models._types import utc_of

    engine = create_engine("sqlite://")
    raw = "2026-01-02 03:04:05.678901"
    with engine.connect() as conn:
        typed = conn.execute(ordered_columns(text(f"SELECT '{raw}'"), "at", at=UTCDateTime())).scalar_one()
    assert utc_of(raw) == typed and utc_of(raw).tzinfo is timezone.utc and utc_of(raw).microsecond == 678901
    assert utc_of("2026-01-02 03:04:05") == datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert utc_of(datetime(2026, 1, 2, 3)).tzinfo is timezone.utc
    aware = datetime(2026, 1, 2, 5, tzinfo=timezone(timedelta(hours=2)))
    assert utc_of(aware) is aware and utc_of(None) is None
