"""Flows › Queue › Timers: the queue's timed rules (Kore's email statuses, with the service level's Due
Reminder and Overdue notices) and its alert rules, for admins.

Added to the Flows blueprint (admins only). Each rule is its own small form; a saved rule takes
effect at the next cron tick (`app.flows.timers`, `app.flows.alerts`). Bad input comes back with
status 422 and the typed values kept.
"""
from __future__ import annotations

from flask import abort, request, url_for
from sqlalchemy import select

from app.extensions import db
from app.flows import alerts, timers
from app.flows.views import bp
from app.models.auth import Queue
from app.models.escalation import ALERT_METRICS, DEFAULT_MESSAGES, SLA_KINDS, TIMER_KINDS, VARIABLES, QueueAlert
from app.models.responses import StandardResponse
from app.web import navigate, render

#: What each rule's duration means, for the page.
DURATION_HINTS = {
    "agent_inactivity": "Minutes without an agent reply after the customer's message",
    "customer_idle": "Minutes without a customer answer after the agent's reply",
    "expiry_reminder": "Minutes before Auto Expire",
    "auto_expire": "Minutes after the Customer Idle message",
    "on_close": "Not used: the message goes when the conversation is resolved",
    "sla_due_reminder": "Sent to the assigned agent, in the app, when a service-level due time is near "
                        "(the SLA policy's warning, else SLA_WARNING_MINUTES before it)",
    "sla_overdue": "Sent to the assigned agent, in the app, when a service-level due time has passed",
}
#: Rules without a duration of their own (the message goes at a moment set elsewhere).
NO_DURATION = ("on_close", "sla_due_reminder", "sla_overdue")
CUSTOMER_FACING = ("customer_idle", "auto_expire", "on_close")


def _queue_or_404(queue_id: int) -> Queue:
    queue = db.session.get(Queue, queue_id)
    if queue is None:
        abort(404)
    return queue


def _page(queue: Queue, errors: dict | None = None, typed: dict | None = None, status: int = 200):
    responses = list(db.session.scalars(select(StandardResponse).order_by(StandardResponse.title)))
    rules = list(db.session.scalars(select(QueueAlert).where(QueueAlert.queue_id == queue.id).order_by(QueueAlert.id)))
    return render("flows/timers.html", block="timers", status=status, queue=queue, rules=timers.timers_of(queue.id),
                  names=TIMER_KINDS, hints=DURATION_HINTS, customer_facing=CUSTOMER_FACING, no_duration=NO_DURATION,
                  sla_kinds=SLA_KINDS, responses=responses,
                  variables=VARIABLES, defaults=DEFAULT_MESSAGES, alert_rules=rules,
                  metrics=ALERT_METRICS, units=alerts.UNITS, errors=errors or {}, typed=typed or {})


def _int(name: str, errors: dict, key: str, label: str) -> int:
    raw = (request.form.get(name) or "").strip()
    try:
        return int(raw)
    except ValueError:
        errors[key] = f"{label}: enter a whole number of minutes."
        return 0


@bp.route("/flows/queues/<int:queue_id>/timers", methods=["GET", "POST"])
def queue_timers(queue_id: int):
    queue = _queue_or_404(queue_id)
    if request.method == "GET":
        return _page(queue)
    kind = request.form.get("kind", "")
    if kind not in TIMER_KINDS:
        abort(400)
    errors: dict = {}
    minutes = _int("minutes", errors, kind, "Duration")
    raw = request.form.get("response_id") or ""
    response_id = int(raw) if raw.isdigit() else None
    if raw and (response_id is None or db.session.get(StandardResponse, response_id) is None):
        errors[kind] = "Choose a Standard Response from the list."
    if not errors:
        try:
            timers.save_timer(queue.id, kind, request.form.get("enabled") == "y", minutes,
                              request.form.get("message", ""), response_id)
        except ValueError as exc:
            errors[kind] = str(exc)
    if errors:
        db.session.rollback()
        return _page(queue, errors, {kind: request.form}, status=422)
    db.session.commit()
    return navigate(url_for(".queue_timers", queue_id=queue.id), f"{TIMER_KINDS[kind]} saved.")


@bp.route("/flows/queues/<int:queue_id>/alerts", methods=["POST"])
def queue_alerts(queue_id: int):
    queue = _queue_or_404(queue_id)
    errors: dict = {}
    metric = request.form.get("metric", "")
    try:
        threshold = float((request.form.get("threshold") or "").strip())
    except ValueError:
        errors["alert"] = "Threshold: enter a number."
        threshold = 0
    target = _int("target_minutes", errors, "alert", "Answered within")
    window = _int("window_minutes", errors, "alert", "Window")
    if not errors:
        try:
            alerts.save_alert(queue.id, metric, threshold, target, window, request.form.get("emails", ""))
        except ValueError as exc:
            errors["alert"] = str(exc)
    if errors:
        db.session.rollback()
        return _page(queue, errors, {"alert": request.form}, status=422)
    db.session.commit()
    return navigate(url_for(".queue_timers", queue_id=queue.id), f"{ALERT_METRICS[metric]} alert saved.")


@bp.route("/flows/queues/<int:queue_id>/alerts/<int:alert_id>/delete", methods=["POST"])
def delete_queue_alert(queue_id: int, alert_id: int):
    queue = _queue_or_404(queue_id)
    rule = db.session.get(QueueAlert, alert_id)
    if rule is None or rule.queue_id != queue.id:
        abort(404)
    db.session.delete(rule)
    db.session.commit()
    return navigate(url_for(".queue_timers", queue_id=queue.id), "Alert deleted.")
