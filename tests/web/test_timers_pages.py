"""Flows › Queue › Timers (docs/escalation.md): timed rules and alerts saved in the page; their notices on the
Notifications page."""
from __future__ import annotations

from sqlalchemy import select

from app.models.escalation import QueueAlert, QueueTimer
from app.models.notifications import Notification
from tests.factories import make_queue, make_response, make_user
from tests.helpers import csrf_token


def test_an_admin_saves_a_timed_rule_and_bad_input_comes_back_with_422(client, db, login_as):
    login_as("admin")
    queue = make_queue("Support")
    nudge = make_response("Still there?")
    page = client.get(f"/flows/queues/{queue.id}/timers")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for name in ("Agent Inactivity", "Customer Idle", "Due Reminder for Auto Expiry", "Auto Expire", "On Close"):
        assert f"Save {name}" in html
    assert 'for="customer_idle-minutes"' in html and "{{ elapsed_time }}" in html
    token = csrf_token(client, f"/flows/queues/{queue.id}/timers")

    bad = client.post(f"/flows/queues/{queue.id}/timers", data={
        "csrf_token": token, "kind": "customer_idle", "enabled": "y", "minutes": "soon", "message": "Kept text"})
    assert bad.status_code == 422
    assert "whole number of minutes" in bad.get_data(as_text=True) and "Kept text" in bad.get_data(as_text=True)
    assert db.session.scalar(select(QueueTimer)) is None

    ok = client.post(f"/flows/queues/{queue.id}/timers", data={
        "csrf_token": token, "kind": "customer_idle", "enabled": "y", "minutes": "1440",
        "response_id": str(nudge.id), "message": ""})
    assert ok.status_code == 303
    rule = db.session.scalar(select(QueueTimer))
    assert (rule.kind, rule.enabled, rule.minutes, rule.response_id) == ("customer_idle", True, 1440, nudge.id)

    fragment = client.post(f"/flows/queues/{queue.id}/timers", headers={"HX-Request": "true", "X-CSRFToken": token},
                           data={"kind": "agent_inactivity", "minutes": "-5"})
    assert fragment.status_code == 422 and "<html" not in fragment.get_data(as_text=True)


def test_an_admin_adds_and_deletes_an_alert(client, db, login_as):
    login_as("admin")
    queue = make_queue("Support")
    token = csrf_token(client, f"/flows/queues/{queue.id}/timers")
    bad = client.post(f"/flows/queues/{queue.id}/alerts", data={
        "csrf_token": token, "metric": "backlog", "threshold": "10", "target_minutes": "60", "window_minutes": "60",
        "emails": "lead at example"})
    assert bad.status_code == 422 and "is not an email address" in bad.get_data(as_text=True)
    ok = client.post(f"/flows/queues/{queue.id}/alerts", data={
        "csrf_token": token, "metric": "service_level", "threshold": "80", "target_minutes": "30",
        "window_minutes": "120", "emails": "lead@example.com, ops@example.com"})
    assert ok.status_code == 303
    rule = db.session.scalar(select(QueueAlert))
    assert (rule.metric, rule.threshold, rule.emails) == ("service_level", 80, "lead@example.com\nops@example.com")
    assert "Response Service Level" in client.get(f"/flows/queues/{queue.id}/timers").get_data(as_text=True)
    assert client.post(f"/flows/queues/{queue.id}/alerts/{rule.id}/delete", data={"csrf_token": token}).status_code == 303
    assert db.session.scalar(select(QueueAlert)) is None


def test_agents_cannot_open_the_timers_page(client, db, login_as):
    login_as("agent")
    queue = make_queue("Support")
    assert client.get(f"/flows/queues/{queue.id}/timers").status_code in (403, 404)


def test_timer_and_alert_notices_are_notifications_of_their_own_user_only(client, db, login_as):
    from tests.factories import make_conversation

    agent = login_as("agent")
    other = make_user("agent")
    queue = make_queue("Support", members=[agent])
    conversation = make_conversation(queue=queue, assignee=agent)
    db.session.add(Notification(user_id=agent.id, conversation_id=conversation.id, kind="timer",
                                text="Taken back after 30 minutes"))
    db.session.add(Notification(user_id=agent.id, kind="alert", text="Alert: Backlog of Support is 12"))
    db.session.add(Notification(user_id=other.id, kind="timer", text="Not yours"))
    db.session.commit()
    page = client.get("/inbox/").get_data(as_text=True)
    assert "/notices" not in page and 'id="notifications-link"' in page  # no banner: one badge, one page
    badge = client.get("/notifications/badge", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert 'aria-label="2 unread"' in badge
    html = client.get("/notifications").get_data(as_text=True)
    assert "Taken back after 30 minutes" in html and "Alert: Backlog of Support is 12" in html
    assert "Not yours" not in html and '<span class="notification-kind kind-alert">Alert</span>' in html
    alert = db.session.scalar(select(Notification).where(Notification.kind == "alert"))
    theirs = db.session.scalar(select(Notification).where(Notification.user_id == other.id))
    assert client.get(f"/notifications/{theirs.id}").status_code == 404
    opened = client.get(f"/notifications/{alert.id}")  # about no conversation: back to the list, read
    assert opened.status_code == 303 and opened.headers["Location"].endswith("/notifications")
    token = csrf_token(client, "/notifications")
    assert client.post("/notifications/read", data={"csrf_token": token}).status_code == 303
    badge = client.get("/notifications/badge", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "unread" not in badge
    db.session.expire_all()
    assert db.session.get(Notification, theirs.id).read_at is None

