"""The service level's Due Reminder and Overdue notices as timed rules of the queue's Timers page (issue 17,
docs/sla.md): their messages edited in the page, variables filled by the cron sweep, and each one switched off."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from app.flows.sla_policies import add_policy
from app.models.escalation import QueueTimer
from app.models.notifications import Notification
from app.models.organize import ConversationEvent
from app.runtime import sla
from tests.factories import make_address, make_conversation, make_message, make_queue, make_user
from tests.helpers import csrf_token

UTC = timezone.utc
MONDAY = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def desk(db):
    queue = make_queue("Support")
    queue.time_zone, queue.business_hours = "UTC", None
    db.session.commit()
    address = make_address("help@mail.pigeonhole.test", queues=[queue])
    add_policy(queue.id, name="Standard", priority=None, tag=None, first_response_minutes=60,
               next_response_minutes=None, resolution_minutes=None, warning_minutes=15)
    agent = make_user("agent", name="Alex Agent")
    conversation = make_conversation(queue=queue, address=address, when=MONDAY, subject="Parcel",
                                     contact_name="Carol Customer")
    make_message(conversation, when=MONDAY)
    sla.customer_wrote(conversation, MONDAY)
    conversation.assignee_id = agent.id
    db.session.commit()
    return {"queue": queue, "agent": agent, "conversation": conversation, "due": conversation.first_response_due_at}


def _save(client, queue, token, kind, message, enabled=True):
    data = {"csrf_token": token, "kind": kind, "minutes": "0", "message": message}
    if enabled:
        data["enabled"] = "y"
    response = client.post(f"/flows/queues/{queue.id}/timers", data=data)
    assert response.status_code == 303, response.get_data(as_text=True)


def _notices(db, agent):
    return [(n.kind, n.text) for n in db.session.scalars(
        select(Notification).where(Notification.user_id == agent.id).order_by(Notification.id))]


def test_edited_due_reminder_and_overdue_messages_reach_the_agent_with_their_variables(client, db, desk, login_as):
    login_as("admin")
    queue, due = desk["queue"], desk["due"]
    page = client.get(f"/flows/queues/{queue.id}/timers").get_data(as_text=True)
    assert "Save Due Reminder</button>" in page and "Save Overdue</button>" in page
    assert 'for="sla_due_reminder-message"' in page and 'for="sla_overdue-enabled"' in page
    assert 'id="sla_overdue-enabled" name="enabled" value="y" checked' in page  # on by default
    assert "{{ target }} overdue: {{ subject }}" in page  # today's wording is the default
    token = csrf_token(client, f"/flows/queues/{queue.id}/timers")
    _save(client, queue, token, "sla_due_reminder",
          "Hurry, {{ agent_name }}: {{ target }} for {{ customer_name }} due in {{ time_left }} ({{ subject }})")
    _save(client, queue, token, "sla_overdue",
          "{{ target }} missed by {{ elapsed_time }}: {{ subject }} from {{ customer_name }} in {{ queue }}")

    assert sla.notify_due(due - timedelta(minutes=10)) == 1
    assert sla.notify_due(due + timedelta(minutes=3)) == 1
    assert sla.notify_due(due + timedelta(minutes=4)) == 0  # still once each
    assert _notices(db, desk["agent"]) == [
        ("at_risk", "Hurry, Alex Agent: First response for Carol Customer due in 10 min (Parcel)"),
        ("overdue", "First response missed by 3 minutes: Parcel from Carol Customer in Support"),
    ]
    events = db.session.scalars(select(ConversationEvent).where(ConversationEvent.kind == "sla")
                                .order_by(ConversationEvent.id)).all()
    assert [e.data["notice"] for e in events] == ["at_risk", "overdue"]


def test_switched_off_notices_send_nothing_and_are_not_sent_late(client, db, desk, login_as):
    login_as("admin")
    queue, due = desk["queue"], desk["due"]
    token = csrf_token(client, f"/flows/queues/{queue.id}/timers")
    _save(client, queue, token, "sla_due_reminder", "", enabled=False)
    _save(client, queue, token, "sla_overdue", "Late: {{ subject }}", enabled=False)
    assert {(r.kind, r.enabled) for r in db.session.scalars(select(QueueTimer))} == \
        {("sla_due_reminder", False), ("sla_overdue", False)}
    page = client.get(f"/flows/queues/{queue.id}/timers").get_data(as_text=True)
    assert 'id="sla_overdue-enabled" name="enabled" value="y">' in page

    assert sla.notify_due(due - timedelta(minutes=10)) == 0
    assert sla.notify_due(due + timedelta(minutes=1)) == 0
    assert _notices(db, desk["agent"]) == []
    assert db.session.scalars(select(ConversationEvent).where(ConversationEvent.kind == "sla")).all() == []
    db.session.expire_all()
    conversation = db.session.get(type(desk["conversation"]), desk["conversation"].id)
    assert conversation.first_response_breached_at == due  # the breach is recorded all the same
    # switched on again: the notices already due are not sent late
    _save(client, queue, token, "sla_overdue", "Late: {{ subject }}")
    assert sla.notify_due(due + timedelta(minutes=2)) == 0
    assert _notices(db, desk["agent"]) == []
