"""The reports, read from `conversation_facts` only (never from the messages table).

A period is whole UTC days, `start` to `end` inclusive; the previous period is as many days just
before it. For each day:

* received: conversations created that day; replied: conversations whose first agent reply was that
  day; resolved: conversations resolved that day (and still resolved: a reopen takes it back);
* first response time: from the customer's first message to the first agent reply, for the
  conversations first replied to that day; resolution time: from creation to resolution, for the
  conversations resolved that day; each as the median and the 90th percentile (nearest rank);
* backlog: conversations created by the end of the day and not resolved by then.

Durations are kept in the facts in seconds (`first_response_seconds`, `resolution_seconds`) and read
from covering indexes with the day and the breakdown's key; only those travel to Python.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import select, text

from app.extensions import db
from app.models.auth import Queue, User
from app.models.channels import EmailAddress
from app.models.reports import ConversationFacts as F

#: The longest period a report covers (days).
MAX_DAYS = 366
#: Presets of the period picker (days ending today).
PRESETS = (7, 30, 90)
#: How a report can be broken down, and the facts' column of each.
DIMENSIONS = {"queue": F.queue_id, "agent": F.agent_id, "address": F.address_id, "intent": F.intent}
DIMENSION_LABELS = {"queue": "Queue", "agent": "Agent", "address": "Email Address", "intent": "Intent"}


class PeriodError(ValueError):
    """A period that cannot be reported on; the message says why in plain words."""


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]

    @property
    def since(self) -> datetime:
        return datetime.combine(self.start, time.min, timezone.utc)

    @property
    def until(self) -> datetime:
        return datetime.combine(self.end + timedelta(days=1), time.min, timezone.utc)

    def previous(self) -> Period:
        length = (self.end - self.start).days + 1
        return Period(self.start - timedelta(days=length), self.start - timedelta(days=1))


def parse_period(start: str | None, end: str | None, days: str | None = None, today: date | None = None) -> Period:
    """The period of the picker: `start`/`end` (YYYY-MM-DD), else the last `days` (7 by default) to today.
    Raises `PeriodError`."""
    today = today or datetime.now(timezone.utc).date()
    if start or end:
        try:
            first = date.fromisoformat(start or "")
            last = date.fromisoformat(end or "") if end else today
        except ValueError:
            raise PeriodError("Write the dates as YYYY-MM-DD.") from None
        if last < first:
            raise PeriodError("The end date is before the start date.")
        if (last - first).days + 1 > MAX_DAYS:
            raise PeriodError(f"A report covers at most {MAX_DAYS} days.")
        return Period(first, last)
    try:
        length = int(days or 7)
    except ValueError:
        raise PeriodError("Choose a number of days.") from None
    if not 1 <= length <= MAX_DAYS:
        raise PeriodError(f"A report covers 1 to {MAX_DAYS} days.")
    return Period(today - timedelta(days=length - 1), today)


def nearest_rank(values: list[float], share: float, presorted: bool = False) -> float | None:
    """The `share` percentile by nearest rank (p90: the smallest value with 90 % of values at or below it)."""
    if not values:
        return None
    ordered = values if presorted else sorted(values)
    return ordered[max(1, math.ceil(share * len(ordered))) - 1]


def median(values: list[float]) -> float | None:
    """The median of sorted `values` (the mean of the middle two for an even count)."""
    if not values:
        return None
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2


def _dialect() -> str:
    return db.session.get_bind().dialect.name


#: The columns a report counts by (day of), and the durations it measures: end column, start expression.
COUNTED = {"received": "created_at", "replied": "first_response_at", "resolved": "resolved_at"}
MEASURED = {"first_response": ("first_response_at", "first_response_seconds"),
            "resolution": ("resolved_at", "resolution_seconds")}
#: The facts' column of each breakdown (the SQL below is built only from these fixed names).
KEY_COLUMNS = {"queue": "queue_id", "agent": "agent_id", "address": "address_id", "intent": "intent"}


def _sql_parts() -> tuple:
    """(day of a column, a bound time) for this database."""
    if _dialect() == "postgresql":
        return (lambda c: f"to_char({c} AT TIME ZONE 'UTC', 'YYYY-MM-DD')", lambda t: t)
    return (lambda c: f"substr({c}, 1, 10)",  # SQLite stores UTC as "YYYY-MM-DD HH:MM:SS.ffffff"
            lambda t: t.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f"))


def _rows(sql: str, period: Period) -> list[tuple]:
    """The rows of `sql` (`:since` and `:until` bound to the period) as plain tuples, on the session's connection.

    Through the driver's own cursor on purpose: a report reads tens of thousands of (day, key, seconds)
    rows, and building a result row object for each would cost as much as the query."""
    _day, bound = _sql_parts()
    if _dialect() == "postgresql":
        sql = sql.replace(":since", "%(since)s").replace(":until", "%(until)s")
    cursor = db.session.connection().connection.cursor()
    try:
        cursor.execute(sql, {"since": bound(period.since), "until": bound(period.until)})
        return cursor.fetchall()
    finally:
        cursor.close()


@dataclass
class DayRow:
    day: str
    received: int = 0
    replied: int = 0
    resolved: int = 0
    backlog: int = 0
    first_response: list[float] = field(default_factory=list)  # seconds
    resolution: list[float] = field(default_factory=list)

    # Read after the report is built (the lists no longer change), several times by a page: sorted once.
    @cached_property
    def _first_sorted(self) -> list:
        return sorted(self.first_response)

    @cached_property
    def _resolution_sorted(self) -> list:
        return sorted(self.resolution)

    @property
    def first_response_median(self):
        return median(self._first_sorted)

    @property
    def first_response_p90(self):
        return nearest_rank(self._first_sorted, 0.9, presorted=True)

    @property
    def resolution_median(self):
        return median(self._resolution_sorted)

    @property
    def resolution_p90(self):
        return nearest_rank(self._resolution_sorted, 0.9, presorted=True)


@dataclass
class GroupRow(DayRow):
    key: object = None
    label: str = ""


@dataclass
class Report:
    period: Period
    days: list[DayRow]
    total: DayRow  # the whole period (backlog: at its end)
    groups: list[GroupRow] = field(default_factory=list)  # with `by`: per queue, agent, address or intent


def report(period: Period, by: str | None = None) -> Report:
    """Volume, first response and resolution times, and backlog per day of `period`, with its totals; with
    `by` (a key of `DIMENSIONS`) the same per group. One query per figure, each over the period's rows once."""
    if by is not None and by not in KEY_COLUMNS:
        raise PeriodError(f"Unknown breakdown {by!r}.")
    day_of, _bound = _sql_parts()
    key = KEY_COLUMNS[by] if by else "NULL"
    rows = {d.isoformat(): DayRow(d.isoformat()) for d in period.days}
    groups: dict = {}
    total = DayRow("total")
    for name, column in COUNTED.items():
        for day, k, n in _rows(f"SELECT {day_of(column)}, {key}, COUNT(*) FROM conversation_facts "
                               f"WHERE {column} >= :since AND {column} < :until GROUP BY 1, 2", period):
            if day in rows:
                setattr(rows[day], name, getattr(rows[day], name) + n)
            setattr(total, name, getattr(total, name) + n)
            if by:
                if k not in groups:
                    groups[k] = GroupRow("", key=k)
                setattr(groups[k], name, getattr(groups[k], name) + n)
    for name, (end, seconds_column) in MEASURED.items():
        # Tens of thousands of rows: the lists are looked up once, not per row.
        per_day = {day: getattr(row, name) for day, row in rows.items()}
        everything, per_group = getattr(total, name), {}
        for day, k, seconds in _rows(f"SELECT {day_of(end)}, {key}, {seconds_column} "
                                     f"FROM conversation_facts WHERE {end} >= :since AND {end} < :until", period):
            if seconds is None:
                continue
            value = seconds if seconds > 0 else 0
            values = per_day.get(day)
            if values is not None:
                values.append(value)
            everything.append(value)
            if by:
                values = per_group.get(k)
                if values is None:
                    if k not in groups:
                        groups[k] = GroupRow("", key=k)
                    values = per_group[k] = getattr(groups[k], name)
                values.append(value)
    before = _bound(period.since)
    created_before, resolved_before = db.session.execute(text(
        "SELECT (SELECT COUNT(*) FROM conversation_facts WHERE created_at < :t), "
        "(SELECT COUNT(*) FROM conversation_facts WHERE resolved_at < :t)"), {"t": before}).one()
    backlog = created_before - resolved_before
    for row in rows.values():
        backlog += row.received - row.resolved
        row.backlog = backlog
    total.backlog = backlog
    result = Report(period, list(rows.values()), total)
    if by:
        labels = _labels(by, set(groups))
        for k, group in groups.items():
            group.day, group.label = "", labels[k]
        result.groups = sorted(groups.values(), key=lambda r: (-r.received, r.label))
    return result


def _labels(by: str, keys: set) -> dict:
    ids = [k for k in keys if k is not None]
    if by == "queue":
        found = dict(db.session.execute(select(Queue.id, Queue.name).where(Queue.id.in_(ids))).all())
    elif by == "agent":
        found = {i: name or email for i, name, email in
                 db.session.execute(select(User.id, User.name, User.email).where(User.id.in_(ids)))}
    elif by == "address":
        found = dict(db.session.execute(select(EmailAddress.id, EmailAddress.address)
                                        .where(EmailAddress.id.in_(ids))).all())
    else:
        found = {k: str(k) for k in ids}
    none = {"queue": "No queue", "agent": "Nobody", "address": "No address", "intent": "No intent"}[by]
    return {k: found.get(k, f"#{k}") if k is not None else none for k in keys}


def breakdown(period: Period, by: str) -> list[GroupRow]:
    """The period's figures per queue, agent, address or intent (`DIMENSIONS`), most received first."""
    if by not in DIMENSIONS:
        raise PeriodError(f"Unknown breakdown {by!r}.")
    return report(period, by).groups


def change(now: float | None, before: float | None) -> str:
    """The change from the previous period in words: "+12 %", "−3 %", "new", "" (nothing to compare)."""
    if now is None or before is None:
        return ""
    if before == 0:
        return "" if now == 0 else "new"
    pct = round((now - before) * 100 / before)
    return f"+{pct} %" if pct > 0 else (f"−{-pct} %" if pct < 0 else "0 %")


def duration_words(seconds: float | None) -> str:
    """A duration for people: "42 min", "3.5 h", "2.1 d"; "" for none."""
    if seconds is None:
        return ""
    if seconds < 3600:
        return f"{round(seconds / 60)} min"
    if seconds < 86400 * 2:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"
