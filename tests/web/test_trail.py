"""The audit trail (issue 16): assignment, transfer, status, priority, tags, snooze, merges and automation's
actions are one-line events in the thread, at their time in the viewer's zone, and in a CSV export."""
from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from app.flows import runner
from app.models.organize import ConversationEvent
from tests.factories import PASSWORD, make_address, make_conversation, make_message, make_queue, make_user
from tests.flow_factories import make_address as make_flow_address, make_flow, make_inbound
from tests.helpers import csrf_token


def _signed_in(app, user):
    client = app.test_client()
    token = csrf_token(client)
    assert client.post("/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token}).status_code == 302
    return client


def _setup(app, db, zone="UTC"):
    alex = make_user("agent", email="alex@example.test", name="Alex Agent")
    alex.time_zone = zone
    db.session.commit()
    support = make_queue("Support", members=[alex])
    returns = make_queue("Returns", members=[alex])
    conversation = make_conversation(queue=support, address=make_address(queues=[support]),
                                     contact_email="carol@example.com")
    make_message(conversation, when=datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc))
    client = _signed_in(app, alex)
    token = csrf_token(client, f"/inbox/c/{conversation.id}")
    return alex, returns, conversation, client, {"HX-Request": "true", "X-CSRFToken": token}


def _lines(db, conversation_id):
    return [e.text for e in db.session.scalars(select(ConversationEvent).where(
        ConversationEvent.conversation_id == conversation_id).order_by(ConversationEvent.id))]


def test_each_change_is_a_line_in_the_thread_in_the_viewers_zone_and_in_the_answer(app, db):
    alex, returns, conversation, client, h = _setup(app, db, zone="Europe/Paris")
    url = f"/inbox/c/{conversation.id}"
    assigned = client.post(f"{url}/assign", data={"assignee": "me"}, headers=h).get_data(as_text=True)
    # The answer appends the new line to the thread at once.
    assert 'hx-swap-oob="beforeend:#thread"' in assigned and "Alex Agent took this conversation" in assigned
    client.post(f"{url}/transfer", data={"queue": returns.id}, headers=h)
    client.post(f"{url}/status", data={"status": "resolved"}, headers=h)
    client.post(f"{url}/priority", data={"priority": "2"}, headers=h)
    client.post(f"{url}/tags", data={"tag": "Refund, VIP"}, headers=h)
    client.post(f"{url}/tags/remove", data={"tag": "vip"}, headers=h)
    assert _lines(db, conversation.id) == [
        "Alex Agent took this conversation", "Alex Agent transferred to Returns from Support",
        "Alex Agent set the status to resolved", "Alex Agent set the priority to Urgent",
        "Alex Agent added the tags refund, vip", "Alex Agent removed the tag vip"]
    page = client.get(url).get_data(as_text=True)
    # After the customer's message, in order, each with its time in Paris (CET: UTC+1).
    thread = page.split('id="thread"')[1]
    assert thread.index("message-") < thread.index("Alex Agent took this conversation") \
        < thread.index("Alex Agent removed the tag vip")
    event = db.session.scalars(select(ConversationEvent).where(ConversationEvent.kind == "priority")).one()
    local = event.created_at.astimezone(timezone(timedelta(hours=1))).strftime("%Y-%m-%d %H:%M")
    assert re.search(rf'set the priority to Urgent</span> · <time datetime="[^"]+" title="[^"]+CET">{local}</time>',
                     page)


def test_a_flows_actions_are_lines_by_automation(app, db):
    ann = make_user(name="Ann")
    queue = make_queue("Returns", members=[ann])
    flow = make_flow([{"name": "Labels", "conditions": [{"type": "subject", "op": "contains", "value": "label"}],
                       "actions": [{"type": "set_queue", "queue_id": queue.id}, {"type": "set_priority", "priority": 1},
                                   {"type": "add_tags", "tags": ["Returns"]},
                                   {"type": "assign", "mode": "agent", "user_id": ann.id}]}], name="Routing")
    message = make_inbound(make_flow_address(flow=flow), subject="Return label please", text="Can I get a label?")
    runner.run_flow(message.conversation_id)
    db.session.commit()
    assert _lines(db, message.conversation_id) == [
        "Automation (Routing) transferred to Returns", "Automation (Routing) set the priority to High",
        "Automation (Routing) added the tags returns", "Automation (Routing) assigned to Ann"]
    # The same tags as the workspace's: normalised, and filterable.
    assert message.conversation.tags == ["returns"]


def test_the_conversation_export_is_a_csv_of_its_lines_and_only_for_who_may_see_it(app, db):
    alex, returns, conversation, client, h = _setup(app, db)
    client.post(f"/inbox/c/{conversation.id}/priority", data={"priority": "1"}, headers=h)
    client.post(f"/inbox/c/{conversation.id}/tags", data={"tag": "=cmd()"}, headers=h)
    answer = client.get(f"/inbox/c/{conversation.id}/trail.csv")
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    assert "attachment" in answer.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(answer.get_data(as_text=True))))
    assert rows[0] == ["time (UTC)", "conversation", "subject", "kind", "by", "event"]
    assert [r[3:] for r in rows[1:]] == [["Priority", "Alex Agent", "Alex Agent set the priority to High"],
                                         ["Tags", "Alex Agent", "Alex Agent added the tag =cmd()"]]
    other = make_user("agent", email="other@example.test")
    assert _signed_in(app, other).get(f"/inbox/c/{conversation.id}/trail.csv").status_code == 404


def test_supervisors_export_every_line_of_a_date_range_and_agents_may_not(app, db):
    alex, returns, conversation, client, h = _setup(app, db)
    client.post(f"/inbox/c/{conversation.id}/priority", data={"priority": "-1"}, headers=h)
    assert client.get("/inbox/trail").status_code == 403
    sam = make_user("supervisor", email="sam@example.test", name="Sam Supervisor")
    sup = _signed_in(app, sam)
    assert sup.get("/inbox/trail").status_code == 200
    bad = sup.get("/inbox/trail?start=2026-12-05&end=2026-12-01")
    assert bad.status_code == 422 and "the first not after the last" in bad.get_data(as_text=True)
    today = datetime.now(timezone.utc).date()
    answer = sup.get(f"/inbox/trail?start={today - timedelta(days=1)}&end={today}")
    rows = list(csv.reader(io.StringIO(answer.get_data(as_text=True))))
    assert answer.status_code == 200 and rows[1][1:] == [str(conversation.id), conversation.subject, "Priority",
                                                         "Alex Agent", "Alex Agent set the priority to Low"]
    empty = sup.get("/inbox/trail?start=2020-01-01&end=2020-01-02")
    assert len(list(csv.reader(io.StringIO(empty.get_data(as_text=True))))) == 1


def test_the_thread_poll_brings_a_colleagues_new_lines(app, db):
    alex, returns, conversation, client, h = _setup(app, db)
    page = client.get(f"/inbox/c/{conversation.id}").get_data(as_text=True)
    poll = re.search(r'id="thread-poller"[^>]*hx-get="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert "events=0" in poll
    sam = make_user("supervisor", email="sam@example.test", name="Sam Supervisor")
    sup = _signed_in(app, sam)
    sup.post(f"/inbox/c/{conversation.id}/priority", data={"priority": "1"},
             headers={"HX-Request": "true", "X-CSRFToken": csrf_token(sup, f"/inbox/c/{conversation.id}")})
    update = client.get(poll, headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "Sam Supervisor set the priority to High" in update
    again = re.search(r'id="thread-poller"[^>]*hx-get="([^"]+)"', update).group(1).replace("&amp;", "&")
    assert "Sam Supervisor" not in client.get(again, headers={"HX-Request": "true"}).get_data(as_text=True)
