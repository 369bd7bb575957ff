"""Business-hours arithmetic for service levels: pure functions, no database, no Flask.

A calendar is a queue's business hours (`Queue.business_hours`, the JSON described in
`app.flows.routing`) and its IANA time zone::

    {"mon": [["09:00", "17:00"]], ..., "sun": [], "holidays": ["2026-12-25"]}

``None`` (or ``{}``) means always open: business minutes are then plain minutes. An
interval whose end is not after its start runs past midnight (``["22:00", "06:00"]``
on Monday is Monday 22:00 to Tuesday 06:00). A holiday closes the intervals that
*start* on that day (an overnight interval begun the evening before still runs), as
`app.flows.routing.Calendar.is_open` does.

Local wall times are turned into instants with `zoneinfo`, so a business minute is a
real minute: on the night clocks go forward, ``00:00-06:00`` lasts five hours; on the
night they go back, seven. A wall time that does not exist (inside the spring gap)
is read with the offset before the jump (02:30 counts as 03:30).

`add_business_minutes(start, n, hours, tz)` is the instant when `n` business minutes
have passed after `start`; `business_minutes_between(a, b, hours, tz)` counts the
business minutes in ``[a, b)``. Both take and return aware datetimes (naive ones are
read as UTC).
"""
from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: How far ahead to look for an open minute before giving up (a calendar with no hours at all).
HORIZON_DAYS = 800


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=timezone.utc)


def _minute_of_day(value: str) -> int:
    hh, _, mm = value.strip().partition(":")
    return int(hh) * 60 + int(mm)


def _instant(day: date, minute: int, zone: ZoneInfo) -> datetime:
    """The UTC instant of local wall time `minute` (0..1440) on `day`."""
    day, minute = day + timedelta(days=minute // 1440), minute % 1440
    local = datetime.combine(day, time(minute // 60, minute % 60), tzinfo=zone)
    return local.astimezone(timezone.utc)  # fold=0: a gap time is read with the offset before the jump


def _day_intervals(day: date, hours: dict, zone: ZoneInfo) -> list[tuple[datetime, datetime]]:
    if day.isoformat() in set(hours.get("holidays") or []):
        return []
    out = []
    for start, end in hours.get(DAYS[day.weekday()]) or []:
        s, e = _minute_of_day(start), _minute_of_day(end)
        if e <= s:
            e += 1440
        a, b = _instant(day, s, zone), _instant(day, e, zone)
        if b > a:
            out.append((a, b))
    return sorted(out)


def open_intervals(since: datetime, hours: dict, time_zone: str,
                   until: datetime | None = None) -> Iterator[tuple[datetime, datetime]]:
    """The calendar's open intervals (UTC, merged, in order) that end after `since`.

    Stops at `until`, or after `HORIZON_DAYS` days.
    """
    zone = ZoneInfo(time_zone or "UTC")
    since = _aware(since).astimezone(timezone.utc)
    day = since.astimezone(zone).date() - timedelta(days=1)  # yesterday's overnight tail
    last = day + timedelta(days=HORIZON_DAYS)
    if until is not None:
        last = min(last, _aware(until).astimezone(zone).date() + timedelta(days=1))
    current: tuple[datetime, datetime] | None = None
    while day <= last:
        for a, b in _day_intervals(day, hours, zone):
            if current and a <= current[1]:
                current = (current[0], max(current[1], b))
                continue
            if current and current[1] > since:
                yield current
            current = (a, b)
        day += timedelta(days=1)
    if current and current[1] > since:
        yield current


def add_business_minutes(start: datetime, minutes: float, hours: dict | None,
                         time_zone: str = "UTC") -> datetime | None:
    """The instant `minutes` business minutes after `start`.

    None when the calendar never opens (every day empty) within `HORIZON_DAYS`.
    """
    start = _aware(start).astimezone(timezone.utc)
    if not hours:
        return start + timedelta(minutes=minutes)
    left = timedelta(minutes=minutes)
    for a, b in open_intervals(start, hours, time_zone):
        a = max(a, start)
        if a + left <= b:
            return a + left
        left -= b - a
    return None


def business_minutes_between(a: datetime, b: datetime, hours: dict | None,
                             time_zone: str = "UTC") -> float:
    """Business minutes in ``[a, b)``; negative when `b` is before `a`."""
    a, b = _aware(a).astimezone(timezone.utc), _aware(b).astimezone(timezone.utc)
    if b < a:
        return -business_minutes_between(b, a, hours, time_zone)
    if not hours:
        return (b - a).total_seconds() / 60
    total = timedelta()
    for s, e in open_intervals(a, hours, time_zone, until=b):
        if s >= b:
            break
        total += min(e, b) - max(s, a)
    return total.total_seconds() / 60
