"""The live queue dashboard against figures computed on their own from a seeded present: open, unassigned,
waiting longest, agents signed in / available / at capacity, the last hour's messages, replies today; every
figure links to the inbox filter that lists the same conversations; the 5 s fragment."""
from __future__ import annotations

import re
from html import unescape as html_unescape
from datetime import datetime, timedelta, timezone

import pytest

from app.extensions import db as _db
from app.runtime.backfill import backfill
from tests.helpers import csrf_token
from tests.factories import PASSWORD, make_address, make_conversation, make_message, make_queue, make_user


@pytest.fixture
def present(app, db):
    now = datetime.now(timezone.utc)
    ann = make_user("agent", name="Ann Agent")
    bob = make_user("agent", name="Bob Agent")
    bob.email_capacity = 1
    billing = make_queue("Billing", members=[ann, bob])
    address = make_address()
    rows = {}
    # Billing: 3 open (1 unassigned, waiting 50 min; one answered; one Bob's waiting 20 min), 1 resolved
    c1 = make_conversation(queue=billing, address=address, when=now - timedelta(minutes=50))
    make_message(c1, when=now - timedelta(minutes=50))
    c2 = make_conversation(queue=billing, address=address, assignee=ann, when=now - timedelta(hours=3))
    make_message(c2, when=now - timedelta(hours=3))
    make_message(c2, direction="out", author=ann, when=now - timedelta(minutes=30))
    c3 = make_conversation(queue=billing, address=address, assignee=bob, when=now - timedelta(minutes=20))
    make_message(c3, when=now - timedelta(minutes=20))
    c4 = make_conversation(queue=billing, address=address, assignee=ann, status="resolved",
                           when=now - timedelta(days=2))
    make_message(c4, when=now - timedelta(days=2))
    make_message(c4, direction="out", author=ann, when=now - timedelta(days=1, hours=23))
    rows.update(c1=c1.id, c2=c2.id, c3=c3.id, c4=c4.id)
    backfill()
    return {"now": now, "ann": ann, "bob": bob, "billing": billing, **rows}


def figure(html: str, scope: str, name: str) -> tuple[str, str | None]:
    """(text, href) of a `data-figure` inside the element with `scope` (data-queue="1" / data-agent="2")."""
    block = html[html.index(scope):]
    found = re.search(rf'data-figure="{name}"(?: href="([^"]*)")?>([^<]*)', block)
    assert found, (scope, name)
    return found.group(2).strip(), found.group(1) and html_unescape(found.group(1))


def test_queue_and_agent_figures_match_the_seed_and_link_to_the_inbox(client, login_as, present, db):
    login_as("supervisor")
    # Ann signs in too (a session of her own): signed in and, with 1 of 5 conversations, available.
    other = client.application.test_client()
    other.post("/login", data={"email": present["ann"].email, "password": PASSWORD, "csrf_token": csrf_token(other)})
    html = client.get("/dashboard").get_data(as_text=True)
    queue = f'data-queue="{present["billing"].id}"'
    assert figure(html, queue, "open") == ("3", f"/inbox/?view=all&queue={present['billing'].id}&status=open")
    assert figure(html, queue, "unassigned")[0] == "1"
    assert "view=unassigned" in figure(html, queue, "unassigned")[1]
    waiting = re.search(r'data-figure="waiting"><a href="([^"]*)">([^<]*)<', html[html.index(queue):])
    assert waiting.group(1) == f"/inbox/c/{present['c1']}" and waiting.group(2) in ("50 min", "49 min", "51 min")
    assert figure(html, queue, "signed_in")[0].startswith("1")
    assert figure(html, queue, "available")[0] == "1" and figure(html, queue, "at_capacity")[0] == "0"
    assert figure(html, queue, "messages_in")[0] == "2"  # c1 and c3; c2's message is 3 h old
    assert figure(html, queue, "replies_out")[0] == "1"
    bob = f'data-agent="{present["bob"].id}"'
    assert figure(html, bob, "open") == ("1", f"/inbox/?view=all&assignee={present['bob'].id}&status=open")
    ann = f'data-agent="{present["ann"].id}"'
    assert figure(html, ann, "open")[0] == "1" and figure(html, ann, "replies_today")[0] == (
        "1" if (present["now"] - timedelta(minutes=30)).date() == present["now"].date() else "0")
    assert "Breached" not in html  # no SLA data yet: hidden

    # the inbox behind "Open" lists the same three conversations
    inbox = client.get(f"/inbox/?queue={present['billing'].id}&status=open").get_data(as_text=True)
    for key in ("c1", "c2", "c3"):
        assert f"/inbox/c/{present[key]}" in inbox
    assert f"/inbox/c/{present['c4']}" not in inbox


def test_the_fragment_refreshes_every_5_seconds(client, login_as, present, htmx_headers):
    login_as("admin")
    page = client.get("/dashboard").get_data(as_text=True)
    assert 'hx-trigger="every 5s"' in page and "<h1>Dashboard</h1>" in page
    fragment = client.get("/dashboard", headers=htmx_headers)
    body = fragment.get_data(as_text=True)
    assert fragment.status_code == 200 and "<h1>" not in body and body.lstrip().startswith('<div id="dashboard"')


def test_breached_and_at_risk_follow_the_due_times_and_link_to_exactly_those(client, login_as, present, db):
    from app.flows.sla_policies import add_policy
    from app.models.inbox import Conversation
    from app.runtime import sla

    now, billing = present["now"], present["billing"]
    add_policy(billing.id, name="Standard", priority=None, tag=None, first_response_minutes=60,
               next_response_minutes=None, resolution_minutes=None, warning_minutes=15)
    returns = make_queue("Returns")
    add_policy(returns.id, name="Returns", priority=None, tag=None, first_response_minutes=5,
               next_response_minutes=None, resolution_minutes=None, warning_minutes=None)
    address = make_address()
    waits = {}  # conversation id -> (queue, status, the customer's first unanswered message)
    for key, minutes in (("c1", 50), ("c3", 20)):
        waits[present[key]] = (billing.id, "open", now - timedelta(minutes=minutes))
    for queue, status, minutes in ((billing, "open", 120), (billing, "pending", 61), (billing, "open", 47),
                                   (billing, "resolved", 300), (returns, "open", 30)):
        extra = make_conversation(queue=queue, address=address, when=now - timedelta(minutes=minutes), status=status)
        make_message(extra, when=now - timedelta(minutes=minutes))
        waits[extra.id] = (queue.id, status, now - timedelta(minutes=minutes))
    for cid, (_queue, _status, since) in waits.items():
        sla.customer_wrote(_db.session.get(Conversation, cid), since)
    _db.session.commit()
    login_as("supervisor")
    html = client.get("/dashboard").get_data(as_text=True)
    # independently: due 60 min after the wait began (always open), at risk from 15 min before
    live = {cid: since for cid, (q, status, since) in waits.items() if q == billing.id and status != "resolved"}
    breached = {cid for cid, since in live.items() if since + timedelta(minutes=60) <= now}
    at_risk = {cid for cid, since in live.items() if since + timedelta(minutes=45) <= now < since + timedelta(minutes=60)}
    assert len(breached) == 2 and len(at_risk) == 2
    scope = f'data-queue="{billing.id}"'
    for name, expected in (("breached", breached), ("at_risk", at_risk)):
        text, href = figure(html, scope, name)
        assert text == str(len(expected)), name
        assert f"sla={name}" in href and f"queue={billing.id}" in href
        inbox = client.get(href).get_data(as_text=True)
        listed = {cid for cid in [*waits, present["c2"], present["c4"]] if f"/inbox/c/{cid}\"" in inbox}
        assert listed == expected, name


def listed(client, href: str) -> set[int]:
    """The conversations of the inbox list at `href` (one page: the seeds are smaller than a page)."""
    response = client.get(href)
    assert response.status_code == 200, href
    return {int(cid) for cid in re.findall(r'href="/inbox/c/(\d+)"', response.get_data(as_text=True))}


def test_every_figure_links_to_a_list_of_exactly_the_conversations_counted(client, login_as, present, db):
    """A seeded history where counting messages and counting conversations differ (several messages in one
    conversation, automatic mail, a merged conversation, another queue, a reply to a conversation that is
    not the agent's, yesterday's replies): each figure equals the count of the list its link opens, and that
    list holds exactly the conversations computed here from the seed."""
    from app.models.auth import UserSession

    now, billing, ann, bob = present["now"], present["billing"], present["ann"], present["bob"]
    returns = make_queue("Returns", members=[ann])
    address = make_address()
    ago = lambda minutes: now - timedelta(minutes=minutes)  # noqa: E731
    # Billing, besides the present: two customer messages and two of Ann's replies in the last hour in one,
    # a pending one of Bob's answered by Ann (a reply today, not Ann's load), an automatic acknowledgement only.
    busy = make_conversation(queue=billing, address=address, assignee=ann, when=ago(40))
    for minutes, direction in ((40, "in"), (35, "out"), (25, "in"), (10, "out")):
        make_message(busy, direction=direction, author=ann if direction == "out" else None, when=ago(minutes))
    helped = make_conversation(queue=billing, address=address, assignee=bob, status="pending", when=ago(90))
    make_message(helped, when=ago(90))
    make_message(helped, direction="out", author=ann, when=ago(5))
    acked = make_conversation(queue=billing, address=address, when=ago(15))
    make_message(acked, when=ago(15))
    make_message(acked, direction="out", author=ann, when=ago(15)).automatic = "acknowledgement"
    merged = make_conversation(queue=billing, address=address, assignee=ann, when=ago(12))
    make_message(merged, when=ago(12))
    make_message(merged, direction="out", author=ann, when=ago(11))
    merged.merged_into_id = busy.id
    # Returns: one customer message and Ann's reply within the hour (not Billing's figures; Ann's today).
    other = make_conversation(queue=returns, address=address, assignee=ann, when=ago(30))
    make_message(other, when=ago(30))
    make_message(other, direction="out", author=ann, when=ago(20))
    # Ann: an older reply (26 h ago: not today)
    from app.models.inbox import Conversation
    make_message(_db.session.get(Conversation, present["c4"]), direction="out", author=ann, when=now - timedelta(hours=26))
    bob.email_capacity = 2  # Bob: c3 (open) + helped (pending) = 2: at capacity
    _db.session.commit()
    backfill()
    login_as("supervisor")
    for user in (ann, bob):  # both signed in (an unexpired session each)
        _db.session.add(UserSession(user_id=user.id, key_hash=f"k{user.id}", expires_at=now + timedelta(hours=1)))
    _db.session.commit()
    html = client.get("/dashboard").get_data(as_text=True)

    # independently, from the seed
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)  # the supervisor's zone: UTC
    c1, c2, c3, c4 = (present[k] for k in ("c1", "c2", "c3", "c4"))
    expected_queue = {
        "open": {c1, c2, c3, busy.id, acked.id},
        "unassigned": {c1, acked.id},
        "messages_in": {c1, c3, busy.id, acked.id},  # c2's is 3 h old; merged's is in no list
        "replies_out": {c2, busy.id, helped.id},  # the acknowledgement is no reply
    }
    ann_today = {cid for cid, when in ((c2, ago(30)), (busy.id, ago(10)), (helped.id, ago(5)), (other.id, ago(20)),
                                       (c4, now - timedelta(hours=26))) if when >= start}
    expected_agent = {
        ann.id: {"open": {c2, busy.id, other.id}, "load": {c2, busy.id, other.id}, "replies_today": ann_today},
        bob.id: {"open": {c3}, "load": {c3, helped.id}, "replies_today": set()},
    }
    scope = f'data-queue="{billing.id}"'
    for name, conversations in expected_queue.items():
        text, href = figure(html, scope, name)
        assert text == str(len(conversations)), name
        assert listed(client, href) == conversations, name
    for agent_id, figures in expected_agent.items():
        for name, conversations in figures.items():
            text, href = figure(html, f'data-agent="{agent_id}"', name)
            assert text.split(" / ")[0] == str(len(conversations)), (agent_id, name)
            assert listed(client, href) == conversations, (agent_id, name)
    assert figure(html, f'data-agent="{bob.id}"', "load")[0] == "2 / 2"

    # people, not conversations: the Dashboard's agents table, of only the agents behind the figure
    for name, agents in (("signed_in", {ann.id, bob.id}), ("available", {ann.id}), ("at_capacity", {bob.id})):
        text, href = figure(html, scope, name)
        assert text == str(len(agents)), name
        assert href.startswith(f"/dashboard?queue={billing.id}&agents={name}")
        page = client.get(href).get_data(as_text=True)
        table = page[page.index('id="dash-agents"'):]
        assert {int(a) for a in re.findall(r'data-agent="(\d+)"', table)} == agents, name
        assert f'hx-get="/dashboard?queue={billing.id}&amp;agents={name}"' in page  # the live refresh keeps it


def test_the_activity_filters_take_hours_today_and_a_time(client, login_as, present):
    """`received_since=` / `replied_since=`: "2h", "today", an ISO time; one not understood is left out."""
    login_as("supervisor")
    now, billing = present["now"], present["billing"]
    base = f"/inbox/?view=all&queue={billing.id}&status="
    c1, c2, c3, c4 = (present[k] for k in ("c1", "c2", "c3", "c4"))
    assert listed(client, base + "&received_since=4h") == {c1, c2, c3}
    since = (now - timedelta(minutes=40)).isoformat()
    assert listed(client, base + "&received_since=" + since.replace("+", "%2B")) == {c3}
    assert listed(client, base + "&replied_since=2h") == {c2}
    assert listed(client, base + "&replied_since=nonsense") == {c1, c2, c3, c4}
    page = client.get(base + "&received_since=1h").get_data(as_text=True)
    assert '<label for="filter-received_since">Customer wrote</label>' in page
    assert '<option value="1h" selected>In the last hour</option>' in page
