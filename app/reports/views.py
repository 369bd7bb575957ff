"""The live queue dashboard (`/dashboard`, refreshed every 5 s) and the reports (`/reports/`, with
CSV exports), for supervisors and admins."""
from __future__ import annotations

import csv
import io

from flask import Blueprint, make_response, request

from app.models._types import utcnow
from app.models.auth import Role
from app.reports import charts, dashboard as live
from app.reports.figures import (DIMENSION_LABELS, DIMENSIONS, PRESETS, PeriodError, breakdown, change,
                                 duration_words, parse_period, report)
from app.security import restrict_blueprint
from app.web import render, viewer_zone

bp = Blueprint("reports", __name__)
restrict_blueprint(bp, Role.SUPERVISOR)

#: The CSV exports: name -> file name stem.
EXPORTS = ("volume", "times", "sla", "backlog", "breakdown")


@bp.route("/dashboard")
def dashboard():
    """The Dashboard; `?queue=Q&agents=signed_in|available|at_capacity`: the agents table lists only the agents
    behind that figure of that queue (people, not conversations; each links to their conversations)."""
    now = utcnow()
    board = live.dashboard(now, viewer_zone())
    queue_id, which = request.args.get("queue", type=int), request.args.get("agents", "")
    shown = None
    queue = next((q for q in board.queues if q.id == queue_id), None)
    if which in live.AGENT_LISTS and queue is not None:
        shown = {"queue": queue, "which": which, "label": live.AGENT_LISTS[which],
                 "agents": live.agents_of(board, queue_id, which)}
    return render("reports/dashboard.html", block="live", board=board, waited=live.waited, shown=shown,
                  agents=shown["agents"] if shown else board.agents)


def _minutes(seconds):
    return None if seconds is None else round(seconds / 60, 1)


def _percent(value):
    return "" if value is None else f"{value:g} %"


def _points(now, before):
    """The change of a share in percentage points ("+4.5 pts"): a relative change of a percentage misleads."""
    if now is None or before is None:
        return ""
    diff = round(now - before, 1)
    return f"+{diff:g} pts" if diff > 0 else (f"−{-diff:g} pts" if diff < 0 else "0 pts")


def _hours(seconds):
    return None if seconds is None else round(seconds / 3600, 2)


def _args():
    period = parse_period(request.args.get("start"), request.args.get("end"), request.args.get("days"))
    by = request.args.get("by", "queue")
    if by not in DIMENSIONS:
        raise PeriodError("Choose a breakdown: queue, agent, address, intent or tag.")
    return period, by


@bp.route("/reports/")
def index():
    try:
        period, by = _args()
    except PeriodError as exc:
        return render("reports/index.html", error=str(exc), presets=PRESETS, dimensions=DIMENSION_LABELS,
                      args=request.args, status=422)
    current, previous = report(period, by), report(period.previous(), days=False)
    labels = [d.day for d in current.days]
    volume_chart = charts.line_chart("chart-volume", "Volume per day: received, replied, resolved", labels, [
        charts.Series("Received", [d.received for d in current.days]),
        charts.Series("Replied", [d.replied for d in current.days]),
        charts.Series("Resolved", [d.resolved for d in current.days])])
    first_chart = charts.line_chart("chart-first-response", "First response time per day (minutes)", labels, [
        charts.Series("Median", [_minutes(d.first_response_median) for d in current.days]),
        charts.Series("90th percentile", [_minutes(d.first_response_p90) for d in current.days])])
    resolution_chart = charts.line_chart("chart-resolution", "Resolution time per day (hours)", labels, [
        charts.Series("Median", [_hours(d.resolution_median) for d in current.days]),
        charts.Series("90th percentile", [_hours(d.resolution_p90) for d in current.days])])
    sla_chart = charts.line_chart("chart-sla", "SLA attainment per day (% met, by day received)", labels, [
        charts.Series("First response met", [d.first_attainment for d in current.days]),
        charts.Series("Resolution met", [d.resolution_attainment for d in current.days])])
    backlog_chart = charts.line_chart("chart-backlog", "Backlog at the end of each day", labels, [
        charts.Series("Backlog", [d.backlog for d in current.days])])
    query = {k: v for k, v in request.args.items() if k in ("start", "end", "days", "by")}
    return render("reports/index.html", period=period, current=current, previous=previous, by=by,
                  groups=current.groups, presets=PRESETS, dimensions=DIMENSION_LABELS, args=request.args,
                  volume_chart=volume_chart, first_chart=first_chart, resolution_chart=resolution_chart,
                  sla_chart=sla_chart, backlog_chart=backlog_chart, change=change, words=duration_words, minutes=_minutes,
                  hours=_hours, pct=_percent, points=_points, query=query, exports=EXPORTS)


#: The SLA attainment columns of a CSV (of the conversations received that day, or in the group).
SLA_HEADER = ("first_response_measured", "first_response_met", "first_response_met_percent",
              "resolution_measured", "resolution_met", "resolution_met_percent")


def _sla_cells(row) -> list:
    return [row.first_measured, row.first_met, row.first_attainment,
            row.resolution_measured, row.resolution_met, row.resolution_attainment]


def _csv(rows: list[list], name: str):
    out = io.StringIO()
    writer = csv.writer(out)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    response = make_response(out.getvalue())
    response.headers["Content-Type"] = "text/csv; charset=utf-8"
    response.headers["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    return response


@bp.route("/reports/<name>.csv")
def export(name: str):
    if name not in EXPORTS:
        return make_response("No such report.", 404)
    try:
        period, by = _args()
    except PeriodError as exc:
        return make_response(str(exc), 422)
    stem = f"{name}-{period.start.isoformat()}-{period.end.isoformat()}"
    if name == "breakdown":
        rows = [[DIMENSION_LABELS[by], "received", "replied", "resolved", "first_response_median_minutes",
                 "first_response_p90_minutes", "resolution_median_hours", "resolution_p90_hours",
                 *SLA_HEADER]]
        rows += [[g.label, g.received, g.replied, g.resolved, _minutes(g.first_response_median),
                  _minutes(g.first_response_p90), _hours(g.resolution_median), _hours(g.resolution_p90),
                  *_sla_cells(g)] for g in breakdown(period, by)]
        return _csv(rows, f"{stem}-by-{by}")
    days = report(period).days
    if name == "volume":
        rows = [["day", "received", "replied", "resolved"]] + [[d.day, d.received, d.replied, d.resolved]
                                                              for d in days]
    elif name == "times":
        rows = [["day", "first_response_median_minutes", "first_response_p90_minutes", "resolution_median_hours",
                 "resolution_p90_hours"]]
        rows += [[d.day, _minutes(d.first_response_median), _minutes(d.first_response_p90),
                  _hours(d.resolution_median), _hours(d.resolution_p90)] for d in days]
    elif name == "sla":
        rows = [["day", *SLA_HEADER]] + [[d.day, *_sla_cells(d)] for d in days]
    else:
        rows = [["day", "backlog"]] + [[d.day, d.backlog] for d in days]
    return _csv(rows, stem)
