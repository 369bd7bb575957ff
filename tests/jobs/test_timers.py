"""Timed rules per queue (docs/escalation.md): each step once per episode, even with two cron processes."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from app.flows.timers import run_due_timers, save_timer
from app.runtime.outbound import deliver_message
from app.models.escalation import TimerStep
from app.models.notifications import Notification
from app.models.inbox import Conversation, Message
from app.models.organize import ConversationEvent
from tests.factories import make_message, make_queue, make_response, make_sending_address, make_sending_conversation, make_user
from tests.helpers import twice_in_parallel

NOW = datetime.now(timezone.utc).replace(microsecond=0)


def _twice_in_parallel(app, now):
    """Two cron processes at once."""
    return twice_in_parallel(app, lambda: run_due_timers(now))


@pytest.fixture
def setup(app, db):
    alex = make_user("agent", email="alex@example.test", name="Alex Agent")
    bea = make_user("agent", email="bea@example.test", name="Bea Agent")
    queue = make_queue("Support", members=[alex, bea])
    address = make_sending_address()
    conv = make_sending_conversation(address, name="Carol Customer")
    conv.queue_id = queue.id
    for message in db.session.scalars(select(Message).where(Message.conversation_id == conv.id)):
        message.created_at = NOW - timedelta(hours=30)  # the customer's first message, long ago
    db.session.commit()
    return {"alex": alex, "bea": bea, "queue": queue, "address": address, "conv": conv}


def _events(db, cid):
    return list(db.session.scalars(select(ConversationEvent.text).where(
        ConversationEvent.conversation_id == cid, ConversationEvent.kind == "timer")))


def test_agent_inactivity_returns_the_conversation_to_the_queue_once_and_routes_it_again(app, db, setup):
    conv, alex, bea = setup["conv"], setup["alex"], setup["bea"]
    conv.assignee_id = alex.id
    conv.assigned_at = NOW - timedelta(hours=2)
    db.session.commit()
    make_message(conv, direction="in", text="Any news?", when=NOW - timedelta(minutes=45))
    save_timer(setup["queue"].id, "agent_inactivity", True, 30, "Taken from {{ agent_name }} after {{ elapsed_time }}", None)
    db.session.commit()

    results = _twice_in_parallel(app, NOW)

    assert sorted(r["agent_inactivity"] for r in results) == [0, 1]
    db.session.expire_all()
    conv = db.session.get(Conversation, conv.id)
    assert conv.assignee_id == bea.id  # routed again, never to the inactive agent
    notices = list(db.session.scalars(select(Notification.text).where(Notification.user_id == alex.id)))
    assert notices == ["Taken from Alex Agent after 45 minutes"]
    lines = _events(db, conv.id)
    assert len(lines) == 1 and "Agent Inactivity" in lines[0] and "Bea Agent" in lines[0]

    # Same episode: nothing more, even though Bea has not answered either.
    assert run_due_timers(NOW + timedelta(hours=1))["agent_inactivity"] == 0
    # A new customer message starts a new episode.
    make_message(conv, direction="in", text="Hello?", when=NOW + timedelta(minutes=1))
    assert run_due_timers(NOW + timedelta(hours=1))["agent_inactivity"] == 1
    db.session.expire_all()
    assert db.session.get(Conversation, conv.id).assignee_id == alex.id


def test_agent_inactivity_waits_while_the_agent_has_answered(app, db, setup):
    conv = setup["conv"]
    conv.assignee_id = setup["alex"].id
    db.session.commit()
    make_message(conv, direction="out", text="On its way", author=setup["alex"], when=NOW - timedelta(minutes=1))
    save_timer(setup["queue"].id, "agent_inactivity", True, 1, "", None)
    db.session.commit()
    assert run_due_timers(NOW)["agent_inactivity"] == 0
    assert db.session.get(Conversation, conv.id).assignee_id == setup["alex"].id


def test_customer_idle_sends_the_standard_response_then_auto_expire_resolves_once(app, db, setup, relay):
    conv, alex, queue = setup["conv"], setup["alex"], setup["queue"]
    conv.assignee_id = alex.id
    db.session.commit()
    make_message(conv, direction="out", text="Can you send the order number?", author=alex,
                 when=NOW - timedelta(hours=25))
    nudge = make_response("Still there?", body="Hello {{ customer_name }}, still there after {{ elapsed_time }}?")
    save_timer(queue.id, "customer_idle", True, 24 * 60, "", nudge.id)
    save_timer(queue.id, "expiry_reminder", True, 60, "Expires in {{ time_left_to_expiry }}", None)
    save_timer(queue.id, "auto_expire", True, 48 * 60, "Closing now, {{ customer_name }}.", None)
    db.session.commit()

    results = _twice_in_parallel(app, NOW)
    assert sorted(r["customer_idle"] for r in results) == [0, 1]
    sent = list(db.session.scalars(select(Message).where(Message.conversation_id == conv.id,
                                                          Message.automatic == "customer_idle")))
    assert len(sent) == 1
    assert "Hello Carol Customer, still there after 1 day 1 hour?" in sent[0].html
    assert sent[0].to_addrs.lower().endswith(conv.contact.email)
    assert deliver_message(sent[0].id)["sent"] == 1  # through the platform relay, a real SMTP server
    assert len(relay.messages) == 1 and relay.messages[0]["rcpt_tos"] == [conv.contact.email]
    assert b"still there after 1 day 1 hour?" in relay.messages[0]["data"]
    assert b"Auto-Submitted: auto-replied" in relay.messages[0]["data"]

    # An hour before the expiry, the agent is reminded, once.
    results = _twice_in_parallel(app, NOW + timedelta(hours=47, minutes=30))
    assert sorted(r["expiry_reminder"] for r in results) == [0, 1]
    assert list(db.session.scalars(select(Notification.text).where(Notification.user_id == alex.id))) == [
        "Expires in 30 minutes"]

    results = _twice_in_parallel(app, NOW + timedelta(hours=48, minutes=1))
    assert sorted(r["auto_expire"] for r in results) == [0, 1]
    assert sum(r["on_close"] for r in results) == 0
    db.session.expire_all()
    assert db.session.get(Conversation, conv.id).status == "resolved"
    closing = list(db.session.scalars(select(Message.html).where(Message.conversation_id == conv.id,
                                                                 Message.automatic == "auto_expire")))
    assert len(closing) == 1 and "Closing now, Carol Customer." in closing[0]
    kinds = [line.split(":")[0] for line in _events(db, conv.id)]
    assert kinds == ["Customer Idle", "Due Reminder for Auto Expiry", "Auto Expire"]


def test_a_customer_answer_stops_auto_expire(app, db, setup):
    conv, alex, queue = setup["conv"], setup["alex"], setup["queue"]
    make_message(conv, direction="out", text="Order number?", author=alex, when=NOW - timedelta(hours=2))
    save_timer(queue.id, "customer_idle", True, 60, "", None)
    save_timer(queue.id, "auto_expire", True, 60, "", None)
    db.session.commit()
    assert run_due_timers(NOW)["customer_idle"] == 1
    make_message(conv, direction="in", text="It is 1234", when=NOW + timedelta(minutes=5))
    assert run_due_timers(NOW + timedelta(hours=3))["auto_expire"] == 0
    assert db.session.get(Conversation, conv.id).status == "open"


def test_on_close_sends_its_message_once_per_resolution(app, db, setup):
    conv, queue = setup["conv"], setup["queue"]
    save_timer(queue.id, "on_close", True, 0, "Thanks, {{ customer_name }}!", None)
    db.session.commit()
    resolved_at = datetime.now(timezone.utc) + timedelta(seconds=1)
    conv.status, conv.status_at = "resolved", resolved_at
    db.session.commit()
    results = _twice_in_parallel(app, resolved_at + timedelta(minutes=1))
    assert sorted(r["on_close"] for r in results) == [0, 1]
    assert db.session.scalar(select(func.count()).select_from(Message).where(
        Message.conversation_id == conv.id, Message.automatic == "on_close")) == 1
    assert db.session.scalar(select(func.count()).select_from(TimerStep)) == 1


def test_cron_queues_one_timers_job_and_one_alerts_job_whatever_the_number_of_ticks(app, db, setup):
    from app.cron import enqueue_escalations
    from app.queues import get_queue
    from jobs import use_app
    from jobs.escalation import run_timers

    enqueue_escalations()
    enqueue_escalations()  # a second cron process
    assert sorted(get_queue("flows").job_ids) == ["escalation-alerts", "escalation-timers"]

    conv = setup["conv"]
    conv.assignee_id = setup["alex"].id
    db.session.commit()
    save_timer(setup["queue"].id, "agent_inactivity", True, 1, "", None)
    db.session.commit()
    use_app(app)
    assert run_timers()["agent_inactivity"] == 1
    db.session.expire_all()
    assert db.session.get(Conversation, conv.id).assignee_id == setup["bea"].id


def test_on_close_leaves_conversations_resolved_before_the_rule_was_saved(app, db, setup):
    conv = setup["conv"]
    conv.status, conv.status_at = "resolved", datetime.now(timezone.utc) - timedelta(minutes=5)
    db.session.commit()
    save_timer(setup["queue"].id, "on_close", True, 0, "", None)
    db.session.commit()
    assert run_due_timers(datetime.now(timezone.utc) + timedelta(minutes=1))["on_close"] == 0
    assert db.session.scalar(select(func.count()).select_from(TimerStep)) == 0


def test_disabled_rules_do_nothing(app, db, setup):
    conv = setup["conv"]
    conv.assignee_id = setup["alex"].id
    db.session.commit()
    save_timer(setup["queue"].id, "agent_inactivity", False, 1, "", None)
    db.session.commit()
    assert run_due_timers(NOW + timedelta(days=1))["agent_inactivity"] == 0
    assert db.session.get(Conversation, conv.id).assignee_id == setup["alex"].id


def test_two_cron_processes_and_two_workers_take_the_conversation_back_once(app, db, setup, tmp_path):
    """Real processes: two `flask cron --once` at the same moment, then two `flask worker flows --burst`."""
    import subprocess

    from tests.subprocess_env import flask_cmd, flask_env

    conv = setup["conv"]
    conv.assignee_id = setup["alex"].id
    db.session.commit()
    make_message(conv, direction="in", text="Hello?", when=datetime.now(timezone.utc) - timedelta(minutes=10))
    save_timer(setup["queue"].id, "agent_inactivity", True, 5, "", None)
    db.session.commit()
    env = flask_env(app, tmp_path)
    for command in (("cron", "--once"), ("worker", "flows", "--burst", "--simple", "--without-scheduler")):
        runs = [subprocess.Popen(flask_cmd(*command), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True) for _ in range(2)]
        for run in runs:
            out, err = run.communicate(timeout=120)
            assert run.returncode == 0, err
    db.session.expire_all()
    assert db.session.get(Conversation, conv.id).assignee_id == setup["bea"].id
    assert len(_events(db, conv.id)) == 1
    assert db.session.scalar(select(func.count()).select_from(Notification)) == 1
