"""Escalation jobs (queue `flows`): the queues' timed rules and alert rules, enqueued by cron.

Cron enqueues each under one fixed job id (`escalation-timers`, `escalation-alerts`), so several
cron processes queue one job at a time; the steps themselves are claimed in the database
(`app.flows.timers`, `app.flows.alerts`), so even two runs at once take each step once.
"""
from app.flows.alerts import evaluate_alerts
from app.flows.timers import run_due_timers
from jobs import app_context


def run_timers() -> dict[str, int]:
    """Every due step of the timed rules (`app.flows.timers.run_due_timers`); owns its transactions."""
    with app_context():
        return run_due_timers()


def run_alerts() -> int:
    """Every enabled alert rule measured; breaches and recoveries told once (`app.flows.alerts`)."""
    with app_context():
        return evaluate_alerts()
