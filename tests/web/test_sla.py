"""Service levels (issue 17): SLA policies on a queue's Service levels page, due times that follow inbound mail,
replies, resolve/reopen and transfers, the most specific policy winning, and the at-risk/overdue notices."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from app.blobs import blob_store
from app.flows.runner import run_flow
from app.flows.sla_policies import add_policy
from app.inbox import actions, organize
from app.models.inbox import Conversation, Draft
from app.models.organize import ConversationEvent
from app.models.notifications import Notification
from app.models.sla import SlaPolicy
from app.runtime import sla
from app.runtime.ingest import RawItem, ingest
from tests.factories import make_address, make_conversation, make_message, make_queue
from tests.helpers import csrf_token

UTC = timezone.utc
WEEKDAYS = {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")} | {"sat": [], "sun": []}


def _mail(address, subject="Refund please", message_id="<one@example.com>", extra=b""):
    raw = (b"From: Carol <carol@example.com>\r\nTo: " + address.address.encode() + b"\r\nSubject: "
           + subject.encode() + b"\r\nMessage-ID: " + message_id.encode() + b"\r\n" + extra + b"\r\nHello.\r\n")
    [result] = ingest(address.id, [RawItem(blob_store().put(raw), len(raw), "cli", "test", raw=raw)])
    return result


def test_admin_adds_and_deletes_a_policy_on_the_service_levels_page(client, db, login_as):
    login_as("admin")
    queue = make_queue("Billing")
    page = client.get(f"/flows/queues/{queue.id}/service-levels").get_data(as_text=True)
    assert "No SLA policies yet" in page and '<label for="first_response_minutes">' in page
    assert f'href="/flows/queues/{queue.id}/service-levels"' in client.get("/flows/queues/").get_data(as_text=True)
    token = csrf_token(client, f"/flows/queues/{queue.id}/service-levels")
    bad = client.post(f"/flows/queues/{queue.id}/service-levels",
                      data={"csrf_token": token, "name": "Empty", "priority": "", "first_response_minutes": ""})
    assert bad.status_code == 422 and "Enter at least one target" in bad.get_data(as_text=True)
    assert 'value="Empty"' in bad.get_data(as_text=True)  # nothing typed is lost
    ok = client.post(f"/flows/queues/{queue.id}/service-levels",
                     data={"csrf_token": token, "name": "Urgent refunds", "priority": "2", "tag": "Refund",
                           "first_response_minutes": "30", "next_response_minutes": "60",
                           "resolution_minutes": "480", "warning_minutes": "10"})
    assert ok.status_code == 303
    policy = db.session.scalar(select(SlaPolicy))
    assert (policy.queue_id, policy.priority, policy.tag, policy.first_response_minutes, policy.warning_minutes) == \
        (queue.id, 2, "refund", 30, 10)
    page = client.get(f"/flows/queues/{queue.id}/service-levels").get_data(as_text=True)
    assert "Urgent refunds" in page and "8 h" in page and "Urgent" in page
    dup = client.post(f"/flows/queues/{queue.id}/service-levels",
                      data={"csrf_token": token, "name": "Again", "priority": "2", "tag": "refund",
                            "first_response_minutes": "5"})
    assert dup.status_code == 422 and "already covers" in dup.get_data(as_text=True)
    gone = client.post(f"/flows/queues/{queue.id}/service-levels/{policy.id}/delete", data={"csrf_token": token})
    assert gone.status_code == 303 and db.session.scalar(select(SlaPolicy)) is None


def test_agents_cannot_open_the_service_levels_page(client, db, login_as):
    login_as("agent")
    queue = make_queue("Billing")
    assert client.get(f"/flows/queues/{queue.id}/service-levels").status_code in (302, 403)


@pytest.fixture
def desk(db):
    queue = make_queue("Support")
    queue.is_default, queue.time_zone, queue.business_hours = True, "Europe/Berlin", WEEKDAYS
    db.session.commit()
    address = make_address("help@mail.pigeonhole.test", queues=[queue])
    add_policy(queue.id, name="Standard", priority=None, tag=None, first_response_minutes=60,
               next_response_minutes=120, resolution_minutes=8 * 60, warning_minutes=None)
    db.session.commit()
    return {"queue": queue, "address": address}


def test_inbound_mail_gets_due_times_in_business_hours(db, desk, monkeypatch):
    result = _mail(desk["address"])
    run_flow(result.conversation_id)
    db.session.commit()
    conversation = db.session.get(Conversation, result.conversation_id)
    arrived = conversation.created_at
    assert conversation.sla_policy_id is not None and conversation.sla_waiting_since == arrived
    from app.runtime.sla_clock import add_business_minutes, business_minutes_between
    assert conversation.first_response_due_at == add_business_minutes(arrived, 60, WEEKDAYS, "Europe/Berlin")
    assert business_minutes_between(arrived, conversation.resolution_due_at, WEEKDAYS, "Europe/Berlin") == 480
    assert conversation.next_response_due_at is None
    assert conversation.sla_due_at == conversation.first_response_due_at


def _conversation(desk, when):
    conversation = make_conversation(queue=desk["queue"], address=desk["address"], when=when, subject="Parcel")
    make_message(conversation, when=when)
    sla.customer_wrote(conversation, when)
    return conversation


def test_reply_resolve_reopen_and_transfer_move_the_due_times(db, desk):
    monday = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # 10:00 in Berlin
    conversation = _conversation(desk, monday)
    assert conversation.first_response_due_at == datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    assert conversation.resolution_due_at == datetime(2026, 3, 3, 9, 0, tzinfo=UTC)  # 8 business hours
    sla.agent_replied(conversation, monday + timedelta(minutes=90))  # late
    assert conversation.first_response_breached_at == datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    assert conversation.first_response_due_at is None and conversation.next_response_due_at is None
    assert conversation.sla_due_at == conversation.resolution_due_at
    # The customer writes again on Friday 16:30 Berlin: next response due Monday 10:30 Berlin
    friday = datetime(2026, 3, 6, 15, 30, tzinfo=UTC)
    sla.customer_wrote(conversation, friday)
    assert conversation.next_response_due_at == datetime(2026, 3, 9, 9, 30, tzinfo=UTC)
    sla.agent_replied(conversation, friday + timedelta(minutes=10))
    assert conversation.next_response_due_at is None and conversation.next_response_breached_at is None
    # Resolve stops the clocks (resolution was due on Tuesday: breached), reopen starts them again
    conversation.status = "resolved"
    sla.status_changed(conversation, friday + timedelta(minutes=20))
    assert conversation.sla_due_at is None
    assert conversation.resolution_breached_at == datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
    conversation.status = "open"
    sla.customer_wrote(conversation, friday + timedelta(hours=1))
    assert conversation.next_response_due_at == datetime(2026, 3, 9, 10, 0, tzinfo=UTC)
    # A transfer to a queue without a policy clears the due times
    other = make_queue("Returns")
    conversation.queue_id = other.id
    sla.refresh(conversation)
    assert conversation.sla_policy_id is None and conversation.sla_due_at is None


def test_the_most_specific_policy_wins(db, desk):
    queue = desk["queue"]
    urgent = add_policy(queue.id, name="Urgent", priority=2, tag=None, first_response_minutes=15,
                        next_response_minutes=None, resolution_minutes=None, warning_minutes=None)
    vip = add_policy(queue.id, name="Urgent VIP", priority=2, tag="vip", first_response_minutes=5,
                     next_response_minutes=None, resolution_minutes=None, warning_minutes=None)
    db.session.commit()
    conversation = _conversation(desk, datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    assert conversation.first_response_due_at == datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    conversation.priority = 2
    sla.refresh(conversation)
    assert conversation.sla_policy_id == urgent.id
    assert conversation.first_response_due_at == datetime(2026, 3, 2, 9, 15, tzinfo=UTC)
    conversation.tags = ["vip"]
    sla.refresh(conversation)
    assert conversation.sla_policy_id == vip.id
    assert conversation.first_response_due_at == datetime(2026, 3, 2, 9, 5, tzinfo=UTC)


def test_workspace_actions_keep_the_due_times(client, db, desk, login_as):
    agent = db.session.merge(login_as("agent", name="Alex Agent"))
    desk["queue"].members.append(agent)
    other = make_queue("Returns", members=[agent])
    db.session.commit()
    now = datetime.now(UTC)
    conversation = _conversation(desk, now)
    db.session.commit()
    assert conversation.sla_due_at is not None
    actions.set_status(agent.id, conversation.id, "resolved")
    assert conversation.sla_due_at is None and conversation.resolved_at is not None
    actions.set_status(agent.id, conversation.id, "open")
    assert conversation.sla_due_at is not None
    organize.set_priority(agent.id, conversation.id, 2)
    actions.transfer(agent.id, conversation.id, other.id)
    assert conversation.sla_due_at is None
    db.session.commit()


def test_an_agents_reply_through_the_composer_is_the_first_response(client, db, desk, login_as):
    agent = db.session.merge(login_as("agent", name="Alex Agent"))
    desk["queue"].members.append(agent)
    db.session.commit()
    conversation = _conversation(desk, datetime.now(UTC) - timedelta(minutes=5))
    conversation.assignee_id = agent.id
    db.session.commit()
    assert conversation.first_response_due_at is not None
    token = csrf_token(client, "/inbox/")
    headers = {"HX-Request": "true", "X-CSRFToken": token}
    assert client.post(f"/inbox/c/{conversation.id}/compose", data={"kind": "reply"}, headers=headers).status_code == 200
    draft = db.session.scalar(select(Draft))
    r = client.post(f"/inbox/drafts/{draft.id}/send", headers=headers,
                    data={"to": "carol@example.com" if not draft.to_addrs else draft.to_addrs,
                          "subject": "Re: Parcel", "body": "<p>On its way.</p>"})
    assert r.status_code == 200, r.get_data(as_text=True)
    db.session.expire_all()
    conversation = db.session.get(Conversation, conversation.id)
    assert conversation.first_response_at is not None and conversation.sla_waiting_since is None
    assert conversation.first_response_due_at is None and conversation.first_response_breached_at is None


def test_at_risk_and_overdue_notices_are_sent_once_each(db, desk):
    from tests.factories import make_user
    agent = make_user("agent", name="Alex Agent")
    conversation = _conversation(desk, datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    conversation.assignee_id = agent.id
    db.session.commit()
    due = conversation.first_response_due_at
    assert sla.notify_due(due - timedelta(minutes=30)) == 0
    assert sla.notify_due(due - timedelta(minutes=10)) == 1
    assert sla.notify_due(due - timedelta(minutes=5)) == 0
    assert sla.notify_due(due + timedelta(minutes=1)) == 1
    assert sla.notify_due(due + timedelta(minutes=2)) == 0
    notices = db.session.scalars(select(Notification).order_by(Notification.id)).all()
    assert [(n.user_id, n.kind) for n in notices] == [(agent.id, "at_risk"), (agent.id, "overdue")]
    assert notices[0].text == "First response due in 10 min: Parcel"
    events = db.session.scalars(select(ConversationEvent).where(ConversationEvent.kind == "sla")).all()
    assert [e.data["notice"] for e in events] == ["at_risk", "overdue"]
    db.session.expire_all()
    assert db.session.get(Conversation, conversation.id).first_response_breached_at == due


def test_inbox_rows_show_timers_sort_by_due_soonest_and_filter_breached_and_at_risk(client, db, login_as):
    from app.inbox.lists import InboxFilters, list_inbox
    agent = db.session.merge(login_as("supervisor", name="Sam Supervisor"))
    queue = make_queue("Always", members=[agent])  # always open: business minutes are minutes
    address = make_address("always@mail.pigeonhole.test", queues=[queue])
    add_policy(queue.id, name="Fast", priority=None, tag=None, first_response_minutes=60,
               next_response_minutes=None, resolution_minutes=None, warning_minutes=15)
    now = datetime.now(UTC)
    made = {}
    for subject, minutes_ago in (("Calm", 5), ("Close call", 50), ("Too late", 70)):
        when = now - timedelta(minutes=minutes_ago)
        conversation = make_conversation(queue=queue, address=address, when=when, subject=subject)
        make_message(conversation, when=when)
        sla.customer_wrote(conversation, when)
        made[subject] = conversation
    plain = make_conversation(queue=make_queue("No policy"), address=address, subject="No timer")
    db.session.commit()
    html = client.get("/inbox/?sort=due").get_data(as_text=True)
    order = [s for s in re.findall(r'<td class="subject"><a href="/inbox/c/\d+">([^<]+)</a>', html)]
    assert order == ["Too late", "Close call", "Calm", "No timer"]
    assert re.search(r'<span class="sla-timer sla-ok"><time datetime="[^"]+" title="Due [^"]+">'
                     r'First response due in 5\d min</time></span>', html)
    assert re.search(r'sla-at-risk"><time[^>]*>First response due in 1\d min</time> <span class="sla-word">'
                     r'\(at risk\)</span>', html)
    assert re.search(r'sla-breached"><time[^>]*>First response overdue by 1\d min</time>', html)
    assert '<option value="due" selected>Due soonest</option>' in html and '<label for="filter-sla">' in html
    breached = client.get("/inbox/?sla=breached").get_data(as_text=True)
    assert "Too late" in breached and "Close call" not in breached and "Calm" not in breached
    at_risk = client.get("/inbox/?sla=at_risk").get_data(as_text=True)
    assert "Close call" in at_risk and "Too late" not in at_risk and "No timer" not in at_risk
    # Keyset pages of the due sort: two rows a page, nothing repeated or lost
    seen, cursor = [], None
    while True:
        page = list_inbox(agent.id, view="all", cursor=cursor, limit=2, filters=InboxFilters(sort="due"))
        seen += [r.conversation.subject for r in page.rows]
        if not page.next_cursor:
            break
        cursor = page.next_cursor
    assert seen == ["Too late", "Close call", "Calm", "No timer"]
    header = client.get(f"/inbox/c/{made['Too late'].id}").get_data(as_text=True)
    assert re.search(r'<span id="sla-header"><span class="sla-timer sla-breached"><time[^>]*>First response overdue',
                     header)
    assert plain.sla_due_at is None


def test_the_agent_reads_the_sla_notices_among_the_notifications(client, db, login_as):
    agent = db.session.merge(login_as("agent", name="Alex Agent"))
    queue = make_queue("Support", members=[agent])
    address = make_address("help@mail.pigeonhole.test", queues=[queue])
    add_policy(queue.id, name="Fast", priority=None, tag=None, first_response_minutes=30,
               next_response_minutes=None, resolution_minutes=None, warning_minutes=None)
    when = datetime.now(UTC) - timedelta(hours=1)
    conversation = make_conversation(queue=queue, address=address, when=when, subject="Lost parcel", assignee=agent)
    make_message(conversation, when=when)
    sla.customer_wrote(conversation, when)
    db.session.commit()
    assert sla.notify_due() == 1
    # one place: the Notifications page and the header's one badge (the old Notices page leads there)
    assert client.get("/inbox/notices").headers["Location"].endswith("/notifications")
    badge = client.get("/notifications/badge", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert 'aria-label="1 unread"' in badge
    page = client.get("/notifications").get_data(as_text=True)
    [notice] = db.session.scalars(select(Notification).where(Notification.user_id == agent.id)).all()
    assert notice.kind == "overdue" and notice.conversation_id == conversation.id
    assert '<span class="notification-kind kind-overdue">Overdue</span>' in page
    assert f'<a href="/notifications/{notice.id}">First response overdue: Lost parcel</a>' in page
    opened = client.get(f"/notifications/{notice.id}")
    assert opened.status_code == 303 and opened.headers["Location"].endswith(f"/inbox/c/{conversation.id}")
    badge = client.get("/notifications/badge", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "unread" not in badge and "Mark all as read" not in client.get("/notifications").get_data(as_text=True)


def test_merge_keeps_the_oldest_wait_and_the_merged_one_has_no_timer(client, db, desk, login_as):
    from app.inbox.merging import merge
    agent = db.session.merge(login_as("supervisor", name="Sam Supervisor"))
    early = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    source = _conversation(desk, early)
    target = _conversation(desk, early + timedelta(minutes=30))
    target.contact_id = source.contact_id
    db.session.commit()
    merge(agent.id, source.id, target.id)
    assert source.status == "closed" and source.sla_due_at is None
    assert target.sla_waiting_since == early
    assert target.first_response_due_at == datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    db.session.commit()


def test_a_holiday_added_on_the_queue_page_moves_the_due_times(client, db, desk, login_as):
    login_as("admin")
    conversation = _conversation(desk, datetime(2026, 3, 2, 15, 30, tzinfo=UTC))  # Monday 16:30 in Berlin
    db.session.commit()
    assert conversation.first_response_due_at == datetime(2026, 3, 3, 8, 30, tzinfo=UTC)  # Tuesday 09:30
    queue = desk["queue"]
    token = csrf_token(client, f"/flows/queues/{queue.id}")
    r = client.post(f"/flows/queues/{queue.id}", data={
        "csrf_token": token, "name": "Support", "time_zone": "Europe/Berlin", "hours": "Mon-Fri 09:00-17:00",
        "holidays": "2026-03-03", "ack_interval_minutes": "1440"})
    assert r.status_code == 303, r.get_data(as_text=True)
    db.session.expire_all()
    conversation = db.session.get(Conversation, conversation.id)
    assert conversation.first_response_due_at == datetime(2026, 3, 4, 8, 30, tzinfo=UTC)  # Wednesday 09:30


def test_the_header_timer_follows_a_status_change_out_of_band(client, db, login_as):
    agent = db.session.merge(login_as("agent", name="Alex Agent"))
    queue = make_queue("Support", members=[agent])
    address = make_address("help@mail.pigeonhole.test", queues=[queue])
    add_policy(queue.id, name="Fast", priority=None, tag=None, first_response_minutes=60,
               next_response_minutes=None, resolution_minutes=None, warning_minutes=None)
    when = datetime.now(UTC) - timedelta(minutes=10)
    conversation = make_conversation(queue=queue, address=address, when=when, subject="Parcel", assignee=agent)
    make_message(conversation, when=when)
    sla.customer_wrote(conversation, when)
    db.session.commit()
    token = csrf_token(client, f"/inbox/c/{conversation.id}")
    headers = {"HX-Request": "true", "X-CSRFToken": token}
    pending = client.post(f"/inbox/c/{conversation.id}/status", data={"status": "pending"}, headers=headers)
    html = pending.get_data(as_text=True)
    assert re.search(r'<span id="sla-header" hx-swap-oob="true"><span class="sla-timer sla-ok"><time[^>]*>'
                     r'First response due in 5\d min</time>', html), html
    resolved = client.post(f"/inbox/c/{conversation.id}/status", data={"status": "resolved"}, headers=headers)
    assert '<span id="sla-header" hx-swap-oob="true"></span>' in resolved.get_data(as_text=True)


def test_a_resolved_conversation_snoozed_back_to_pending_gets_its_due_times_again(db, desk):
    """Snooze is a status change for the clocks: from Resolved (no due times) to pending, the resolution clock
    runs again; and the snooze's end (cron) keeps them."""
    from app.runtime.snooze import wake_due_snoozes
    from tests.factories import make_user

    agent = make_user("supervisor")
    monday = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # 10:00 in Berlin
    conversation = _conversation(desk, monday)
    conversation.status = "resolved"
    sla.status_changed(conversation, monday + timedelta(minutes=30))
    db.session.commit()
    assert conversation.sla_due_at is None

    later = monday + timedelta(hours=1)
    organize.snooze(agent, conversation.id, later + timedelta(hours=2), now=later)
    db.session.commit()
    assert conversation.status == "pending"
    assert conversation.resolution_due_at == datetime(2026, 3, 3, 9, 0, tzinfo=UTC)  # created + 8 business hours
    assert conversation.sla_due_at is not None

    assert wake_due_snoozes(now=later + timedelta(hours=3)) == 1
    db.session.expire_all()
    conversation = db.session.get(Conversation, conversation.id)
    assert conversation.status == "open" and conversation.resolution_due_at == datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
