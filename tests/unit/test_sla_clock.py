"""Business-hours arithmetic (app.runtime.sla_clock): weekends, holidays, time zones, DST, overnight hours."""
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from app.runtime.sla_clock import add_business_minutes, business_minutes_between

UTC = timezone.utc
WEEKDAYS = {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")} | {"sat": [], "sun": []}


def berlin(*args):
    return datetime(*args, tzinfo=ZoneInfo("Europe/Berlin"))


def test_always_open_is_plain_minutes():
    start = datetime(2026, 3, 7, 23, 50, tzinfo=UTC)
    assert add_business_minutes(start, 42, None) == start + timedelta(minutes=42)
    assert business_minutes_between(start, start + timedelta(hours=2), None) == 120


def test_within_one_day():
    start = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # Monday
    assert add_business_minutes(start, 60, WEEKDAYS) == datetime(2026, 3, 2, 11, 0, tzinfo=UTC)


def test_before_opening_starts_at_opening():
    start = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
    assert add_business_minutes(start, 30, WEEKDAYS) == datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def test_friday_afternoon_runs_over_the_weekend():
    start = datetime(2026, 3, 6, 16, 0, tzinfo=UTC)  # Friday 16:00
    due = add_business_minutes(start, 120, WEEKDAYS)
    assert due == datetime(2026, 3, 9, 10, 0, tzinfo=UTC)  # Monday 10:00
    assert business_minutes_between(start, due, WEEKDAYS) == 120


def test_saturday_message_waits_for_monday():
    start = datetime(2026, 3, 7, 12, 0, tzinfo=UTC)
    assert add_business_minutes(start, 0, WEEKDAYS) == datetime(2026, 3, 9, 9, 0, tzinfo=UTC)
    assert business_minutes_between(start, datetime(2026, 3, 8, 23, 0, tzinfo=UTC), WEEKDAYS) == 0


def test_holiday_is_skipped():
    hours = WEEKDAYS | {"holidays": ["2026-12-25"]}
    start = datetime(2026, 12, 24, 16, 0, tzinfo=UTC)  # Thursday; Friday is a holiday
    assert add_business_minutes(start, 120, hours) == datetime(2026, 12, 28, 10, 0, tzinfo=UTC)
    assert business_minutes_between(start, datetime(2026, 12, 28, 10, 0, tzinfo=UTC), hours) == 120


def test_time_zone_of_the_queue_counts():
    start = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)  # 08:00 in Berlin (CET), before opening
    due = add_business_minutes(start, 60, WEEKDAYS, "Europe/Berlin")
    assert due == berlin(2026, 3, 2, 10, 0)
    ny = add_business_minutes(start, 60, WEEKDAYS, "America/New_York")  # 02:00 in New York
    assert ny == datetime(2026, 3, 2, 10, 0, tzinfo=ZoneInfo("America/New_York"))


def test_end_of_day_across_time_zones_and_weekend():
    start = berlin(2026, 3, 6, 16, 30)  # Friday 16:30 in Berlin
    assert add_business_minutes(start, 60, WEEKDAYS, "Europe/Berlin") == berlin(2026, 3, 9, 9, 30)


def test_dst_spring_forward_overnight_interval_is_an_hour_shorter():
    hours = {d: [["00:00", "06:00"]] for d in ("sat", "sun")}
    sat_midnight = berlin(2026, 3, 28, 0, 0)
    sun_midnight = berlin(2026, 3, 29, 0, 0)  # clocks go 02:00 -> 03:00
    assert business_minutes_between(sat_midnight, berlin(2026, 3, 28, 12, 0), hours, "Europe/Berlin") == 360
    assert business_minutes_between(sun_midnight, berlin(2026, 3, 29, 12, 0), hours, "Europe/Berlin") == 300
    # 4 real hours after Sunday 00:00 is 05:00 CEST
    assert add_business_minutes(sun_midnight, 240, hours, "Europe/Berlin") == berlin(2026, 3, 29, 5, 0)


def test_dst_fall_back_counts_the_extra_hour():
    hours = {"sun": [["00:00", "06:00"]]}
    start = berlin(2026, 10, 25, 0, 0)  # clocks go 03:00 -> 02:00
    assert business_minutes_between(start, berlin(2026, 10, 25, 12, 0), hours, "Europe/Berlin") == 420


def test_nine_to_five_across_dst_keeps_local_opening():
    start = datetime(2026, 3, 6, 16, 0, tzinfo=ZoneInfo("America/New_York"))  # Friday; DST starts Sunday
    due = add_business_minutes(start, 120, WEEKDAYS, "America/New_York")
    assert due == datetime(2026, 3, 9, 10, 0, tzinfo=ZoneInfo("America/New_York"))
    assert due.astimezone(UTC).hour == 14  # EDT (UTC-4), not EST


def test_overnight_hours_run_past_midnight():
    hours = {"mon": [["22:00", "06:00"]]}
    start = datetime(2026, 3, 2, 23, 0, tzinfo=UTC)  # Monday 23:00
    assert add_business_minutes(start, 180, hours) == datetime(2026, 3, 3, 2, 0, tzinfo=UTC)
    # Tuesday 05:00 is still in Monday's interval; the next opening is Monday next week
    assert add_business_minutes(datetime(2026, 3, 3, 5, 0, tzinfo=UTC), 120, hours) == \
        datetime(2026, 3, 9, 23, 0, tzinfo=UTC)


def test_overnight_interval_begun_before_a_holiday_still_runs():
    hours = {"mon": [["22:00", "06:00"]], "tue": [["22:00", "06:00"]], "holidays": ["2026-03-03"]}
    start = datetime(2026, 3, 3, 1, 0, tzinfo=UTC)  # Tuesday 01:00 (holiday) inside Monday's night
    assert add_business_minutes(start, 300, hours) == datetime(2026, 3, 3, 6, 0, tzinfo=UTC)
    # Tuesday night is closed: the next minute after 06:00 is Monday 9 March 22:00
    assert add_business_minutes(start, 301, hours) == datetime(2026, 3, 9, 22, 1, tzinfo=UTC)


def test_overlapping_intervals_are_not_counted_twice():
    hours = {"mon": [["22:00", "06:00"]], "tue": [["00:00", "08:00"]]}
    a = datetime(2026, 3, 2, 22, 0, tzinfo=UTC)
    assert business_minutes_between(a, datetime(2026, 3, 3, 12, 0, tzinfo=UTC), hours) == 600


def test_between_is_antisymmetric_and_matches_add():
    start = datetime(2026, 3, 5, 15, 17, tzinfo=UTC)
    for n in (1, 59, 480, 1000, 5000):
        due = add_business_minutes(start, n, WEEKDAYS, "Asia/Tokyo")
        assert business_minutes_between(start, due, WEEKDAYS, "Asia/Tokyo") == n
        assert business_minutes_between(due, start, WEEKDAYS, "Asia/Tokyo") == -n


def test_never_open_calendar_has_no_due_time():
    assert add_business_minutes(datetime(2026, 3, 2, tzinfo=UTC), 10, {"mon": []}) is None


def test_naive_times_are_utc():
    assert add_business_minutes(datetime(2026, 3, 2, 10, 0), 5, WEEKDAYS) == \
        datetime(2026, 3, 2, 10, 5, tzinfo=UTC)
