"""The reports, read from `conversation_facts` (and `conversation_tags` by tag), never from the messages table.

A period is whole UTC days, `start` to `end` inclusive; the previous period is as many days just
before it. For each day:

* received: conversations created that day; replied: conversations whose first agent reply was that
  day; resolved: conversations resolved that day (and still resolved: a reopen takes it back);
* first response time: from the customer's first message to the first agent reply, for the
  conversations first replied to that day; resolution time: from creation to resolution, for the
  conversations resolved that day; each as the median and the 90th percentile (nearest rank);
* backlog: conversations created by the end of the day and not resolved by then;
* SLA attainment: of the conversations received that day whose first response (resolution) an SLA
  policy judged, the share that met the target (`ConversationFacts.*_breached` False); those no
  policy measured, or still running, are not counted.

By tag, a conversation with several tags counts in each of their groups (and once in the days).

Durations are kept in the facts in seconds (`first_response_seconds`, `resolution_seconds`) and read
from covering indexes with the day and the breakdown's key; only those travel to Python. A computed report is
cached in Redis under the facts' version (`app.runtime.facts.version`), which every commit that changed the
facts moves on (docs/reports.md).
"""
from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field, fields
from datetime import date, datetime, time, timedelta, timezone

from redis.exceptions import RedisError
from sqlalchemy import select, text

from app.extensions import db
from app.models.auth import Queue, User
from app.models.channels import EmailAddress
from app.models.organize import ConversationTag
from app.models.reports import ConversationFacts as F
from app.queues import redis_connection
from app.runtime import facts

#: The longest period a report covers (days).
MAX_DAYS = 366
#: Presets of the period picker (days ending today).
PRESETS = (7, 30, 90)
#: How a report can be broken down, and the facts' column of each.
DIMENSIONS = {"queue": F.queue_id, "agent": F.agent_id, "address": F.address_id, "intent": F.intent,
              "tag": ConversationTag.tag}
DIMENSION_LABELS = {"queue": "Queue", "agent": "Agent", "address": "Email Address", "intent": "Intent",
                    "tag": "Tag"}


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


def share(part: int, whole: int) -> float | None:
    """`part` of `whole` in per cent, one decimal; None when `whole` is 0."""
    return round(part * 100 / whole, 1) if whole else None


def _dialect() -> str:
    return db.session.get_bind().dialect.name


#: The columns a report counts by (day of), and the durations it measures: end column, start expression.
COUNTED = {"received": "created_at", "replied": "first_response_at", "resolved": "resolved_at"}
MEASURED = {"first_response": ("first_response_at", "first_response_seconds"),
            "resolution": ("resolved_at", "resolution_seconds")}
#: The SLA's judgements a report counts, by the day the conversation was received: measured (met or
#: breached; None is neither) and met, for the first response and the resolution.
SLA_COUNTED = {
    "first_measured": "COUNT(first_response_breached)",
    "first_met": "COUNT(CASE WHEN NOT first_response_breached THEN 1 END)",
    "resolution_measured": "COUNT(resolution_breached)",
    "resolution_met": "COUNT(CASE WHEN NOT resolution_breached THEN 1 END)",
}
#: The facts' column of each breakdown (the SQL below is built only from these fixed names).
KEY_COLUMNS = {"queue": "queue_id", "agent": "agent_id", "address": "address_id", "intent": "intent",
               "tag": "conversation_tags.tag"}
#: The tags with their conversations' facts (the "by tag" breakdown: a conversation with several tags has a row
#: for each; one without tags has none). On SQLite read from the tags, each looking up its conversation's facts
#: (`CROSS JOIN` keeps that order): a few thousand tags, rather than a search of the tags for every conversation
#: of the period, which cost more than the rest of the report. PostgreSQL chooses its own way.
TAG_SOURCES = {"sqlite": "conversation_tags CROSS JOIN conversation_facts "
                         "ON conversation_facts.conversation_id = conversation_tags.conversation_id",
               "postgresql": "conversation_tags JOIN conversation_facts "
                             "ON conversation_facts.conversation_id = conversation_tags.conversation_id"}


def _sql_parts() -> tuple:
    """(day of a column, a bound time) for this database."""
    if _dialect() == "postgresql":
        # The UTC date (a third cheaper per row than `to_char`), made "YYYY-MM-DD" by `_grouped`
        return (lambda c: f"CAST({c} AT TIME ZONE 'UTC' AS DATE)", lambda t: t)
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
    # The durations (seconds) while a report is collected; `finish` turns them into the four figures below.
    first_response: list[float] = field(default_factory=list)
    resolution: list[float] = field(default_factory=list)
    # SLA attainment of the conversations received that day (`SLA_COUNTED`)
    first_measured: int = 0
    first_met: int = 0
    resolution_measured: int = 0
    resolution_met: int = 0
    first_response_median: float | None = None
    first_response_p90: float | None = None
    resolution_median: float | None = None
    resolution_p90: float | None = None

    @property
    def first_attainment(self) -> float | None:
        """The share (%) of the measured first responses that met their target; None: none measured."""
        return share(self.first_met, self.first_measured)

    @property
    def resolution_attainment(self) -> float | None:
        return share(self.resolution_met, self.resolution_measured)

    def finish(self) -> None:
        """The medians and 90th percentiles of the durations collected (each list sorted once), which are
        then let go: a report keeps and caches its figures, not tens of thousands of seconds."""
        for name in MEASURED:
            ordered = sorted(getattr(self, name))
            setattr(self, f"{name}_median", median(ordered))
            setattr(self, f"{name}_p90", nearest_rank(ordered, 0.9, presorted=True))
            setattr(self, name, [])


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


def _grouped(period: Period, column: str, key: str, aggregates: str, source: str, by_day: bool):
    """(day, key, *aggregates) of the rows of `source` whose `column` falls in the period, grouped by the
    day of `column` (None without `by_day`: the whole period) and `key`.

    On SQLite, over the facts alone, one statement per day, each grouped by the key: a day's rows are a
    range of the covering index, and grouping a few thousand rows at a time costs half of sorting the whole
    period's by an expression (the day) that no index orders. Elsewhere (PostgreSQL hashes its groups), one
    statement."""
    where = f"FROM {source} WHERE {column} >= :since AND {column} < :until"
    if not by_day:
        for row in _rows(f"SELECT {key}, {aggregates} {where} GROUP BY 1", period):
            yield (None, *row)
    elif _dialect() == "sqlite" and source == "conversation_facts":
        sql = f"SELECT {key}, {aggregates} {where} GROUP BY 1"
        for day in period.days:
            for row in _rows(sql, Period(day, day)):
                yield (day.isoformat(), *row)
    else:
        day_of, _bound = _sql_parts()
        for day, *row in _rows(f"SELECT {day_of(column)}, {key}, {aggregates} {where} GROUP BY 1, 2", period):
            yield (day if isinstance(day, str) else day.isoformat(), *row)


def _seconds(listed: str | None) -> list[int]:
    """The durations of a group as the database listed them ("12,345,6"; None: none measured)."""
    return list(map(int, listed.split(","))) if listed else []


def _collect(period: Period, key: str, source: str, rows: dict | None, total: DayRow | None,
             groups: dict | None) -> None:
    """Add the period's counts, durations and SLA judgements read from `source` (a FROM clause) to the
    days (`rows`, by day), the `total` and the `groups` (by `key`, an SQL expression); None: not wanted.

    Three passes over the period's rows, one per time column, each grouped in SQL by the day and the key
    (`_grouped`): the conversations received with the SLA's judgements; those replied to and resolved each
    with the list of their durations (a row without a duration counts, and is not measured). Only a row per
    day and key reaches Python, never a row per conversation."""
    concat = "string_agg(CAST({} AS TEXT), ',')" if _dialect() == "postgresql" else "group_concat({})"

    def group(k) -> GroupRow:
        if k not in groups:
            groups[k] = GroupRow("", key=k)
        return groups[k]

    def targets(day, k) -> list[DayRow]:
        found = [total] if total is not None else []
        if rows is not None and day in rows:
            found.append(rows[day])
        if groups is not None:
            found.append(group(k))
        return found

    for day, k, n, *counts in _grouped(period, COUNTED["received"], key,
                                       ", ".join(("COUNT(*)", *SLA_COUNTED.values())), source, rows is not None):
        for target in targets(day, k):
            target.received += n
            for counted, m in zip(SLA_COUNTED, counts):
                setattr(target, counted, getattr(target, counted) + (m or 0))
    for (name, (end, seconds_column)), counted in zip(MEASURED.items(), ("replied", "resolved")):
        measured = concat.format(f"CASE WHEN {seconds_column} < 0 THEN 0 ELSE {seconds_column} END")
        for day, k, n, listed in _grouped(period, end, key, f"COUNT(*), {measured}", source, rows is not None):
            values = _seconds(listed)
            for target in targets(day, k):
                setattr(target, counted, getattr(target, counted) + n)
                getattr(target, name).extend(values)


def _collect_tags(period: Period, total: DayRow, groups: dict) -> None:
    """The period's groups by tag (`groups`, by tag; None: "No tag"), with `total` already collected.

    A conversation with several tags counts under each. The tagged conversations' rows are read one per tag
    (`TAG_SOURCES`); the "No tag" group is the period's total less the tagged conversations, each taken once:
    its counts by subtraction, its durations as the total's less the tagged ones' (as many times as each
    value occurs), so no statement needs to look up the tags of every conversation of the period."""
    tagged = DayRow("tagged")  # each tagged conversation once

    def add(target: DayRow, name: str, n: int = 1) -> None:
        setattr(target, name, getattr(target, name) + n)

    source = TAG_SOURCES["postgresql" if _dialect() == "postgresql" else "sqlite"]
    seen: set = set()
    for conversation, tag, *judged in _rows(
            f"SELECT conversation_facts.conversation_id, conversation_tags.tag, first_response_breached, "
            f"resolution_breached FROM {source} WHERE created_at >= :since AND created_at < :until", period):
        first_new = conversation not in seen
        seen.add(conversation)
        for target in ((groups.setdefault(tag, GroupRow("", key=tag)), tagged) if first_new
                       else (groups.setdefault(tag, GroupRow("", key=tag)),)):
            add(target, "received")
            for measured, met, breached in (("first_measured", "first_met", judged[0]),
                                            ("resolution_measured", "resolution_met", judged[1])):
                if breached is not None:
                    add(target, measured)
                    if not breached:
                        add(target, met)
    for (name, (end, seconds_column)), counted in zip(MEASURED.items(), ("replied", "resolved")):
        seen = set()
        for conversation, tag, seconds in _rows(
                f"SELECT conversation_facts.conversation_id, conversation_tags.tag, "
                f"CASE WHEN {seconds_column} < 0 THEN 0 ELSE {seconds_column} END FROM {source} "
                f"WHERE {end} >= :since AND {end} < :until", period):
            targets = [groups.setdefault(tag, GroupRow("", key=tag))]
            if conversation not in seen:
                seen.add(conversation)
                targets.append(tagged)
            for target in targets:
                add(target, counted)
                if seconds is not None:
                    getattr(target, name).append(seconds)
    untagged = GroupRow("", key=None)
    for f in ("received", "replied", "resolved", *SLA_COUNTED):
        setattr(untagged, f, getattr(total, f) - getattr(tagged, f))
    for name in MEASURED:
        remaining = Counter(getattr(total, name))
        remaining.subtract(getattr(tagged, name))
        setattr(untagged, name, sorted(remaining.elements()))
    if untagged.received or untagged.replied or untagged.resolved:
        groups[None] = untagged


def report(period: Period, by: str | None = None, days: bool = True) -> Report:
    """Volume, first response and resolution times, SLA attainment and backlog per day of `period`, with its
    totals; with `by` (a key of `DIMENSIONS`) the same per group; `days=False`: the totals only (the previous
    period's). One query per time column, each over the period's rows once; by tag, the groups apart (a
    conversation with two tags counts in both groups, once in the days).

    Cached in Redis for `CACHE_SECONDS` under the facts' version (`app.runtime.facts.version`, which a
    commit that changed the facts moves on), so a report is computed again as soon as anything it reads
    changed; the version is read before the facts, so what is cached is never older than its key."""
    if by is not None and by not in KEY_COLUMNS:
        raise PeriodError(f"Unknown breakdown {by!r}.")
    version = facts.version()
    cache_key = (f"reports:report:{version}:{period.start.isoformat()}:{period.end.isoformat()}:{by or ''}:"
                 f"{int(days)}")
    cached = _cached(cache_key) if version is not None else None
    if cached is None:
        cached = _report(period, by, days)
        if version is not None:
            _keep(cache_key, cached)
    if by:
        labels = _labels(by, {group.key for group in cached.groups})
        for group in cached.groups:
            group.label = labels[group.key]
        cached.groups.sort(key=lambda r: (-r.received, r.label))
    return cached


def _report(period: Period, by: str | None, days: bool) -> Report:
    _day_of, _bound = _sql_parts()
    rows = {d.isoformat(): DayRow(d.isoformat()) for d in period.days} if days else None
    groups: dict = {}
    total = DayRow("total")
    _collect(period, KEY_COLUMNS[by] if by and by != "tag" else "NULL", "conversation_facts", rows, total,
             groups if by and by != "tag" else None)
    if by == "tag":
        _collect_tags(period, total, groups)
    before = _bound(period.since)
    created_before, resolved_before = db.session.execute(text(
        "SELECT (SELECT COUNT(*) FROM conversation_facts WHERE created_at < :t), "
        "(SELECT COUNT(*) FROM conversation_facts WHERE resolved_at < :t)"), {"t": before}).one()
    backlog = created_before - resolved_before
    for row in (rows or {}).values():
        backlog += row.received - row.resolved
        row.backlog = backlog
    total.backlog = created_before - resolved_before + total.received - total.resolved
    for name in MEASURED:
        # The period's durations are the days' together: each day's sorted, the period's list is then runs of
        # sorted values, which `sorted` (in `finish`) merges in a fraction of the time a sort from scratch takes.
        day_lists = [getattr(row, name) for row in (rows or {}).values()]
        if day_lists and sum(map(len, day_lists)) == len(getattr(total, name)):
            merged: list = []
            for values in day_lists:
                values.sort()
                merged.extend(values)
            setattr(total, name, merged)
    for row in (*(rows or {}).values(), total, *groups.values()):
        row.finish()
    return Report(period, list((rows or {}).values()), total, list(groups.values()))


#: How long a computed report is kept (seconds): a bound, should a change ever reach the facts unseen.
CACHE_SECONDS = 60
_ROW_FIELDS = tuple(f.name for f in fields(GroupRow) if f.name not in MEASURED)


def _keep(key: str, result: Report) -> None:
    plain = {"days": [[getattr(r, f) for f in _ROW_FIELDS[:-2]] for r in result.days],
             "total": [getattr(result.total, f) for f in _ROW_FIELDS[:-2]],
             "groups": [[getattr(r, f) for f in _ROW_FIELDS] for r in result.groups],
             "period": [result.period.start.isoformat(), result.period.end.isoformat()]}
    try:
        redis_connection(timeout=1.0).set(key, json.dumps(plain, separators=(",", ":")), ex=CACHE_SECONDS)
    except RedisError:
        pass  # computed again next time


def _cached(key: str) -> Report | None:
    try:
        data = redis_connection(timeout=1.0).get(key)
    except RedisError:
        return None
    if data is None:
        return None
    plain = json.loads(data)
    day_fields = _ROW_FIELDS[:-2]
    return Report(Period(*(date.fromisoformat(d) for d in plain["period"])),
                  [DayRow(**dict(zip(day_fields, r))) for r in plain["days"]],
                  DayRow(**dict(zip(day_fields, plain["total"]))),
                  [GroupRow(**dict(zip(_ROW_FIELDS, r))) for r in plain["groups"]])


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
    none = {"queue": "No queue", "agent": "Nobody", "address": "No address", "intent": "No intent",
            "tag": "No tag"}[by]
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
