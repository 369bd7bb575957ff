"""The reports' figures against figures computed on their own from a seeded history; the period picker, the
comparison, the breakdowns, the CSV exports, and who may see them."""
from __future__ import annotations

import csv
import io
import math
import statistics
from datetime import date, timedelta

import pytest

from app.reports.figures import parse_period, PeriodError
from tests.reports_seed import seed_history, sla_expected

START = date(2026, 3, 2)  # the previous period: 2026-02-23 .. 2026-03-01
DAYS = 7


def p90(values):
    ordered = sorted(values)
    return ordered[math.ceil(0.9 * len(ordered)) - 1]


def in_days(when, first, last):
    return when is not None and first <= when.date() <= last


@pytest.fixture
def history(app, db):
    return seed_history(START - timedelta(days=DAYS), 2 * DAYS)


def csv_rows(response):
    assert response.status_code == 200 and response.mimetype == "text/csv"
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def period_args(**extra):
    return {"start": START.isoformat(), "end": (START + timedelta(days=DAYS - 1)).isoformat(), **extra}


def test_volume_times_and_backlog_match_the_seed(client, login_as, history):
    login_as("supervisor")
    last = START + timedelta(days=DAYS - 1)
    volume = {r["day"]: r for r in csv_rows(client.get("/reports/volume.csv", query_string=period_args()))}
    times = {r["day"]: r for r in csv_rows(client.get("/reports/times.csv", query_string=period_args()))}
    backlog = {r["day"]: r for r in csv_rows(client.get("/reports/backlog.csv", query_string=period_args()))}
    assert len(volume) == DAYS
    for i in range(DAYS):
        day = START + timedelta(days=i)
        key = day.isoformat()
        received = [s for s in history if s.created.date() == day]
        replied = [s for s in history if s.replied and s.replied.date() == day]
        resolved = [s for s in history if s.resolved and s.resolved.date() == day]
        assert (int(volume[key]["received"]), int(volume[key]["replied"]), int(volume[key]["resolved"])) == \
            (len(received), len(replied), len(resolved)), key
        first = [(s.replied - s.created).total_seconds() for s in replied]
        if first:
            assert float(times[key]["first_response_median_minutes"]) == round(statistics.median(first) / 60, 1)
            assert float(times[key]["first_response_p90_minutes"]) == round(p90(first) / 60, 1)
        else:
            assert times[key]["first_response_median_minutes"] == ""
        res = [(s.resolved - s.created).total_seconds() for s in resolved]
        if res:
            assert float(times[key]["resolution_median_hours"]) == round(statistics.median(res) / 3600, 2)
        end = day + timedelta(days=1)
        open_then = [s for s in history if s.created.date() < end and not (s.resolved and s.resolved.date() < end)]
        assert int(backlog[key]["backlog"]) == len(open_then), key
    assert last.isoformat() in volume


def test_the_page_shows_charts_tables_and_the_comparison(client, login_as, history):
    login_as("supervisor")
    page = client.get("/reports/", query_string=period_args())
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert html.count("<svg") == 5 and "<title id=\"chart-volume-title\">" in html
    now = [s for s in history if in_days(s.created, START, START + timedelta(days=DAYS - 1))]
    before = [s for s in history if in_days(s.created, START - timedelta(days=DAYS), START - timedelta(days=1))]
    assert f'<tr data-row="received"><th scope="row">Received</th><td>{len(now)}</td><td>{len(before)}</td>' in html


@pytest.mark.parametrize("by,label", [("queue", "queue"), ("agent", "agent"), ("address", "address")])
def test_breakdowns_match_the_seed(client, login_as, history, by, label):
    login_as("admin")
    rows = csv_rows(client.get("/reports/breakdown.csv", query_string=period_args(by=by)))
    first, last = START, START + timedelta(days=DAYS - 1)
    got = {r[next(iter(r))]: (int(r["received"]), int(r["resolved"])) for r in rows}
    expected = {}
    for s in history:
        key = {"queue": s.queue, "agent": s.agent or "Nobody", "address": s.address}[by]
        received, resolved = expected.get(key, (0, 0))
        expected[key] = (received + in_days(s.created, first, last), resolved + in_days(s.resolved, first, last))
    assert got == {k: v for k, v in expected.items() if v != (0, 0)}


def percent(met, measured):
    return "" if not measured else f"{round(met * 100 / measured, 1)}"


def test_sla_attainment_per_day_matches_the_seed(client, login_as, history):
    login_as("supervisor")
    rows = {r["day"]: r for r in csv_rows(client.get("/reports/sla.csv", query_string=period_args()))}
    assert len(rows) == DAYS
    measured_somewhere = 0
    for i in range(DAYS):
        day = START + timedelta(days=i)
        expected = sla_expected([s for s in history if s.created.date() == day])
        row = rows[day.isoformat()]
        assert {k: int(row[k]) for k in expected} == expected, day
        assert row["first_response_met_percent"] == percent(expected["first_response_met"],
                                                            expected["first_response_measured"])
        assert row["resolution_met_percent"] == percent(expected["resolution_met"], expected["resolution_measured"])
        measured_somewhere += expected["first_response_measured"]
    assert measured_somewhere  # the seed measures something
    page = client.get("/reports/", query_string=period_args()).get_data(as_text=True)
    assert '<svg class="chart" id="chart-sla"' in page and 'id="sla-table"' in page
    week = sla_expected([s for s in history if in_days(s.created, START, START + timedelta(days=DAYS - 1))])
    before = sla_expected([s for s in history if in_days(s.created, START - timedelta(days=DAYS), START - timedelta(days=1))])
    now_pct = float(percent(week["first_response_met"], week["first_response_measured"]))
    before_pct = float(percent(before["first_response_met"], before["first_response_measured"]))
    diff = round(now_pct - before_pct, 1)
    words = f"+{diff:g} pts" if diff > 0 else (f"−{-diff:g} pts" if diff < 0 else "0 pts")  # points, not a ratio
    assert (f'<tr data-row="first_attainment"><th scope="row">First response target met</th>'
            f'<td>{now_pct:g} %</td><td>{before_pct:g} %</td><td>{words}</td>') in page


def test_breakdown_by_tag_counts_a_conversation_under_each_tag(client, login_as, history):
    login_as("supervisor")
    first, last = START, START + timedelta(days=DAYS - 1)
    rows = csv_rows(client.get("/reports/breakdown.csv", query_string=period_args(by="tag")))
    got = {r["Tag"]: r for r in rows}
    expected = {}
    for s in history:
        for tag in s.tags or ("No tag",):
            expected.setdefault(tag, []).append(s)
    assert any(len(s.tags) == 2 for s in history)
    for tag, seeded in expected.items():
        received = sum(in_days(s.created, first, last) for s in seeded)
        resolved = sum(in_days(s.resolved, first, last) for s in seeded)
        if not received and not resolved:
            assert tag not in got
            continue
        assert (int(got[tag]["received"]), int(got[tag]["resolved"])) == (received, resolved), tag
        sla = sla_expected([s for s in seeded if in_days(s.created, first, last)])
        assert int(got[tag]["first_response_met"]) == sla["first_response_met"], tag
        assert int(got[tag]["resolution_measured"]) == sla["resolution_measured"], tag
    page = client.get("/reports/", query_string=period_args(by="tag")).get_data(as_text=True)
    assert 'id="tag-note"' in page and "counts once under each of its tags" in page
    # the period's totals still count each conversation once
    received = sum(in_days(s.created, first, last) for s in history)
    assert f'<tr data-row="received"><th scope="row">Received</th><td>{received}</td>' in page


def test_a_bad_period_says_why_and_agents_may_not_see_reports(client, login_as, app):
    login_as("supervisor")
    page = client.get("/reports/", query_string={"start": "2026-03-09", "end": "2026-03-01"})
    assert page.status_code == 422 and "The end date is before the start date." in page.get_data(as_text=True)
    assert client.get("/reports/volume.csv", query_string={"start": "junk"}).status_code == 422
    client.post("/logout")


def test_agents_get_403(client, login_as, app):
    login_as("agent")
    assert client.get("/reports/").status_code == 403
    assert client.get("/dashboard").status_code == 403


def test_parse_period_presets_and_previous():
    today = date(2026, 3, 10)
    period = parse_period(None, None, "7", today)
    assert (period.start, period.end) == (date(2026, 3, 4), today)
    assert (period.previous().start, period.previous().end) == (date(2026, 2, 25), date(2026, 3, 3))
    with pytest.raises(PeriodError):
        parse_period("2025-01-01", "2026-03-01", None, today)


def test_a_report_is_cached_and_computed_again_once_the_facts_change(client, login_as, history, app, db):
    from app.models.inbox import Conversation
    from app.models.reports import ConversationFacts
    from app.queues import redis_connection
    from app.runtime.tags import set_tags

    login_as("supervisor")
    first, last = START, START + timedelta(days=DAYS - 1)
    by_tag = csv_rows(client.get("/reports/breakdown.csv", query_string=period_args(by="tag")))
    by_queue = client.get("/reports/breakdown.csv", query_string=period_args(by="queue")).get_data(as_text=True)
    times = client.get("/reports/times.csv", query_string=period_args()).get_data(as_text=True)
    with app.app_context():
        assert redis_connection().keys("reports:report:*")  # kept under the facts' version
    # The same again comes from the cache, figure for figure (medians and percentiles included).
    assert client.get("/reports/times.csv", query_string=period_args()).get_data(as_text=True) == times
    assert client.get("/reports/breakdown.csv", query_string=period_args(by="queue")).get_data(as_text=True) == by_queue

    # Tags changed through their one writer (the old ones go in a bulk DELETE): the next report sees it.
    tagged = next(s for s in history if in_days(s.created, first, last) and s.tags)
    set_tags(db.session.get(Conversation, tagged.id), ["moved"])
    db.session.commit()
    before = {r["Tag"]: int(r["received"]) for r in by_tag}
    after = {r["Tag"]: int(r["received"]) for r in csv_rows(client.get("/reports/breakdown.csv",
                                                                       query_string=period_args(by="tag")))}
    assert after["moved"] == 1
    for tag in tagged.tags:
        assert after.get(tag, 0) == before[tag] - 1, tag

    # A fact row changed through the ORM (another queue): the breakdown by queue, seen since the last change,
    # moves it.
    by_queue = client.get("/reports/breakdown.csv", query_string=period_args(by="queue")).get_data(as_text=True)
    other = "Returns" if tagged.queue == "Billing" else "Billing"
    other_id = db.session.get(ConversationFacts, next(s.id for s in history if s.queue == other)).queue_id
    db.session.get(ConversationFacts, tagged.id).queue_id = other_id
    db.session.commit()
    counts = {r["Queue"]: int(r["received"]) for r in csv_rows(client.get("/reports/breakdown.csv",
                                                                           query_string=period_args(by="queue")))}
    old = {r["Queue"]: int(r["received"]) for r in csv.DictReader(io.StringIO(by_queue))}
    assert counts[other] == old[other] + 1 and counts.get(tagged.queue, 0) == old[tagged.queue] - 1


def test_the_facts_version_moves_on_once_per_commit_that_changed_them(app, db, history):
    from app.models.auth import Queue
    from app.models.reports import ConversationFacts
    from app.runtime import facts

    start = facts.version()
    row = db.session.get(ConversationFacts, history[0].id)
    row.intent = "rolled back"
    db.session.flush()
    db.session.rollback()
    assert facts.version() == start  # nothing committed
    db.session.get(Queue, db.session.get(ConversationFacts, history[0].id).queue_id).name = "Renamed"
    db.session.commit()
    assert facts.version() == start  # a name is read at each request, not cached
    for s in history[:3]:
        db.session.get(ConversationFacts, s.id).intent = "refund"
        db.session.flush()
    db.session.commit()
    assert facts.version() == start + 1


def test_the_edges_of_a_day_durations_and_the_no_tag_group(app, db):
    """Facts written as they stand: a reply at midnight belongs to the new day, a negative duration (clocks
    apart) counts as 0, a resolution without a duration counts and is not measured; by tag, a conversation with
    two tags counts under both, and "No tag" has exactly the untagged conversations' figures and durations."""
    from datetime import datetime, timezone

    from app.models.reports import ConversationFacts
    from app.reports.figures import Period, report
    from app.runtime.tags import set_tags
    from tests.factories import make_conversation

    day = date(2026, 5, 4)
    at = lambda hours: datetime.combine(day, datetime.min.time(), timezone.utc) + timedelta(hours=hours)  # noqa: E731
    # (tags, created, first response (seconds), resolved (seconds; None: resolved, not measured), first judged)
    plan = [(("x", "y"), 1, 600, 7200, False), (("x",), 2, 1200, None, True), ((), 3, -5, 3600, False),
            ((), 4, 20 * 3600, None, None), ((), 5, 1800, 86400, True)]
    for tags, created, first, resolved, breached in plan:
        conversation = make_conversation(when=at(created))
        if tags:
            set_tags(conversation, list(tags))
        replied = at(created) + timedelta(seconds=first)
        db.session.add(ConversationFacts(
            conversation_id=conversation.id, created_at=at(created), status="resolved", first_customer_message_at=at(created),
            first_response_at=replied, first_response_seconds=first, resolved_at=at(created + 2),
            resolution_seconds=resolved, first_response_breached=breached))
        db.session.commit()
    # the fourth: replied at 00:00:00 of the next day, exactly
    assert at(4) + timedelta(seconds=20 * 3600) == at(24)
    result = report(Period(day, day + timedelta(days=1)), "tag")
    first_day, next_day = result.days
    assert (first_day.received, first_day.replied, first_day.resolved) == (5, 4, 5)
    assert (next_day.received, next_day.replied, next_day.resolved) == (0, 1, 0)
    assert first_day.first_response_median == (600 + 1200) / 2 and first_day.first_response_p90 == 1800  # 0, 600, 1200, 1800
    assert (result.total.resolution_median, result.total.resolution_p90) == (7200, 86400)  # 3600, 7200, 86400
    assert (result.total.first_measured, result.total.first_met) == (4, 2)
    groups = {g.key: g for g in result.groups}
    assert set(groups) == {"x", "y", None}
    assert (groups["x"].received, groups["x"].replied, groups["x"].resolved) == (2, 2, 2)
    assert (groups["x"].first_response_median, groups["x"].resolution_median) == (900, 7200)
    assert (groups["x"].first_measured, groups["x"].first_met) == (2, 1)
    assert (groups["y"].received, groups["y"].first_response_p90) == (1, 600)
    untagged = groups[None]
    assert (untagged.received, untagged.replied, untagged.resolved) == (3, 3, 3)
    assert (untagged.first_response_median, untagged.first_response_p90) == (1800, 72000)  # 0, 1800, 72000
    assert (untagged.resolution_median, untagged.resolution_p90) == ((3600 + 86400) / 2, 86400)
    assert (untagged.first_measured, untagged.first_met) == (2, 1)
