"""Alert rules per queue (docs/escalation.md): once per breach, once on recovery, with two cron processes."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from app.flows.alerts import evaluate_alerts, measure, save_alert
from app.models.escalation import QueueAlert
from app.models.notifications import Notification
from app.models.inbox import Conversation
from tests.factories import make_conversation, make_message, make_queue, make_user
from tests.helpers import twice_in_parallel

NOW = datetime.now(timezone.utc).replace(microsecond=0)


def _twice_in_parallel(app, now):
    """Two cron processes at once."""
    return sorted(twice_in_parallel(app, lambda: evaluate_alerts(now)))


@pytest.fixture
def queue(app, db):
    return make_queue("Support")


def _waiting(queue, minutes_ago):
    conv = make_conversation(queue=queue, when=NOW - timedelta(minutes=minutes_ago))
    make_message(conv, when=NOW - timedelta(minutes=minutes_ago))
    return conv


def test_backlog_alert_fires_once_tells_supervisors_and_mails_then_recovers_once(app, db, queue, relay):
    sue = make_user("supervisor", name="Sue Supervisor")
    agent = make_user("agent")
    save_alert(queue.id, "backlog", 1, 60, 60, "lead@example.com\nops@example.com")
    db.session.commit()
    first, second = _waiting(queue, 10), _waiting(queue, 20)

    assert _twice_in_parallel(app, NOW) == [0, 1]
    assert evaluate_alerts(NOW) == 0  # still breached: not told again
    notices = list(db.session.scalars(select(Notification.text).where(Notification.user_id == sue.id)))
    assert notices == ["Alert: Support: Backlog is 2 conversations (the rule asks at most 1 conversations)."]
    assert db.session.scalar(select(Notification.id).where(Notification.user_id == agent.id)) is None
    assert len(relay.messages) == 1
    mail = relay.messages[0]
    assert sorted(mail["rcpt_tos"]) == ["lead@example.com", "ops@example.com"]
    assert b"Alert: Backlog of Support" in mail["data"]

    make_message(db.session.get(Conversation, first.id), direction="out", text="Done", author=agent,
                 when=NOW + timedelta(minutes=1))
    assert _twice_in_parallel(app, NOW + timedelta(minutes=2)) == [0, 1]
    assert len(relay.messages) == 2 and b"Recovered: Backlog of Support" in relay.messages[1]["data"]
    assert db.session.scalar(select(QueueAlert.in_breach)) is False
    assert len(list(db.session.scalars(select(Notification).where(Notification.user_id == sue.id)))) == 2
    assert second.id


def test_service_level_asa_and_oldest_waiting_are_measured(app, db, queue):
    agent = make_user("agent")
    fast = _waiting(queue, 50)
    make_message(fast, direction="out", author=agent, text="ok", when=NOW - timedelta(minutes=45))  # 5 min
    slow = _waiting(queue, 40)
    make_message(slow, direction="out", author=agent, text="ok", when=NOW - timedelta(minutes=15))  # 25 min
    _waiting(queue, 30)   # unanswered, older than the 10-minute target: a miss
    _waiting(queue, 5)    # unanswered, younger than the target: not counted yet
    sl = save_alert(queue.id, "service_level", 80, 10, 60, "")
    asa = save_alert(queue.id, "asa", 10, 10, 60, "")
    oldest = save_alert(queue.id, "oldest_waiting", 20, 10, 60, "")
    db.session.commit()
    assert measure(sl, NOW) == pytest.approx(33.3)
    assert measure(asa, NOW) == 15.0
    assert measure(oldest, NOW) == 30.0
    assert evaluate_alerts(NOW) == 3
    texts = [n for n in db.session.scalars(select(Notification.text))]
    assert texts == []  # nobody to tell in the app: no supervisor or admin exists
    assert all(db.session.scalars(select(QueueAlert.in_breach)))
