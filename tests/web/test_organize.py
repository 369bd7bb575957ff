"""Organising conversations (issue 16): tags with suggestions, priority, the inbox's filters (assignee, tag,
priority, address, unread) that keep each other and survive switching tabs, the priority sort, snooze, merge
and split."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from app.blobs import blob_store
from app.inbox.lists import InboxFilters, list_inbox
from app.runtime.ingest import RawItem, ingest
from app.models.inbox import Conversation, Message
from app.models.organize import ConversationTag
from app.runtime.snooze import wake_due_snoozes
from tests.factories import PASSWORD, make_address, make_conversation, make_message, make_queue, make_user
from tests.helpers import csrf_token

NOW = datetime.now(timezone.utc).replace(microsecond=0)


def _signed_in(app, user):
    client = app.test_client()
    token = csrf_token(client)
    assert client.post("/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token}).status_code == 302
    return client


@pytest.fixture
def ws(app, db):
    alex = make_user("agent", email="alex@example.test", name="Alex Agent")
    bea = make_user("agent", email="bea@example.test", name="Bea Agent")
    support = make_queue("Support", members=[alex, bea])
    help_ = make_address("help@mail.pigeonhole.test", queues=[support])
    sales = make_address("sales@mail.pigeonhole.test", queues=[support])
    client = _signed_in(app, alex)
    token = csrf_token(client, "/inbox/")
    return {"alex": alex, "bea": bea, "support": support, "help": help_, "sales": sales, "client": client,
            "h": {"HX-Request": "true", "X-CSRFToken": token}, "token": token}


def _conv(ws, subject, *, address=None, assignee=None, hours_ago=1, email="carol@example.com", status="open"):
    conversation = make_conversation(queue=ws["support"], address=address or ws["help"], subject=subject,
                                     assignee=assignee, contact_email=email, status=status,
                                     when=NOW - timedelta(hours=hours_ago))
    make_message(conversation, text=f"About {subject}", when=NOW - timedelta(hours=hours_ago))
    return conversation


def _post(ws, path, **data):
    return ws["client"].post(path, data=data, headers=ws["h"])


def _subjects(html):
    return re.findall(r'<td class="subject"><a href="/inbox/c/\d+">([^<]+)</a>', html)


def test_tags_are_typed_with_suggestions_added_removed_and_the_same_as_flows(ws, db):
    first, second = _conv(ws, "Parcel"), _conv(ws, "Refund")
    answer = _post(ws, f"/inbox/c/{first.id}/tags", tag="  Damaged ,  VIP ")
    assert answer.status_code == 200 and '<li class="tag">damaged' in answer.get_data(as_text=True)
    _post(ws, f"/inbox/c/{second.id}/tags", tag="damaged")
    db.session.expire_all()
    assert db.session.get(Conversation, first.id).tags == ["damaged", "vip"]
    assert set(db.session.scalars(select(ConversationTag.tag).where(ConversationTag.conversation_id == first.id))) \
        == {"damaged", "vip"}
    # Suggestions: the tags in use starting with what is typed, most used first.
    options = ws["client"].get("/inbox/tags/suggest?tag=", headers=ws["h"]).get_data(as_text=True)
    assert options.index('value="damaged"') < options.index('value="vip"')
    assert 'value="vip"' not in ws["client"].get("/inbox/tags/suggest?tag=Da", headers=ws["h"]).get_data(as_text=True)
    too_long = _post(ws, f"/inbox/c/{first.id}/tags", tag="x" * 51)
    assert too_long.status_code == 422 and "at most 50 characters" in too_long.get_data(as_text=True)
    empty = _post(ws, f"/inbox/c/{first.id}/tags", tag=" , ")
    assert empty.status_code == 422 and "Type a tag first." in empty.get_data(as_text=True)
    _post(ws, f"/inbox/c/{first.id}/tags/remove", tag="VIP")
    db.session.expire_all()
    assert db.session.get(Conversation, first.id).tags == ["damaged"]
    # Filter by tag, and search by tag ("tag:damaged" in the search field).
    assert set(_subjects(ws["client"].get("/inbox/?view=all&tag=damaged").get_data(as_text=True))) == {"Parcel", "Refund"}
    assert _subjects(ws["client"].get("/inbox/?view=all&q=tag:damaged+refund").get_data(as_text=True)) == ["Refund"]
    assert _subjects(ws["client"].get("/inbox/?view=all&tag=vip").get_data(as_text=True)) == []


def test_priority_is_set_sorted_and_filtered(ws, db):
    low, urgent, normal = _conv(ws, "Low one", hours_ago=1), _conv(ws, "Urgent one", hours_ago=3), \
        _conv(ws, "Normal one", hours_ago=2)
    _post(ws, f"/inbox/c/{low.id}/priority", priority="-1")
    answer = _post(ws, f"/inbox/c/{urgent.id}/priority", priority="2")
    assert answer.status_code == 200 and '<option value="2" selected>Urgent</option>' in answer.get_data(as_text=True)
    bad = _post(ws, f"/inbox/c/{normal.id}/priority", priority="7")
    assert bad.status_code == 422 and "Choose low, normal, high or urgent." in bad.get_data(as_text=True)
    page = ws["client"].get("/inbox/?view=all").get_data(as_text=True)
    assert _subjects(page) == ["Low one", "Normal one", "Urgent one"]
    assert '<span class="badge priority-2">Urgent</span>' in page
    assert _subjects(ws["client"].get("/inbox/?view=all&sort=priority").get_data(as_text=True)) == [
        "Urgent one", "Normal one", "Low one"]
    assert _subjects(ws["client"].get("/inbox/?view=all&priority=2").get_data(as_text=True)) == ["Urgent one"]


def test_the_priority_sort_pages_with_its_own_cursor(ws, db):
    made = [_conv(ws, f"C{i}", hours_ago=i + 1) for i in range(5)]
    for c, p in zip(made, (0, 2, 1, 2, -1)):
        c.priority = p
    db.session.commit()
    seen, cursor = [], None
    while True:
        page = list_inbox(ws["alex"], limit=2, cursor=cursor, filters=InboxFilters(sort="priority"))
        seen += [r.conversation.subject for r in page.rows]
        if not page.next_cursor:
            break
        cursor = page.next_cursor
    assert seen == ["C1", "C3", "C2", "C0", "C4"]


def test_a_tags_pages_follow_priority_and_activity_changed_after_tagging(ws, db):
    """A tag's rows keep copies of their conversation's sort keys (migration 0037, kept by triggers): they follow
    every later change, so the tag's pages list the same conversations in the same order as the unfiltered
    list does, page after page, in both sorts."""
    made = [_conv(ws, f"T{i}", hours_ago=i + 1) for i in range(6)]
    _conv(ws, "Untagged", hours_ago=0)
    for c in made:
        _post(ws, f"/inbox/c/{c.id}/tags", tag="vip")
    for c, p in zip(made, (0, 2, 1, 2, -1, 0)):  # after tagging: the copies must follow
        _post(ws, f"/inbox/c/{c.id}/priority", priority=str(p))
    made[4].last_message_at = NOW + timedelta(minutes=5)  # new activity (as ingest and sending write it)
    db.session.commit()
    db.session.expire_all()
    copies = {t.conversation_id: (t.sort_priority, t.sort_last_at) for t in db.session.scalars(select(ConversationTag))}
    assert copies == {c.id: (c.priority, c.last_message_at) for c in made}

    def pages(**filters):
        seen, cursor = [], None
        while True:
            page = list_inbox(ws["alex"], limit=2, cursor=cursor, filters=InboxFilters(**filters))
            seen += [r.conversation.subject for r in page.rows]
            if not page.next_cursor:
                return seen
            cursor = page.next_cursor

    assert pages(tag="vip", sort="priority") == ["T1", "T3", "T2", "T0", "T5", "T4"]
    assert pages(tag="vip") == ["T4", "T0", "T1", "T2", "T3", "T5"]
    assert pages(tag="vip") == [s for s in pages() if s != "Untagged"]
    _post(ws, f"/inbox/c/{made[1].id}/tags/remove", tag="vip")
    assert pages(tag="vip", sort="priority") == ["T3", "T2", "T0", "T5", "T4"]


def test_a_tags_pages_follow_status_queue_and_assignee_changed_after_tagging(ws, db):
    """A tag's rows also copy their conversation's status, queue and assignee (migration 0039, kept by triggers),
    which a tag's page tests before it looks the conversation up: after a resolve, a transfer out of the agent's
    queues or an assignment, the tag's pages (both sorts, each status, each view) list exactly what the unfiltered
    list does."""
    alex, bea = ws["alex"], ws["bea"]
    other = make_queue("Elsewhere", members=[bea])
    made = [_conv(ws, f"T{i}", hours_ago=i + 1) for i in range(5)]
    for c in made:
        _post(ws, f"/inbox/c/{c.id}/tags", tag="vip")
    made[0].status = "resolved"
    made[1].queue_id = other.id  # out of Alex's queues
    made[2].queue_id, made[2].assignee_id = other.id, alex.id  # another queue, but Alex's own
    made[3].assignee_id = bea.id
    db.session.commit()
    db.session.expire_all()
    copies = {t.conversation_id: (t.sort_status, t.sort_queue_id, t.sort_assignee_id)
              for t in db.session.scalars(select(ConversationTag))}
    assert copies == {c.id: (c.status, c.queue_id, c.assignee_id) for c in made}

    def subjects(user, view="all", status="open", **filters):
        return [r.conversation.subject for r in list_inbox(user, view=view, status=status,
                                                           filters=InboxFilters(**filters)).rows]

    assert subjects(alex, tag="vip", sort="priority") == ["T2", "T3", "T4"]
    assert subjects(alex, tag="vip") == ["T2", "T3", "T4"]
    assert subjects(alex, status="resolved", tag="vip") == ["T0"]
    assert subjects(alex, status=None, tag="vip", sort="priority") == ["T0", "T2", "T3", "T4"]
    assert subjects(alex, view="mine", tag="vip") == ["T2"]
    assert subjects(alex, view="unassigned", tag="vip") == ["T4"]
    assert subjects(bea, status=None, tag="vip") == ["T0", "T1", "T2", "T3", "T4"]  # both queues hers
    for view in ("all", "mine", "unassigned"):
        for status in ("open", "resolved", None):
            for user in (alex, bea):
                unfiltered = [s for s in subjects(user, view, status) if s in {c.subject for c in made}]
                assert subjects(user, view, status, tag="vip", sort="priority") == unfiltered
                assert subjects(user, view, status, tag="vip") == unfiltered


def test_filters_combine_and_are_kept_by_the_view_tabs_and_load_more(ws, db, app):
    alex, bea = ws["alex"], ws["bea"]
    target = _conv(ws, "Target", address=ws["sales"], assignee=bea)
    _conv(ws, "Other address", address=ws["help"], assignee=bea)
    _conv(ws, "Other agent", address=ws["sales"], assignee=alex)
    for c in db.session.scalars(select(Conversation)):
        c.priority = 1
    db.session.commit()
    _post(ws, f"/inbox/c/{target.id}/tags", tag="vip")
    client = ws["client"]
    url = f"/inbox/?view=all&assignee={bea.id}&address={ws['sales'].id}&priority=1&tag=vip"
    page = client.get(url).get_data(as_text=True)
    assert _subjects(page) == ["Target"]
    tabs = re.search(r'<ul id="view-tabs".*?</ul>', page, re.S).group(0)
    for link in re.findall(r'href="(/inbox/\?[^"]+)"', tabs):
        link = link.replace("&amp;", "&")
        assert f"assignee={bea.id}" in link and f"address={ws['sales'].id}" in link and "priority=1" in link \
            and "tag=vip" in link
    # The filters' own fields show them (the page reloads with them).
    assert f'<option value="{bea.id}" selected>Bea Agent</option>' in page and 'value="vip"' in page
    # Filtered results swapped in by HTMX bring the tabs again, with the filters.
    fragment = client.get(url, headers={"HX-Request": "true"}).get_data(as_text=True)
    assert 'id="view-tabs"' in fragment and 'hx-swap-oob="true"' in fragment
    # Load more keeps them too.
    app.config["INBOX_PAGE_SIZE"] = 1
    more = client.get("/inbox/?view=all&status=open&priority=1").get_data(as_text=True)
    more_url = re.search(r'hx-get="(/inbox/\?[^"]*cursor=[^"]+)"', more).group(1).replace("&amp;", "&")
    assert "priority=1" in more_url


def test_unread_filter_lists_only_activity_the_user_has_not_seen(ws, db):
    read, _unread = _conv(ws, "Read"), _conv(ws, "Unread")
    ws["client"].get(f"/inbox/c/{read.id}")
    assert _subjects(ws["client"].get("/inbox/?view=all&unread=1").get_data(as_text=True)) == ["Unread"]
    later = datetime.now(timezone.utc) + timedelta(seconds=5)
    make_message(read, text="Another question", when=later)
    read.last_message_at = later
    db.session.commit()
    assert set(_subjects(ws["client"].get("/inbox/?view=all&unread=1").get_data(as_text=True))) == {"Read", "Unread"}


def test_snooze_until_a_time_returns_it_to_the_agents_mine_view_when_due(ws, db):
    conversation = _conv(ws, "Later")
    answer = _post(ws, f"/inbox/c/{conversation.id}/snooze", until="time",
                   until_time=(NOW + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"))
    assert answer.status_code == 200 and "Pending until" in answer.get_data(as_text=True)
    db.session.expire_all()
    snoozed = db.session.get(Conversation, conversation.id)
    assert snoozed.status == "pending" and snoozed.snoozed_until is not None and snoozed.assignee_id is None
    assert _subjects(ws["client"].get("/inbox/?view=mine").get_data(as_text=True)) == []
    past = _post(ws, f"/inbox/c/{conversation.id}/snooze", until="time", until_time="2020-01-01T09:00")
    assert past.status_code == 422 and "Choose a time in the future." in past.get_data(as_text=True)
    assert wake_due_snoozes(NOW + timedelta(hours=1)) == 0
    assert wake_due_snoozes(NOW + timedelta(hours=3)) == 1
    assert wake_due_snoozes(NOW + timedelta(hours=3)) == 0  # once
    db.session.expire_all()
    woken = db.session.get(Conversation, conversation.id)
    assert (woken.status, woken.snoozed_until, woken.assignee_id) == ("open", None, ws["alex"].id)
    assert _subjects(ws["client"].get("/inbox/?view=mine").get_data(as_text=True)) == ["Later"]
    assert "The snooze ended: open again" in ws["client"].get(f"/inbox/c/{conversation.id}").get_data(as_text=True)


def test_snooze_until_the_customer_answers_reopens_on_their_reply(ws, db, app):
    conversation = _conv(ws, "Waiting for you")
    first = db.session.scalars(select(Message).where(Message.conversation_id == conversation.id)).first()
    first.message_id = "<first@example.com>"
    db.session.commit()
    page = _post(ws, f"/inbox/c/{conversation.id}/snooze", until="reply").get_data(as_text=True)
    assert "Pending until the customer answers" in page
    assert wake_due_snoozes(NOW + timedelta(days=400)) == 0  # no time: only the reply wakes it
    raw = (b"From: carol@example.com\r\nTo: help@mail.pigeonhole.test\r\nSubject: Re: Waiting for you\r\n"
           b"Message-ID: <second@example.com>\r\nIn-Reply-To: <first@example.com>\r\n\r\nHere it is.\r\n")
    ingest(ws["help"].id, [RawItem(blob_store().put(raw), len(raw), "cli", "test", raw=raw)])
    db.session.expire_all()
    assert db.session.get(Conversation, conversation.id).status == "open"


def test_merge_interleaves_the_threads_by_time_and_the_merged_one_leads_to_the_target(ws, db):
    target = _conv(ws, "Parcel late", hours_ago=10)
    source = _conv(ws, "Parcel still late", hours_ago=5)
    make_message(target, text="Target reply later", when=NOW - timedelta(hours=2))
    make_message(source, text="Source in between", when=NOW - timedelta(hours=4))
    _post(ws, f"/inbox/c/{source.id}/tags", tag="late")
    someone_else = _conv(ws, "Other customer", email="dave@example.com")
    page = ws["client"].get(f"/inbox/c/{source.id}").get_data(as_text=True)
    assert f'<option value="{target.id}">Parcel late' in page and f'value="{someone_else.id}"' not in page
    refused = _post(ws, f"/inbox/c/{source.id}/merge", target=someone_else.id)
    assert refused.status_code == 422 and "same customer" in refused.get_data(as_text=True)
    merged = _post(ws, f"/inbox/c/{source.id}/merge", target=target.id)
    assert merged.status_code == 204 and merged.headers["HX-Redirect"] == f"/inbox/c/{target.id}"
    page = ws["client"].get(f"/inbox/c/{target.id}").get_data(as_text=True)
    order = [page.index(t) for t in ("About Parcel late", "About Parcel still late", "Source in between",
                                     "Target reply later")]
    assert order == sorted(order)
    assert f"Alex Agent merged “Parcel still late” (#{source.id}) into this conversation" in page
    assert "Alex Agent added the tag late" in page  # the merged one's trail came along
    db.session.expire_all()
    assert db.session.get(Conversation, target.id).tags == ["late"]
    gone = ws["client"].get(f"/inbox/c/{source.id}")
    assert gone.status_code == 302 and gone.headers["Location"].endswith(f"/inbox/c/{target.id}")
    assert "Parcel still late" not in _subjects(ws["client"].get("/inbox/?view=all&status=").get_data(as_text=True))


def test_mail_threaded_to_a_merged_conversation_lands_in_the_target(ws, db):
    target, source = _conv(ws, "One", hours_ago=3), _conv(ws, "Two", hours_ago=2)
    _post(ws, f"/inbox/c/{source.id}/merge", target=target.id)
    db.session.expire_all()
    token = db.session.get(Conversation, source.id).token
    raw = (b"From: carol@example.com\r\nTo: help@mail.pigeonhole.test\r\nSubject: Re: Two\r\n"
           b"Message-ID: <third@example.com>\r\nIn-Reply-To: <ph." + token.encode() + b".abc@mail.pigeonhole.test>\r\n"
           b"\r\nStill there?\r\n")
    [result] = ingest(ws["help"].id, [RawItem(blob_store().put(raw), len(raw), "cli", "test", raw=raw)])
    assert result.conversation_id == target.id


def test_split_moves_one_message_into_a_new_conversation(ws, db):
    conversation = _conv(ws, "Two questions", hours_ago=5)
    other = make_message(conversation, text="A separate question about my invoice", subject="Invoice",
                         when=NOW - timedelta(hours=1))
    answer = _post(ws, f"/inbox/m/{other.id}/split")
    assert answer.status_code == 204
    new_id = int(answer.headers["HX-Redirect"].rsplit("/", 1)[1])
    db.session.expire_all()
    new = db.session.get(Conversation, new_id)
    assert (new.subject, new.contact_id, new.queue_id) == ("Invoice", conversation.contact_id, conversation.queue_id)
    assert db.session.get(Message, other.id).conversation_id == new_id
    page = ws["client"].get(f"/inbox/c/{new_id}").get_data(as_text=True)
    assert "A separate question about my invoice" in page and "split this message from “Two questions”" in page
    old = ws["client"].get(f"/inbox/c/{conversation.id}").get_data(as_text=True)
    assert "A separate question" not in old and f"into “Invoice” (#{new_id})" in old
    [first] = db.session.scalars(select(Message).where(Message.conversation_id == conversation.id))
    only = _post(ws, f"/inbox/m/{first.id}/split")
    assert only.status_code == 422 and "only message" in only.get_data(as_text=True)


def test_the_cron_tick_wakes_a_due_snooze(ws, db):
    from app.cron import tick

    conversation = _conv(ws, "Tick")
    conversation.status, conversation.snoozed_until = "pending", NOW - timedelta(minutes=1)
    conversation.snoozed_by_id = ws["bea"].id
    db.session.commit()
    tick()
    db.session.expire_all()
    woken = db.session.get(Conversation, conversation.id)
    assert (woken.status, woken.assignee_id) == ("open", ws["bea"].id)


def test_snooze_presets_and_a_missing_time_say_what_to_do(ws, db):
    conversation = _conv(ws, "Presets")
    missing = _post(ws, f"/inbox/c/{conversation.id}/snooze", until="time", until_time="")
    assert missing.status_code == 422 and "Type the date and time to snooze until." in missing.get_data(as_text=True)
    later = _post(ws, f"/inbox/c/{conversation.id}/snooze", until="later")
    assert later.status_code == 200
    db.session.expire_all()
    until = db.session.get(Conversation, conversation.id).snoozed_until
    assert timedelta(hours=2, minutes=59) < until - datetime.now(timezone.utc) <= timedelta(hours=3)
    assert "Alex Agent snoozed this until " in ws["client"].get(f"/inbox/c/{conversation.id}").get_data(as_text=True)


def test_a_snoozed_row_says_until_when(ws, db):
    conversation = _conv(ws, "Row snoozed")
    when = (NOW + timedelta(days=2)).strftime("%Y-%m-%d") + " 09:30"
    _post(ws, f"/inbox/c/{conversation.id}/snooze", until="time", until_time=when.replace(" ", "T"))
    html = ws["client"].get("/inbox/?view=all&status=pending").get_data(as_text=True)
    assert re.search(r'status-pending">pending</span>\s*<span class="muted small snoozed">until <time[^>]*>'
                     + when + "</time>", html)
    far = _post(ws, f"/inbox/c/{conversation.id}/snooze", until="time", until_time="2099-01-02T09:30")
    assert far.status_code == 422 and "within a year" in far.get_data(as_text=True)


def _facts(db, cid):
    from app.models.reports import ConversationFacts

    db.session.expire_all()
    return db.session.get(ConversationFacts, cid)


def test_merge_and_split_recount_the_reports_facts(ws, db):
    from app.runtime.backfill import backfill

    target = _conv(ws, "Parcel late", hours_ago=10)
    source = _conv(ws, "Parcel still late", hours_ago=5)
    make_message(source, text="And again", when=NOW - timedelta(hours=4))
    make_message(source, direction="out", author=ws["alex"], text="Looking", when=NOW - timedelta(hours=3))
    backfill()
    _facts(db, source.id).first_response_breached = True  # as the SLA judged it
    _facts(db, target.id).first_response_breached = False
    db.session.commit()
    assert _post(ws, f"/inbox/c/{source.id}/merge", target=target.id).status_code == 204
    merged = _facts(db, target.id)
    assert _facts(db, source.id) is None  # the merged one leaves the reports
    assert (merged.messages_in, merged.reply_count, merged.first_response_breached) == (3, 1, True)
    assert merged.first_customer_message_at == NOW - timedelta(hours=10)
    assert merged.first_response_at == NOW - timedelta(hours=3)

    moved = db.session.scalar(select(Message).where(Message.text == "And again"))
    answer = _post(ws, f"/inbox/m/{moved.id}/split")
    new_id = int(answer.headers["HX-Redirect"].rsplit("/", 1)[1])
    new, old = _facts(db, new_id), _facts(db, target.id)
    assert (new.messages_in, new.first_customer_message_at) == (1, NOW - timedelta(hours=4))
    assert old.messages_in == 2
    # the backfill counts the same from the messages
    expected = {cid: (_facts(db, cid).messages_in, _facts(db, cid).reply_count) for cid in (target.id, new_id)}
    backfill()
    assert {cid: (_facts(db, cid).messages_in, _facts(db, cid).reply_count) for cid in expected} == expected
    assert _facts(db, source.id) is None


def test_snooze_and_its_end_reach_the_reports_facts(ws, db):
    from app.runtime.backfill import backfill

    conversation = _conv(ws, "Later", status="resolved")
    backfill()
    assert _facts(db, conversation.id).status == "resolved"
    _post(ws, f"/inbox/c/{conversation.id}/snooze", until="time",
          until_time=(NOW + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"))
    snoozed = _facts(db, conversation.id)
    assert (snoozed.status, snoozed.resolved_at, snoozed.reopened_count) == ("pending", None, 1)
    assert wake_due_snoozes(NOW + timedelta(hours=3)) == 1
    woken = _facts(db, conversation.id)
    assert (woken.status, woken.agent_id) == ("open", ws["alex"].id)
