"""Routing: business hours across time zones, capacity, least loaded then longest idle, stickiness."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from app.flows import routing
from app.flows.routing import Calendar, HoursError, parse_hours
from app.models.inbox import Conversation
from tests.factories import make_queue, make_user
from tests.flow_factories import make_address, make_inbound

UTC = timezone.utc


def test_business_hours_across_a_time_zone_boundary():
    tokyo = Calendar("Asia/Tokyo", parse_hours("Mon-Fri 09:00-17:00"))
    # Sunday 23:30 UTC is Monday 08:30 in Tokyo: closed; Monday 00:30 UTC is 09:30 there: open.
    assert not tokyo.is_open(datetime(2026, 3, 1, 23, 30, tzinfo=UTC))
    assert tokyo.is_open(datetime(2026, 3, 2, 0, 30, tzinfo=UTC))
    # Friday 08:30 UTC is 17:30 in Tokyo: closed, although it is mid-morning in UTC.
    assert not tokyo.is_open(datetime(2026, 3, 6, 8, 30, tzinfo=UTC))
    # The same instant in New York (Thursday 19:30 the day before) is also outside 09-17.
    new_york = Calendar("America/New_York", parse_hours("Mon-Fri 09:00-17:00"))
    assert not new_york.is_open(datetime(2026, 3, 6, 0, 30, tzinfo=UTC))
    assert new_york.is_open(datetime(2026, 3, 6, 14, 30, tzinfo=UTC))


def test_daylight_saving_time_is_followed():
    berlin = Calendar("Europe/Berlin", parse_hours("Mon-Fri 09:00-17:00"))
    # 07:30 UTC is 08:30 in winter (CET, closed) and 09:30 in summer (CEST, open).
    assert not berlin.is_open(datetime(2026, 3, 27, 7, 30, tzinfo=UTC))
    assert berlin.is_open(datetime(2026, 3, 30, 7, 30, tzinfo=UTC))


def test_overnight_intervals_holidays_and_always_open():
    night = Calendar("UTC", parse_hours("Mon 22:00-06:00", "2026-03-09"))
    assert night.is_open(datetime(2026, 3, 2, 23, 0, tzinfo=UTC))       # Monday night
    assert night.is_open(datetime(2026, 3, 3, 5, 59, tzinfo=UTC))       # Tuesday early
    assert not night.is_open(datetime(2026, 3, 3, 6, 0, tzinfo=UTC))
    assert not night.is_open(datetime(2026, 3, 9, 23, 0, tzinfo=UTC))   # a holiday Monday
    assert Calendar("UTC", None).is_open(datetime(2026, 3, 8, 3, 0, tzinfo=UTC))


def test_hours_text_round_trips_and_bad_lines_are_named():
    hours = parse_hours("Mon-Fri 09:00-12:00, 13:00-17:00\nSat 10:00-14:00", "2026-12-25")
    assert hours["wed"] == [["09:00", "12:00"], ["13:00", "17:00"]] and hours["sun"] == []
    assert routing.format_hours(hours) == (
        "Mon 09:00-12:00, 13:00-17:00\nTue 09:00-12:00, 13:00-17:00\nWed 09:00-12:00, 13:00-17:00\n"
        "Thu 09:00-12:00, 13:00-17:00\nFri 09:00-12:00, 13:00-17:00\nSat 10:00-14:00", "2026-12-25")
    assert parse_hours("Fri-Mon 10:00-11:00")["sun"] == [["10:00", "11:00"]]
    for bad, words in (("Mon 9-17", "Line 1"), ("Funday 09:00-10:00", "Line 1"), ("Mon 25:00-26:00", "Line 1"),
                       ("Mon 10:00-10:00", "same time")):
        with pytest.raises(HoursError, match=words):
            parse_hours(bad)
    with pytest.raises(HoursError, match="not a date"):
        parse_hours("Mon 09:00-10:00", "tomorrow")
    with pytest.raises(HoursError):
        routing.check_time_zone("Mars/Olympus")


def _open_conversations(address, user, n):
    for i in range(n):
        conv = make_inbound(address, sender=f"load{user.id}-{i}@example.com").conversation
        conv.assignee_id = user.id
    from app.extensions import db
    db.session.commit()


def test_least_loaded_then_longest_idle_within_capacity(db):
    address = make_address()
    ann, bob, cid = make_user(name="Ann"), make_user(name="Bob"), make_user(name="Cid")
    queue = make_queue("Billing", members=[ann, bob, cid])
    _open_conversations(address, ann, 1)
    _open_conversations(address, bob, 1)
    cid.email_capacity = 1
    _open_conversations(address, cid, 1)  # Cid is full
    now = datetime.now(UTC)
    ann.last_assigned_at = now - timedelta(minutes=5)
    bob.last_assigned_at = now - timedelta(hours=2)  # idle longer
    db.session.commit()

    conv = make_inbound(address, sender="new@example.com").conversation
    conv.queue_id = queue.id
    assert routing.assign_least_loaded(conv).id == bob.id
    db.session.commit()
    assert bob.last_assigned_at > now - timedelta(seconds=5)

    conv2 = make_inbound(address, sender="new2@example.com").conversation
    conv2.queue_id = queue.id
    assert routing.assign_least_loaded(conv2).id == ann.id  # fewer assigned now beats idle time
    db.session.commit()
    assert routing.agent_loads([ann.id, bob.id, cid.id]) == {ann.id: 2, bob.id: 2, cid.id: 1}


def test_nobody_with_room_means_the_conversation_waits_and_resolved_ones_free_a_slot(db):
    address = make_address()
    ann = make_user(name="Ann")
    ann.email_capacity = 2
    queue = make_queue("Delivery", members=[ann])
    _open_conversations(address, ann, 2)
    conv = make_inbound(address, sender="waiting@example.com").conversation
    conv.queue_id = queue.id
    assert routing.assign_least_loaded(conv) is None and conv.assignee_id is None

    done = db.session.query(Conversation).filter_by(assignee_id=ann.id).first()
    done.status = "resolved"
    db.session.commit()
    assert routing.assign_least_loaded(conv).id == ann.id


def test_inactive_members_are_never_chosen(db):
    address = make_address()
    ann = make_user(name="Ann")
    ann.active = False
    queue = make_queue("Returns", members=[ann])
    conv = make_inbound(address).conversation
    conv.queue_id = queue.id
    assert routing.assign_least_loaded(conv) is None


def test_a_reply_sticks_to_its_agent_with_room_else_waits_in_the_queue(db):
    address = make_address()
    ann = make_user(name="Ann")
    ann.email_capacity = 2
    queue = make_queue("Billing", members=[ann])
    first = make_inbound(address, sender="carol@example.com")
    conv = first.conversation
    conv.queue_id, conv.assignee_id, conv.status = queue.id, ann.id, "resolved"
    db.session.commit()

    assert routing.route_reply(conv) == "stays with Ann"
    assert conv.status == "open" and conv.assignee_id == ann.id
    db.session.commit()

    _open_conversations(address, ann, 1)  # Ann is now at 2 of 2, this one included
    conv.status = "resolved"
    db.session.commit()
    _open_conversations(address, ann, 1)  # and now full without it
    assert routing.route_reply(conv) == "Ann has no room: waits in the queue"
    assert conv.assignee_id is None and conv.queue_id == queue.id and conv.status == "open"


def test_last_agent_is_found_from_the_customers_previous_conversation(db):
    address = make_address()
    ann = make_user(name="Ann")
    old = make_inbound(address, sender="carol@example.com").conversation
    old.assignee_id = ann.id
    db.session.commit()
    new = make_inbound(address, sender="carol@example.com").conversation
    assert routing.last_agent_of(new) == ann.id
    other = make_inbound(address, sender="dave@example.com").conversation
    assert routing.last_agent_of(other) is None


def test_try_assign_undoes_an_overfull_assignment(db):
    """The recount after flush catches a slot taken between the first count and the write."""
    address = make_address()
    ann = make_user(name="Ann")
    ann.email_capacity = 1
    db.session.commit()
    a = make_inbound(address, sender="a@example.com").conversation
    b = make_inbound(address, sender="b@example.com").conversation
    assert routing.try_assign(a, ann.id)
    db.session.commit()
    assert not routing.try_assign(b, ann.id) and b.assignee_id is None


def test_reassignment_respects_capacity_unless_a_supervisor_overrides(db):
    address = make_address()
    ann = make_user(name="Ann")
    ann.email_capacity = 1
    _open_conversations(address, ann, 1)
    conv = make_inbound(address, sender="move@example.com").conversation
    with pytest.raises(routing.NoRoom, match="Ann has no room"):
        routing.reassign(conv, ann.id)
    assert conv.assignee_id is None
    routing.reassign(conv, ann.id, override=True)
    assert conv.assignee_id == ann.id
    with pytest.raises(LookupError):
        routing.reassign(conv, 999999)
