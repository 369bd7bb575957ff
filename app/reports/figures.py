"""The reports, read from `conversation_facts` only (never from the messages table).

A period is whole UTC days, `start` to `end` inclusive; the previous period is as many days just
before it. For each day:

* received: conversations created that day; replied: conversations whose first agent reply was that
  day; resolved: conversations resolved that day (and still resolved: a reopen takes it back);
* first response time: from the customer's first message to the first agent reply, for the
  conversations first replied to that day; resolution time: from creation to resolution, for the
  conversations resolved that day; each as the median and the 90th percentile (nearest rank);
* backlog: conversations created by the end of the day and not resolved by then.

Durations are computed by the database (seconds), and only they and the day travel to Python.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import func, select

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


def nearest_rank(values: list[float], share: float) -> float | None:
    """The `share` percentile by nearest rank (p90: the smallest value with 90 % of values at or below it)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(share * len(ordered))) - 1]


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _dialect() -> str:
    return db.session.get_bind().dialect.name


def _day(column):
    """The UTC day of a time column, as the database writes it."""
    if _dialect() == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.substr(column, 1, 10)  # SQLite stores UTC as "YYYY-MM-DD HH:MM:SS..."


def _seconds(later, earlier):
    if _dialect() == "postgresql":
        return func.extract("epoch", later - earlier)
    return (func.julianday(later) - func.julianday(earlier)) * 86400.0


def _counts_by_day(column, period: Period) -> dict[str, int]:
    day = _day(column)
    rows = db.session.execute(select(day, func.count()).where(column >= period.since, column < period.until)
                              .group_by(day))
    return {str(d): n for d, n in rows}


#: The duration each time report measures: (end column, start expression).
def _durations():
    return {
        "first_response": (F.first_response_at, func.coalesce(F.first_customer_message_at, F.created_at)),
        "resolution": (F.resolved_at, F.created_at),
    }


@dataclass
class DayRow:
    day: str
    received: int = 0
    replied: int = 0
    resolved: int = 0
    backlog: int = 0
    first_response: list[float] = field(default_factory=list)  # seconds
    resolution: list[float] = field(default_factory=list)

    @property
    def first_response_median(self):
        return median(self.first_response)

    @property
    def first_response_p90(self):
        return nearest_rank(self.first_response, 0.9)

    @property
    def resolution_median(self):
        return median(self.resolution)

    @property
    def resolution_p90(self):
        return nearest_rank(self.resolution, 0.9)


@dataclass
class Report:
    period: Period
    days: list[DayRow]
    total: DayRow  # the whole period (backlog: at its end)


def report(period: Period) -> Report:
    """Volume, first response and resolution times, and backlog per day of `period`, with its totals."""
    rows = {d.isoformat(): DayRow(d.isoformat()) for d in period.days}
    for name, column in (("received", F.created_at), ("replied", F.first_response_at),
                         ("resolved", F.resolved_at)):
        for day, n in _counts_by_day(column, period).items():
            if day in rows:
                setattr(rows[day], name, n)
    for name, (end, start) in _durations().items():
        day = _day(end)
        for d, seconds in db.session.execute(select(day, _seconds(end, start))
                                             .where(end >= period.since, end < period.until)):
            if str(d) in rows and seconds is not None:
                getattr(rows[str(d)], name).append(max(0.0, float(seconds)))
    created_before = db.session.scalar(select(func.count()).where(F.created_at < period.since))
    resolved_before = db.session.scalar(select(func.count()).where(F.resolved_at < period.since))
    backlog = created_before - resolved_before
    total = DayRow("total")
    for row in rows.values():
        backlog += row.received - row.resolved
        row.backlog = backlog
        total.received += row.received
        total.replied += row.replied
        total.resolved += row.resolved
        total.first_response += row.first_response
        total.resolution += row.resolution
    total.backlog = backlog
    return Report(period, list(rows.values()), total)


@dataclass
class GroupRow:
    key: object
    label: str
    received: int = 0
    replied: int = 0
    resolved: int = 0
    first_response: list[float] = field(default_factory=list)
    resolution: list[float] = field(default_factory=list)

    @property
    def first_response_median(self):
        return median(self.first_response)

    @property
    def first_response_p90(self):
        return nearest_rank(self.first_response, 0.9)

    @property
    def resolution_median(self):
        return median(self.resolution)

    @property
    def resolution_p90(self):
        return nearest_rank(self.resolution, 0.9)


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
    key = DIMENSIONS[by]
    groups: dict = {}

    def group(k) -> GroupRow:
        return groups.setdefault(k, GroupRow(k, ""))

    for name, column in (("received", F.created_at), ("replied", F.first_response_at),
                         ("resolved", F.resolved_at)):
        for k, n in db.session.execute(select(key, func.count()).where(column >= period.since, column < period.until)
                                       .group_by(key)):
            setattr(group(k), name, n)
    for name, (end, start) in _durations().items():
        for k, seconds in db.session.execute(select(key, _seconds(end, start))
                                             .where(end >= period.since, end < period.until)):
            if seconds is not None:
                getattr(group(k), name).append(max(0.0, float(seconds)))
    labels = _labels(by, set(groups))
    for k, row in groups.items():
        row.label = labels[k]
    return sorted(groups.values(), key=lambda r: (-r.received, r.label))


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
