"""Reports and the Dashboard in the browser: the SVG charts (SLA attainment too) render under the CSP with no console error, each
chart's table matches the figures of the seeded history, and the Dashboard refreshes itself."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from playwright.sync_api import expect

from tests.e2e.test_workspace_browser import sign_in
from tests.factories import make_user
from tests.reports_seed import seed_history, sla_expected

pytestmark = pytest.mark.browser

START = date(2026, 3, 2)


def test_charts_render_and_the_tables_match_the_seed(page, unique_ids, db):
    seeded = seed_history(START, 7)
    make_user("supervisor", email="sam@example.test", name="Sam Supervisor")
    sign_in(page, "sam@example.test")
    page.goto(f"/reports/?start={START.isoformat()}&end={(START + timedelta(days=6)).isoformat()}")
    charts = page.locator("svg.chart")
    expect(charts).to_have_count(5)
    for chart in charts.all():
        assert chart.bounding_box()["width"] > 200  # drawn, with the stylesheet's size
        assert chart.locator("title").first.text_content()
    expect(page.locator("#chart-volume polyline")).to_have_count(3)
    # SLA attainment: two lines (first response, resolution) and, per day, the Billing policy's judgements
    expect(page.locator("#chart-sla polyline")).to_have_count(2)
    sla_rows = page.locator("#sla-table tbody tr")
    expect(sla_rows).to_have_count(7)
    for i in range(7):
        day = START + timedelta(days=i)
        expected = sla_expected([s for s in seeded if s.created.date() == day])
        cells = sla_rows.nth(i).locator("th, td").all_text_contents()
        assert (int(cells[1]), int(cells[2])) == (expected["first_response_met"], expected["first_response_measured"])
    rows = page.locator("#volume-table tbody tr")
    expect(rows).to_have_count(7)
    for i in range(7):
        day = START + timedelta(days=i)
        cells = rows.nth(i).locator("th, td").all_text_contents()
        received = sum(1 for s in seeded if s.created.date() == day)
        resolved = sum(1 for s in seeded if s.resolved and s.resolved.date() == day)
        assert cells[0] == day.isoformat() and int(cells[1]) == received and int(cells[3]) == resolved
    # the times table has a first response median on each day a conversation was first replied to
    times = page.locator("#times-table tbody tr")
    expect(times).to_have_count(7)
    for i in range(7):
        day = START + timedelta(days=i)
        cells = times.nth(i).locator("th, td").all_text_contents()
        assert bool(cells[1].strip()) == any(s.replied and s.replied.date() == day for s in seeded), (day, cells)
    # the period picker keeps the breakdown and shows it
    page.get_by_label("Break down by").select_option("agent")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#report-breakdown")).to_have_text("By agent")
    assert page.js_errors == []


def test_the_dashboard_refreshes_itself(page, unique_ids, db):
    seed_history(date.today() - timedelta(days=1), 2, per_day=2)
    make_user("supervisor", email="sue@example.test", name="Sue Supervisor")
    sign_in(page, "sue@example.test")
    page.goto("/dashboard")
    expect(page.locator(".dash-card")).to_have_count(2)
    with page.expect_response(lambda r: r.url.endswith("/dashboard") and r.request.headers.get("hx-request") == "true",
                              timeout=12000):
        pass
    expect(page.locator(".dash-card")).to_have_count(2)
    assert page.js_errors == []
