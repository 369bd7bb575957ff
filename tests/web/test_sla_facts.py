"""The SLA's judgements in the reports' facts: `first_response_breached`, `next_response_breached` and
`resolution_breached` are written as things happen (None: no policy measured it, False: met, True:
breached), through ingest, the composer, the cron's sweep and the status; and the backfill judges a
conversation's history the same way."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from app.inbox import actions
from app.models.inbox import Conversation, Draft
from app.models.reports import ConversationFacts
from app.models.sla import SlaPolicy
from app.runtime import sla
from app.runtime.backfill import backfill
from app.runtime.sla_clock import add_business_minutes
from tests.factories import make_conversation, make_message, make_queue, make_user
from tests.helpers import csrf_token
from tests.web.test_sla import WEEKDAYS, _mail, desk  # noqa: F401 - the fixture

UTC = timezone.utc
MONDAY = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # 10:00 in Berlin; first response due 11:00 Berlin


def judged(db, cid) -> tuple:
    db.session.expire_all()
    row = db.session.get(ConversationFacts, cid)
    return (row.first_response_breached, row.next_response_breached, row.resolution_breached)


def _customer(conversation, at):
    make_message(conversation, when=at)
    sla.customer_wrote(conversation, at)


def _agent(conversation, agent, at):
    make_message(conversation, direction="out", author=agent, when=at)
    sla.agent_replied(conversation, at)


def _resolve(conversation, at):
    conversation.status, conversation.status_at = "resolved", at
    sla.status_changed(conversation, at)


def _history(db, desk) -> dict:
    """Three conversations with known judgements (the times in UTC; Berlin is UTC+1 in March)."""
    agent = make_user("agent", name="Alex Agent")
    # met, breached, met: reply after 30 min (due 60), the next one after 3.5 h (due 2 h), resolved the same day
    good = make_conversation(queue=desk["queue"], address=desk["address"], when=MONDAY)
    _customer(good, MONDAY)
    _agent(good, agent, MONDAY + timedelta(minutes=30))
    _customer(good, MONDAY + timedelta(hours=2))
    _agent(good, agent, MONDAY + timedelta(hours=5, minutes=30))
    _customer(good, MONDAY + timedelta(hours=6))
    _agent(good, agent, MONDAY + timedelta(hours=6, minutes=10))  # a second cycle met: the breach stands
    _resolve(good, MONDAY + timedelta(hours=6, minutes=20))
    db.session.commit()
    # the cron's sweep finds the first response overdue before anyone answers; resolution still running
    late = make_conversation(queue=desk["queue"], address=desk["address"], when=MONDAY)
    _customer(late, MONDAY)
    late.assignee_id = agent.id
    db.session.commit()
    assert sla.notify_due(MONDAY + timedelta(minutes=61)) >= 1
    late = db.session.get(Conversation, late.id)
    _agent(late, agent, MONDAY + timedelta(minutes=90))
    db.session.commit()
    # a queue without a policy: nothing measured
    other = make_queue("Returns")
    free = make_conversation(queue=other, address=desk["address"], when=MONDAY)
    _customer(free, MONDAY)
    _agent(free, agent, MONDAY + timedelta(days=3))
    _resolve(free, MONDAY + timedelta(days=4))
    db.session.commit()
    return {"good": good.id, "late": late.id, "free": free.id}


def test_replies_the_sweep_and_resolving_write_the_judgements(db, desk):
    ids = _history(db, desk)
    assert judged(db, ids["good"]) == (False, True, False)
    assert judged(db, ids["late"]) == (True, None, None)  # resolution: due Tuesday, not yet judged
    assert db.session.get(ConversationFacts, ids["free"]) is None or judged(db, ids["free"]) == (None, None, None)
    # resolving the late one after its resolution was due (Tuesday 09:00 UTC): breached
    late = db.session.get(Conversation, ids["late"])
    _resolve(late, MONDAY + timedelta(days=1, hours=1))
    db.session.commit()
    assert judged(db, ids["late"]) == (True, None, True)


def test_the_backfill_judges_the_history_as_the_live_code_did(db, desk):
    ids = _history(db, desk)
    late = db.session.get(Conversation, ids["late"])
    _resolve(late, MONDAY + timedelta(days=1, hours=1))
    db.session.commit()
    live = {cid: judged(db, cid) if db.session.get(ConversationFacts, cid) else (None, None, None)
            for cid in ids.values()}
    db.session.execute(ConversationFacts.__table__.delete())
    # the live records of breaches are not what the backfill reads: it judges the messages
    db.session.execute(Conversation.__table__.update().values(first_response_breached_at=None,
                                                             next_response_breached_at=None,
                                                             resolution_breached_at=None))
    db.session.commit()
    assert backfill(now=MONDAY + timedelta(days=5)) == 3
    assert {cid: judged(db, cid) for cid in ids.values()} == live


def test_the_backfill_breaches_a_running_target_once_it_is_past_due(db, desk):
    waiting = make_conversation(queue=desk["queue"], address=desk["address"], when=MONDAY)
    make_message(waiting, when=MONDAY)
    make_message(waiting, direction="in", when=MONDAY + timedelta(minutes=5), text="Out of office") \
        .classification = "auto_reply"  # not the customer's words: no wait of its own, no message counted
    db.session.commit()
    backfill(now=MONDAY + timedelta(minutes=59))
    assert judged(db, waiting.id) == (None, None, None)  # still running
    backfill(now=MONDAY + timedelta(minutes=61))
    assert judged(db, waiting.id) == (True, None, None)
    assert db.session.get(ConversationFacts, waiting.id).messages_in == 1


def test_judge_history_cycles_against_independent_due_times():
    policy = SlaPolicy(first_response_minutes=60, next_response_minutes=120, resolution_minutes=480)
    start = MONDAY
    first_due = add_business_minutes(start, 60, WEEKDAYS, "Europe/Berlin")
    assert first_due == datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    friday = datetime(2026, 3, 6, 15, 30, tzinfo=UTC)  # 16:30 Berlin: next response due Monday 10:30 Berlin
    events = [("customer", start), ("customer", start + timedelta(minutes=20)), ("agent", first_due),
              ("agent", first_due + timedelta(minutes=1)),  # nothing waits: no cycle
              ("customer", friday), ("agent", datetime(2026, 3, 9, 9, 29, tzinfo=UTC))]
    got = sla.judge_history(start, events, None, True, policy, WEEKDAYS, "Europe/Berlin", friday)
    # a reply at the due minute is late (as the live code counts it); the weekend is not counted
    assert got == {"first_response": True, "next_response": False, "resolution": True}
    assert sla.judge_history(start, events, None, True, None, WEEKDAYS, "Europe/Berlin", friday) == \
        {"first_response": None, "next_response": None, "resolution": None}
    resolved = datetime(2026, 3, 3, 8, 59, tzinfo=UTC)  # 8 business hours end Tuesday 10:00 Berlin
    assert sla.judge_history(start, events[:3], resolved, False, policy, WEEKDAYS, "Europe/Berlin",
                             friday)["resolution"] is False
    # an agent who wrote first started it: no first response is measured, the customer's answer is a next one
    started = [("agent", start), ("customer", start + timedelta(minutes=5)), ("agent", start + timedelta(minutes=50))]
    assert sla.judge_history(start, started, None, True, policy, None, "UTC", start + timedelta(hours=1)) == \
        {"first_response": None, "next_response": False, "resolution": None}


def test_ingest_the_composer_and_the_status_write_the_judgements(client, db, desk, login_as):
    agent = db.session.merge(login_as("agent", name="Ann Agent"))
    desk["queue"].members.append(agent)
    db.session.commit()
    result = _mail(desk["address"])
    conversation = db.session.get(Conversation, result.conversation_id)
    conversation.queue_id, conversation.assignee_id = desk["queue"].id, agent.id
    sla.refresh(conversation)
    db.session.commit()
    assert conversation.first_response_due_at is not None
    assert judged(db, conversation.id) == (None, None, None)
    token = csrf_token(client, "/inbox/")
    headers = {"HX-Request": "true", "X-CSRFToken": token}
    assert client.post(f"/inbox/c/{conversation.id}/compose", data={"kind": "reply"}, headers=headers).status_code == 200
    draft = db.session.scalar(select(Draft))
    sent = client.post(f"/inbox/drafts/{draft.id}/send", headers=headers,
                       data={"to": draft.to_addrs or "carol@example.com", "subject": "Re: Refund please",
                             "body": "<p>Done.</p>"})
    assert sent.status_code == 200, sent.get_data(as_text=True)
    assert judged(db, conversation.id) == (False, None, None)
    actions.set_status(agent.id, conversation.id, "resolved")
    db.session.commit()
    assert judged(db, conversation.id) == (False, None, False)
