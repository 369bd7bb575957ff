"""Workspace services on the real database: permissions, inbox lists, search, drafts, sending."""
from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone

import pytest
import redis
from sqlalchemy import select

from app.inbox import presence
from app.inbox.access import InvalidAction, NotFound, get_attachment, get_conversation, get_message
from app.inbox.actions import add_note, assign, set_status, transfer
from app.inbox.addresses import sending_addresses
from app.inbox.drafts import (add_draft_attachment, get_draft, remove_draft_attachment, save_draft,
                              start_draft, start_new_mail)
from app.inbox.lists import list_drafts, list_inbox, mark_seen, view_counts
from app.inbox.sending import DraftInvalid, NewerMessage, retry_delivery, send_draft
from app.models.inbox import Attachment, Conversation, Draft
from app.queues import get_queue
from app.responses import services as responses
from tests.factories import (make_address, make_conversation, make_message, make_queue, make_response,
                             make_user)

NOW = datetime.now(timezone.utc)


@pytest.fixture
def world(db):
    agent = make_user("agent", name="Alex Agent")
    other = make_user("agent", name="Olga Other")
    queue = make_queue("Support", members=[agent])
    secret = make_queue("Secret", members=[other])
    address = make_address("help@mail.pigeonhole.test", queues=[queue], forwarded_from="help@acme.test")
    return {"agent": agent, "other": other, "queue": queue, "secret": secret, "address": address}


def test_an_agent_never_sees_or_downloads_another_queues_conversation(app, world):
    mine = make_conversation(queue=world["queue"], address=world["address"], subject="Mine")
    theirs = make_conversation(queue=world["secret"], address=world["address"], subject="Theirs")
    assigned = make_conversation(queue=world["secret"], address=world["address"], subject="Assigned to me",
                                 assignee=world["agent"])
    hidden = make_message(theirs, attachments=[("secret.pdf", "application/pdf", b"%PDF secret")])
    attachment = hidden.attachments[0]
    agent = world["agent"]
    assert {r.conversation.subject for r in list_inbox(agent).rows} == {"Mine", "Assigned to me"}
    with pytest.raises(NotFound):
        get_conversation(agent, theirs.id)
    with pytest.raises(NotFound):
        get_message(agent, hidden.id)
    with pytest.raises(NotFound):
        get_attachment(agent, attachment.id)
    with pytest.raises(NotFound):
        start_draft(agent, theirs.id, "reply")
    assert get_conversation(agent, assigned.id).id == assigned.id
    assert get_attachment(world["other"], attachment.id).filename == "secret.pdf"
    supervisor = make_user("supervisor")
    assert len(list_inbox(supervisor).rows) == 3
    assert get_conversation(agent, mine.id)


def test_views_filters_and_keyset_pagination(app, world):
    agent = world["agent"]
    convs = [make_conversation(queue=world["queue"], address=world["address"], subject=f"C{i}",
                               when=NOW - timedelta(minutes=10 - i),
                               assignee=agent if i % 2 else None, status="pending" if i == 4 else "open")
             for i in range(6)]
    page1 = list_inbox(agent, status=None, limit=2)
    assert [r.conversation.subject for r in page1.rows] == ["C5", "C4"] and page1.next_cursor
    # New mail arrives between pages: the next page neither repeats nor skips a row.
    make_conversation(queue=world["queue"], address=world["address"], subject="New", when=NOW)
    page2 = list_inbox(agent, status=None, limit=2, cursor=page1.next_cursor)
    page3 = list_inbox(agent, status=None, limit=2, cursor=page2.next_cursor)
    assert [r.conversation.subject for r in page2.rows + page3.rows] == ["C3", "C2", "C1", "C0"]
    assert page3.next_cursor is None
    fresh = list_inbox(agent, status=None, after=page1.newest_cursor)
    assert [r.conversation.subject for r in fresh.rows] == ["New"] and fresh.next_cursor is None
    assert {r.conversation.subject for r in list_inbox(agent, view="mine", status=None).rows} == {"C1", "C3", "C5"}
    assert "C4" not in {r.conversation.subject for r in list_inbox(agent, view="mine").rows}
    assert {r.conversation.subject for r in list_inbox(agent, view="unassigned").rows} == {"C0", "C2", "New"}
    assert list_inbox(agent, queue_id=world["secret"].id).rows == []
    counts = view_counts(agent)
    assert counts == {"all": 6, "mine": 3, "unassigned": 3, "drafts": 0}
    for bad in ({"view": "nope"}, {"status": "gone"}, {"cursor": "garbage"}):
        with pytest.raises(InvalidAction):
            list_inbox(agent, **bad)
    assert convs


def test_rows_carry_snippet_unread_draft_and_failure_markers(app, db, world):
    agent = world["agent"]
    conv = make_conversation(queue=world["queue"], address=world["address"], when=NOW - timedelta(hours=1))
    make_message(conv, text="First words of the customer", when=NOW - timedelta(minutes=30))
    make_message(conv, direction="note", text="internal", when=NOW - timedelta(minutes=20))
    row = list_inbox(agent).rows[0]
    assert row.snippet == "First words of the customer" and row.unread and not row.has_draft
    mark_seen(agent.id, conv.id)
    draft = start_draft(agent, conv.id, "reply")
    db.session.commit()
    assert not list_inbox(agent).rows[0].has_draft  # a composer opened, nothing written: no marker
    save_draft(agent, draft.id, body="<p>Dear Carol,</p>")
    make_message(conv, direction="out", text="ours", delivery_status="failed", delivery_error="550 no such user",
                 when=NOW - timedelta(minutes=40))
    db.session.commit()
    row = list_inbox(agent).rows[0]
    assert not row.unread and row.has_draft and row.delivery_failed


def test_the_rows_preview_follows_every_write(app, db, world):
    """A row shows the start of the newest customer or agent message (never a note or an automatic reply),
    whatever wrote it: a reply, an edit, a removal, a merge, a split."""
    from app.inbox.merging import merge, split

    agent = world["agent"]
    conv = make_conversation(queue=world["queue"], address=world["address"], contact_email="kim@customer.example")
    other = make_conversation(queue=world["queue"], address=world["address"], contact_email="kim@customer.example",
                              when=NOW - timedelta(hours=2))
    make_message(conv, text="Where is my\n  parcel?", when=NOW - timedelta(minutes=30))
    reply = make_message(conv, direction="out", text="It left today.", when=NOW - timedelta(minutes=20))
    add_note(agent, conv.id, "<p>Check the depot</p>")
    auto = make_message(conv, direction="out", text="We got your mail.", when=NOW - timedelta(minutes=10))
    db.session.commit()
    assert list_inbox(agent, status=None).rows[0].snippet == "We got your mail."
    auto.classification = "auto_reply"  # as ingest marks one
    make_message(other, text="A second question.", when=NOW - timedelta(hours=2))
    db.session.commit()

    def snippets():
        return {r.conversation.id: r.snippet for r in list_inbox(agent, status=None).rows}

    assert snippets() == {conv.id: "It left today.", other.id: "A second question."}
    reply.text = "It left the depot today."
    db.session.commit()
    assert snippets()[conv.id] == "It left the depot today."
    db.session.delete(reply)
    db.session.commit()
    assert snippets()[conv.id] == "Where is my parcel?"  # whitespace folded for the row
    merge(agent, other.id, conv.id)
    db.session.commit()
    assert snippets() == {conv.id: "Where is my parcel?"}  # the merged message is older
    later = make_message(conv, text="Any news?", when=NOW - timedelta(minutes=5))
    db.session.commit()
    new = split(agent, later.id)
    db.session.commit()
    assert snippets()[new.id] == "Any news?" and snippets()[conv.id] == "Where is my parcel?"


def test_search_by_address_subject_body_and_prefix_follows_every_write(app, db, world):
    agent = world["agent"]
    a = make_conversation(queue=world["queue"], address=world["address"], subject="Broken umbrella",
                          contact_email="zoe@customer.example")
    b = make_conversation(queue=world["queue"], address=world["address"], subject="Invoice question")
    make_message(a, text="The handle snapped off.", from_addr="zoe@customer.example")
    msg = make_message(b, text="Please send the invoice for order 4711 again.")

    def found(q):
        return {r.conversation.id for r in list_inbox(agent, q=q, status=None).rows}

    assert found("umbrella") == {a.id}
    assert found("snapped handle") == {a.id}
    assert found("inv") == {b.id} == found("inv*")  # every word is a prefix
    assert found("4711") == {b.id}
    assert found("zoe@customer.example") == {a.id}
    assert found("zoe") == {a.id} and found("zo") == {a.id}  # the customer's address by its start
    assert found("nothing-like-this") == set()
    assert found('"; DROP TABLE messages; --') == set()  # quotes and operators are only words
    msg.text = "Replaced completely"
    db.session.commit()
    assert found("4711") == set() and found("replaced") == {b.id}
    db.session.delete(msg)
    db.session.commit()
    assert found("replaced") == set()
    add_note(agent, a.id, "<p>Customer is a VIP</p>")
    db.session.commit()
    assert found("vip") == {a.id}


@pytest.mark.parametrize("walk", [None, 2])
def test_search_windows_reach_every_match_once(app, db, world, monkeypatch, walk):
    """A search lists its matching conversations with the newest messages first; "Search older messages" walks
    the older windows until none is left, and no conversation comes twice. On PostgreSQL, whether a window
    comes from the newest documents read in order or (`walk` 2: too few of them) from the GIN index."""
    from app.inbox import search

    monkeypatch.setattr(search, "MAX_MATCHES", 3)
    if walk:
        monkeypatch.setattr(search, "PG_WALK", walk)
    agent = world["agent"]
    convs = [make_conversation(queue=world["queue"], address=world["address"], subject=f"Case {i}",
                               when=NOW - timedelta(minutes=30 - i)) for i in range(6)]
    by_address = make_conversation(queue=world["queue"], address=world["address"], subject="Hello",
                                   contact_email="gizmo@customer.example")
    hidden = make_conversation(queue=world["secret"], address=world["address"], subject="Not yours")
    make_message(convs[0], text="My gizmo is broken.")  # convs[0]'s oldest message; its newest comes last
    make_message(hidden, text="A gizmo here too, in another queue.")
    for conv in convs[1:]:
        make_message(conv, text=f"The gizmo of {conv.subject} rattles.")
        make_message(conv, text="Nothing to see here.")
    make_message(convs[0], text="Still about that gizmo.")  # the newest message
    make_message(by_address, text="Only the address matches.", from_addr="someone@else.example")

    seen, windows, before = [], 0, None
    while True:
        windows += 1
        page = list_inbox(agent, q="gizmo", status=None, limit=2, before=before)
        seen += [r.conversation.id for r in page.rows]
        while page.next_cursor:  # "Load more" within the window
            page = list_inbox(agent, q="gizmo", status=None, limit=2, before=before, cursor=page.next_cursor)
            seen += [r.conversation.id for r in page.rows]
        if page.older_matches is None:
            break
        assert before is None or page.older_matches < before
        before = page.older_matches
    assert sorted(seen) == sorted([c.id for c in convs] + [by_address.id])  # all, once; never the other queue's
    assert windows == 3  # 6 matching conversations in windows of 3: two full ones, then an empty one
    first = list_inbox(agent, q="gizmo", status=None)
    assert [r.conversation.id for r in first.rows][:1] == [by_address.id]  # newest activity first, as ever
    assert {r.conversation.id for r in first.rows} == {by_address.id, convs[0].id, convs[5].id, convs[4].id}
    assert list_inbox(agent, q="nothing-matches", status=None).older_matches is None
    # Another queue's match never takes a place in a window, and a conversation comes by its newest message
    # only: below convs[1]'s newest message are the hidden conversation's and convs[0]'s first one.
    monkeypatch.setattr(search, "MAX_MATCHES", 1)
    newest = {conv.id: max(m.id for m in conv.messages) for conv in convs}
    page = list_inbox(agent, q="gizmo", status=None, before=newest[convs[2].id])
    assert [r.conversation.id for r in page.rows] == [convs[1].id] and page.older_matches == newest[convs[1].id]
    page = list_inbox(agent, q="gizmo", status=None, before=page.older_matches)
    assert page.rows == [] and page.older_matches is None  # nothing older of the agent's: the end


def test_search_finds_a_conversation_by_words_of_different_messages_and_follows_merges(app, db, world):
    """Every word of the query must be in the conversation, each in any of its messages (notes and, on
    SQLite, file names included); the index follows messages moved by a merge and a split."""
    from app.inbox.merging import merge, split

    agent = world["agent"]
    first = make_conversation(queue=world["queue"], address=world["address"], subject="Parcel",
                              contact_email="ann@customer.example")
    second = make_conversation(queue=world["queue"], address=world["address"], subject="Also me",
                               contact_email="ann@customer.example")
    make_message(first, text="My kettle arrived dented.")
    make_message(first, direction="out", text="We will send a replacement.")
    moved = make_message(second, text="The replacement voucher did not work.")
    db.session.commit()

    def found(q):
        return {r.conversation.id for r in list_inbox(agent, q=q, status=None).rows}

    assert found("kettle replacement") == {first.id}  # the customer's word and the agent's
    assert found("kettle voucher") == set()  # not in one conversation (yet)
    assert found("replacement") == {first.id, second.id}
    merge(agent, second.id, first.id)
    db.session.commit()
    assert found("kettle voucher") == {first.id} and found("voucher") == {first.id}
    new = split(agent, moved.id)
    db.session.commit()
    assert found("voucher") == {new.id} and found("kettle voucher") == set() and found("kettle") == {first.id}


def test_a_thread_longer_than_a_search_document_holds_still_takes_mail_and_finds_its_newest_words(app, db, world):
    """A conversation's words beyond what the index holds (PostgreSQL: a tsvector holds at most 1 MB) never
    fail the write of a message: the document keeps the newest words."""
    agent = world["agent"]
    conv = make_conversation(queue=world["queue"], address=world["address"], subject="Long thread")
    make_message(conv, text=" ".join(f"w{i:x}" for i in range(200_000)))  # 1.4 MB of distinct words
    make_message(conv, text="The zebra-striped parcel finally arrived.")
    db.session.commit()
    assert [r.conversation.id for r in list_inbox(agent, q="zebra parcel", status=None).rows] == [conv.id]


def test_a_document_holds_the_newest_messages_of_a_conversation(app, db, world):
    """A conversation's document holds its newest `SEARCH_MESSAGES` messages (bounded work for each message
    written to a long thread): the oldest one's words come back when a newer message goes."""
    agent = world["agent"]
    conv = make_conversation(queue=world["queue"], address=world["address"], subject="Long thread")
    make_message(conv, text="The aardvark case began here.")
    for i in range(99):
        make_message(conv, text=f"Reply number {i}.")
    db.session.commit()

    def found(q):
        return [r.conversation.id for r in list_inbox(agent, q=q, status=None).rows]

    assert found("aardvark") == [conv.id]  # 100 messages: all of them
    last = make_message(conv, text="One more about the okapi.")
    db.session.commit()
    assert found("aardvark") == [] and found("okapi") == [conv.id]  # the 101st: the oldest left the document
    db.session.delete(last)
    db.session.commit()
    assert found("aardvark") == [conv.id] and found("okapi") == []


def test_search_window_holds_only_the_agents_matches(app, db, world, monkeypatch):
    """The first page of a search shows the agent's newest matches even when far more matching
    conversations are ones the agent may not see (or the list filters out)."""
    from app.inbox import search

    monkeypatch.setattr(search, "MAX_MATCHES", 2)
    agent = world["agent"]
    mine = make_conversation(queue=world["queue"], address=world["address"], subject="Mine",
                             when=NOW - timedelta(hours=3))
    make_message(mine, text="The sprocket is loose.", when=NOW - timedelta(hours=3))
    older = make_conversation(queue=world["queue"], address=world["address"], subject="Older", status="resolved",
                              when=NOW - timedelta(hours=2))
    make_message(older, text="A sprocket, long ago.", when=NOW - timedelta(hours=2))
    resolved = make_conversation(queue=world["queue"], address=world["address"], subject="Done", status="resolved")
    for i in range(5):
        hidden = make_conversation(queue=world["secret"], address=world["address"], subject=f"Theirs {i}")
        make_message(hidden, text="Another sprocket story.")
        make_message(resolved, text="Sprocket again.")
    db.session.commit()
    page = list_inbox(agent, q="sprocket", status=None)  # newest: resolved's, the hidden ones, then older's
    assert {r.conversation.id for r in page.rows} == {resolved.id, older.id} and page.older_matches is not None
    page = list_inbox(agent, q="sprocket", status="open")  # the list's own filters apply inside too
    assert [r.conversation.id for r in page.rows] == [mine.id] and page.older_matches is None


def test_search_finds_prefixes_unspaced_scripts_and_attachment_names(app, db, world):
    agent = world["agent"]
    refund = make_conversation(queue=world["queue"], address=world["address"], subject="Money back")
    make_message(refund, text="I would like a refund, please.")
    japanese = make_conversation(queue=world["queue"], address=world["address"], subject="ご注文について")
    make_message(japanese, text="商品の配送状況を教えてください。")
    files = make_conversation(queue=world["queue"], address=world["address"], subject="Papers")
    make_message(files, text="See attached.", attachments=[("Invoice_4711-final.PDF", "application/pdf", b"%PDF")])
    db.session.commit()

    def found(q):
        return {r.conversation.id for r in list_inbox(agent, q=q, status=None).rows}

    assert found("refun") == {refund.id} == found("REFUND please")
    assert found("配送") == {japanese.id} == found("注文")  # in the middle of a run of characters
    assert found("配送 教えて") == {japanese.id} and found("配送 refund") == set()
    assert found("invoice_4711") == {files.id} == found("final.pdf") == found("invoice pdf")
    assert found("4711-final") == {files.id}
    assert found("invoice zzz") == set()
    assert found("vo_c") == set()  # LIKE's "_" is a plain character here, not "any one"


def test_search_windows_merge_file_names_with_the_text(app, db, world, monkeypatch):
    """A file name's match takes its place in the windows among the text's matches, newest first; a message
    matching both counts once; another queue's file never takes a place; every conversation comes once."""
    from app.inbox import search

    monkeypatch.setattr(search, "MAX_MATCHES", 2)
    agent = world["agent"]
    convs = [make_conversation(queue=world["queue"], address=world["address"], subject=f"Case {i}",
                               when=NOW - timedelta(minutes=30 - i)) for i in range(4)]
    hidden = make_conversation(queue=world["secret"], address=world["address"], subject="Not yours")
    make_message(convs[0], text="The widget is bent.")  # the oldest match
    both = make_message(convs[1], text="A widget, see the photo.", attachments=[("widget.jpg", "image/jpeg", b"j")])
    make_message(convs[2], text="See attached.", attachments=[("Widget-Manual.PDF", "application/pdf", b"%PDF")])
    make_message(hidden, text="Ours.", attachments=[("widget-secret.pdf", "application/pdf", b"%PDF")])
    make_message(convs[3], text="Another widget question.")  # the newest match
    db.session.commit()
    seen, windows, before = [], 0, None
    while True:
        windows += 1
        page = list_inbox(agent, q="widget", status=None, before=before)
        seen += [r.conversation.id for r in page.rows]
        if page.older_matches is None:
            break
        before = page.older_matches
    assert sorted(seen) == sorted(c.id for c in convs)  # all four, once; never the other queue's file
    assert windows == 3  # 4 matching messages (one by its text and its file) in windows of 2, then an empty one
    first = list_inbox(agent, q="widget", status=None)
    assert {r.conversation.id for r in first.rows} == {convs[3].id, convs[2].id}  # the file's match is the 2nd
    assert first.older_matches == convs[2].messages[0].id
    second = list_inbox(agent, q="widget", status=None, before=first.older_matches)
    assert {r.conversation.id for r in second.rows} == {convs[1].id, convs[0].id}
    assert second.older_matches == convs[0].messages[0].id and both.id > second.older_matches


def test_a_composer_opened_and_left_is_not_a_draft(app, db, world, monkeypatch):
    """A blank draft (nothing written) is not listed, counted or marked; writing makes it a draft,
    erasing it all makes it blank again; the author's next composer discards blank ones left."""
    from app.inbox import drafts

    agent = world["agent"]
    conv = make_conversation(queue=world["queue"], address=world["address"])
    make_message(conv, text="Where is it?")
    reply = start_draft(agent, conv.id, "reply")
    forward = start_draft(agent, conv.id, "forward")
    new = start_new_mail(agent)
    db.session.commit()
    assert reply.blank and forward.blank and new.blank  # the forwarded text is not the agent's
    assert list_drafts(agent) == [] and view_counts(agent)["drafts"] == 0
    save_draft(agent, forward.id, body=forward.body)  # saved as it opened: still nothing written
    save_draft(agent, new.id, to="zed@example.com", subject="Hello")  # no message yet: as Close judges it
    assert forward.blank and new.blank
    save_draft(agent, reply.id, body="<p>Dear Carol,</p>")
    save_draft(agent, forward.id, to="warehouse@logistics.example")
    db.session.commit()
    assert {d.id for d in list_drafts(agent)} == {reply.id, forward.id} and view_counts(agent)["drafts"] == 2
    save_draft(agent, reply.id, body="<p><br></p>")  # all erased
    db.session.commit()
    assert reply.blank and [d.id for d in list_drafts(agent)] == [forward.id]
    # Left untouched long enough, blank drafts go when the author opens another composer.
    monkeypatch.setattr(drafts, "BLANK_DRAFT_MINUTES", 0)
    latest = start_draft(agent, conv.id, "reply")
    db.session.commit()
    left = {d.id for d in list_drafts(agent, blank=True)}
    assert left == {forward.id, latest.id}  # reply and new (blank) discarded; the written forward kept


def test_words_found_whole_fill_the_window_first(app, db, world, monkeypatch):
    """On SQLite a window takes the words whole when that alone fills it (fast), else as prefixes."""
    from app.inbox import search

    monkeypatch.setattr(search, "MAX_MATCHES", 2)
    agent = world["agent"]
    convs = [make_conversation(queue=world["queue"], address=world["address"], subject=f"Case {i}",
                               when=NOW - timedelta(minutes=30 - i)) for i in range(3)]
    for conv, word in zip(convs, ("umbrella", "umbrella", "umbrellas")):
        make_message(conv, text=f"My {word} broke.", when=conv.last_message_at)
    db.session.commit()

    def found(q):
        return {r.conversation.id for r in list_inbox(agent, q=q, status=None).rows}

    assert found("umbrel") == {convs[2].id, convs[1].id}  # a prefix: the newest two
    expected = {convs[0].id, convs[1].id} if db.engine.dialect.name == "sqlite" else {convs[2].id, convs[1].id}
    assert found("umbrella") == expected


def test_reply_reply_all_and_forward_drafts(app, db, world):
    agent = world["agent"]
    conv = make_conversation(queue=world["queue"], address=world["address"], contact_email="carol@example.com")
    first = make_message(conv, text="one", reply_to="orders@example.com",
                         to_addrs="help@acme.test, Eve <eve@example.com>", cc_addrs="dave@example.com",
                         attachments=[("photo.jpg", "image/jpeg", b"jpegdata")])
    reply = start_draft(agent, conv.id, "reply", first.id)
    assert (reply.to_addrs, reply.cc_addrs, reply.subject) == ("orders@example.com", "", "Re: Where is my parcel?")
    assert reply.from_address_id == world["address"].id and reply.base_message_id == first.id
    everyone = start_draft(agent, conv.id, "reply_all", first.id)
    assert everyone.to_addrs == "orders@example.com"
    assert everyone.cc_addrs == "Eve <eve@example.com>, dave@example.com"
    forward = start_draft(agent, conv.id, "forward", first.id)
    assert forward.to_addrs == "" and forward.subject == "Fwd: Where is my parcel?"
    assert "---------- Forwarded message ---------" in forward.body and "one" in forward.body
    assert [(a["filename"], a["included"]) for a in forward.attachments] == [("photo.jpg", True)]
    save_draft(agent, forward.id, forward_included=set())
    assert forward.attachments[0]["included"] is False
    db.session.commit()
    assert len(list_drafts(agent, conv.id, blank=True)) == 3  # several drafts per conversation
    assert list_drafts(agent, conv.id) == [forward]  # the others hold nothing written yet
    with pytest.raises(InvalidAction):
        start_draft(agent, conv.id, "shout")
    with pytest.raises(NotFound):
        get_draft(world["other"], reply.id)  # a colleague's draft is private


def test_locked_recipients_are_not_changed_by_saving(app, db, world):
    app.config["LOCK_REPLY_RECIPIENTS"] = True
    conv = make_conversation(queue=world["queue"], address=world["address"], contact_email="carol@example.com")
    make_message(conv)
    draft = start_draft(world["agent"], conv.id, "reply")
    save_draft(world["agent"], draft.id, to="attacker@example.com", bcc="x@example.com", subject="Hi")
    assert (draft.to_addrs, draft.bcc_addrs, draft.subject) == ("carol@example.com", "", "Hi")
    forward = start_draft(world["agent"], conv.id, "forward")
    save_draft(world["agent"], forward.id, to="anyone@example.com")
    assert forward.to_addrs == "anyone@example.com"


def test_attachment_limits_are_clear(app, db, world):
    app.config.update(COMPOSER_MAX_ATTACHMENT_BYTES=10, COMPOSER_MAX_ATTACHMENTS=2, COMPOSER_MAX_TOTAL_BYTES=15)
    conv = make_conversation(queue=world["queue"], address=world["address"])
    draft = start_draft(world["agent"], conv.id, "reply")
    add_draft_attachment(world["agent"], draft.id, "C:\\Users\\me\\a.txt", "text/plain", io.BytesIO(b"12345678"))
    assert draft.attachments[0]["filename"] == "a.txt" and draft.attachments[0]["size"] == 8
    with pytest.raises(InvalidAction, match="larger than 10 bytes"):
        add_draft_attachment(world["agent"], draft.id, "big.bin", "", io.BytesIO(b"x" * 11))
    with pytest.raises(InvalidAction, match="add up to 15 bytes"):
        add_draft_attachment(world["agent"], draft.id, "b.txt", "", io.BytesIO(b"x" * 9))
    with pytest.raises(InvalidAction, match="is empty"):
        add_draft_attachment(world["agent"], draft.id, "e.txt", "", io.BytesIO(b""))
    add_draft_attachment(world["agent"], draft.id, "b.txt", "", io.BytesIO(b"1234"))
    with pytest.raises(InvalidAction, match="At most 2 attachments"):
        add_draft_attachment(world["agent"], draft.id, "c.txt", "", io.BytesIO(b"1"))
    remove_draft_attachment(world["agent"], draft.id, 0)
    assert [a["filename"] for a in draft.attachments] == ["b.txt"]
    with pytest.raises(InvalidAction):
        remove_draft_attachment(world["agent"], draft.id, 5)


def test_send_draft_validates_then_queues_the_message_and_deletes_the_draft(app, db, world, redis_server):
    agent = world["agent"]
    conv = make_conversation(queue=world["queue"], address=world["address"], contact_email="carol@example.com")
    asked = make_message(conv, message_id="<q1@example.com>")
    draft = start_draft(agent, conv.id, "reply_all")
    save_draft(agent, draft.id, to="carol@example.com, bad@", cc="", subject="", body="")
    db.session.commit()
    with pytest.raises(DraftInvalid) as invalid:
        send_draft(draft.id, agent.id)
    assert set(invalid.value.errors) == {"to", "subject", "body"}
    assert "“bad@” is not a valid email address." in invalid.value.errors["to"]
    save_draft(agent, draft.id, to="Carol <carol@example.com>", cc="dave@example.com",
               bcc="boss@example.com", subject="Re: Parcel", body="<p>On its <b>way</b><script>x()</script></p>")
    add_draft_attachment(agent, draft.id, "label.pdf", "application/pdf", io.BytesIO(b"%PDF-1"))
    db.session.commit()
    message = send_draft(draft.id, agent.id)
    assert message.direction == "out" and message.delivery_status == "queued" and message.author_id == agent.id
    assert message.to_addrs == "Carol <carol@example.com>" and message.cc_addrs == "dave@example.com"
    # The outbound service rendered it: the platform rule adds the forwarded-from mailbox to Bcc.
    assert message.bcc_addrs == "boss@example.com, help@acme.test" and message.subject == "Re: Parcel"
    assert "<p>On its <b>way</b></p>" in message.html and "script" not in message.html
    assert message.text.startswith("On its way")
    assert message.in_reply_to == "<q1@example.com>" and message.references == "<q1@example.com>"
    assert message.message_id.startswith(f"<ph.{conv.token}.") and message.message_id.endswith("@mail.pigeonhole.test>")
    assert message.from_addr == "Support <help@mail.pigeonhole.test>"
    assert [a.filename for a in db.session.scalars(select(Attachment).where(Attachment.message_id == message.id))] \
        == ["label.pdf"]
    assert db.session.get(Draft, draft.id) is None
    send_queue = get_queue("send", redis.Redis.from_url(redis_server.url))
    assert send_queue.fetch_job(f"send-message-{message.id}") is None  # not before the caller's commit
    db.session.commit()
    job = send_queue.fetch_job(f"send-message-{message.id}")
    assert job.func_name == "jobs.send.send_message" and job.args == [message.id]
    assert asked.id < message.id


def test_sending_over_a_newer_message_needs_confirmation(app, db, world):
    agent = world["agent"]
    conv = make_conversation(queue=world["queue"], address=world["address"], contact_email="carol@example.com")
    make_message(conv)
    draft = start_draft(agent, conv.id, "reply")
    save_draft(agent, draft.id, body="<p>Answer</p>")
    db.session.commit()
    newer = make_message(conv, text="Never mind, found it!")
    with pytest.raises(NewerMessage) as exc:
        send_draft(draft.id, agent.id)
    assert exc.value.message.id == newer.id
    assert send_draft(draft.id, agent.id, confirm_newer=True).delivery_status == "queued"


def test_from_address_must_be_live_and_able_to_send(app, db, world):
    agent = world["agent"]
    inbound_only = make_address("in@mail.pigeonhole.test", usage="inbound", queues=[world["queue"]])
    unpublished = make_address("draft@mail.pigeonhole.test", publish=False, queues=[world["queue"]])
    senders = {a.address for a in sending_addresses(agent)}
    assert senders == {"help@mail.pigeonhole.test"}
    conv = make_conversation(queue=world["queue"], address=inbound_only, contact_email="carol@example.com")
    make_message(conv)
    draft = start_draft(agent, conv.id, "reply")
    assert draft.from_address_id == world["address"].id  # the conversation's address cannot send
    save_draft(agent, draft.id, from_address_id=unpublished.id, subject="S", body="<p>B</p>")
    db.session.commit()
    with pytest.raises(DraftInvalid) as exc:
        send_draft(draft.id, agent.id)
    assert set(exc.value.errors) == {"from_address"}


def test_new_mail_starts_a_conversation_in_the_chosen_queue(app, db, world):
    agent = world["agent"]
    draft = start_new_mail(agent)
    assert draft.kind == "new" and draft.queue_id == world["queue"].id and draft.from_address_id == world["address"].id
    save_draft(agent, draft.id, to="New Customer <new@example.com>", subject="Welcome", body="<p>Hello</p>",
               queue_id=world["secret"].id)
    db.session.commit()
    with pytest.raises(DraftInvalid) as exc:
        send_draft(draft.id, agent.id)
    assert set(exc.value.errors) == {"queue"}  # not one of the agent's queues
    save_draft(agent, draft.id, queue_id=world["queue"].id)
    db.session.commit()
    message = send_draft(draft.id, agent.id)
    conv = db.session.get(Conversation, message.conversation_id)
    assert (conv.subject, conv.queue_id, conv.assignee_id, conv.contact.email, conv.contact.name) == (
        "Welcome", world["queue"].id, agent.id, "new@example.com", "New Customer")


def test_retry_only_failed_messages(app, db, world, redis_server):
    conv = make_conversation(queue=world["queue"], address=world["address"])
    failed = make_message(conv, direction="out", delivery_status="failed", delivery_error="550 5.1.1 unknown user")
    sent = make_message(conv, direction="out", delivery_status="sent")
    with pytest.raises(InvalidAction, match="rendered copy is missing"):
        retry_delivery(failed.id, world["agent"].id)
    db.session.expire_all()
    assert failed.delivery_status == "failed" and failed.delivery_error == "550 5.1.1 unknown user"
    from app.models.inbox import OutgoingMime
    db.session.add(OutgoingMime(message_id=failed.id, data=b"Subject: rendered\r\n\r\nIt ships.\r\n"))
    db.session.commit()
    retried = retry_delivery(failed.id, world["agent"].id)
    assert retried.delivery_status == "queued" and retried.delivery_error is None
    assert not get_queue("send", redis.Redis.from_url(redis_server.url)).fetch_job(f"send-message-{failed.id}")
    db.session.commit()  # the caller commits; the send job is enqueued after that
    assert get_queue("send", redis.Redis.from_url(redis_server.url)).fetch_job(f"send-message-{failed.id}")
    with pytest.raises(InvalidAction):
        retry_delivery(sent.id, world["agent"].id)
    with pytest.raises(NotFound):
        retry_delivery(failed.id, world["other"].id)


def test_assign_transfer_status_and_notes(app, db, world):
    agent, other = world["agent"], world["other"]
    conv = make_conversation(queue=world["queue"], address=world["address"])
    with pytest.raises(InvalidAction, match="not a member of the queue Support"):
        assign(agent, conv.id, other.id)
    assign(agent, conv.id, agent.id)
    assert conv.assignee_id == agent.id
    set_status(agent, conv.id, "pending")
    with pytest.raises(InvalidAction):
        set_status(agent, conv.id, "deleted")
    note = add_note(agent, conv.id, "<p>Called the <b>customer</b></p><img src=x onerror=alert(1)>")
    assert note.direction == "note" and note.delivery_status is None and "onerror" not in note.html
    with pytest.raises(InvalidAction):
        add_note(agent, conv.id, "<p> </p>")
    transfer(agent, conv.id, world["secret"].id)
    assert conv.queue_id == world["secret"].id and conv.assignee_id is None  # not a member there
    db.session.commit()
    with pytest.raises(NotFound):
        get_conversation(agent, conv.id)


def test_presence_shows_others_and_who_is_replying(app, world):
    presence.touch(7, world["agent"].id, "Alex Agent", replying=False)
    presence.touch(7, world["other"].id, "Olga Other", replying=True)
    assert presence.others(7, world["agent"].id) == [{"name": "Olga Other", "replying": True}]
    assert presence.others(7, world["other"].id) == [{"name": "Alex Agent", "replying": False}]
    presence.leave(7, world["other"].id)
    assert presence.others(7, world["agent"].id) == []
    app.config["PRESENCE_SECONDS"] = 0
    presence.touch(8, world["other"].id, "Olga Other", replying=False)
    import time

    time.sleep(0.01)
    assert presence.others(8, world["agent"].id) == []  # stale entries no longer count


def test_presence_of_a_whole_inbox_page_in_one_command(app, world):
    from app.queues import redis_connection

    agent, other = world["agent"], world["other"]
    presence.touch(103, other.id, "Olga Other", replying=False)
    presence.touch(101, other.id, "Olga Other", replying=True)
    presence.touch(101, 4242, "Sam Supervisor", replying=False)
    presence.touch(102, agent.id, "Alex Agent", replying=False)  # only the agent: not shown to them
    ids = list(range(100, 150))
    assert presence.present_in(ids, agent.id) == {
        101: [{"name": "Olga Other", "replying": True}, {"name": "Sam Supervisor", "replying": False}],
        103: [{"name": "Olga Other", "replying": False}]}
    assert presence.present_in(ids, other.id) == {101: [{"name": "Sam Supervisor", "replying": False}],
                                                  102: [{"name": "Alex Agent", "replying": False}]}
    redis_connection(timeout=1.0).script_flush()  # Redis restarted: the script is loaded again
    assert set(presence.present_in(ids, agent.id)) == {101, 103}
    assert presence.present_in([], agent.id) == {}


def test_inbox_presence_needs_no_redis_command_while_the_snapshot_has_none_of_the_page(app, world, monkeypatch):
    """The inbox reads a per-process snapshot of the active set: another process's agent shows up
    once the snapshot is older than SNAPSHOT_SECONDS; this process's own touch shows at once."""
    import json
    import time

    from app.queues import redis_connection

    r = redis_connection(timeout=1.0)
    agent, other = world["agent"], world["other"]
    monkeypatch.setattr(presence, "SNAPSHOT_SECONDS", 0.3)
    presence.touch(201, other.id, "Olga Other", replying=False)
    assert set(presence.present_in([200, 201], agent.id)) == {201}

    def calls() -> dict:
        stats = r.info("commandstats")
        return {name: stats.get(f"cmdstat_{name}", {}).get("calls", 0) for name in ("evalsha", "zrangebyscore")}

    before = calls()
    for _ in range(5):
        assert presence.present_in(list(range(300, 350)), agent.id) == {}
    assert calls() == before  # nobody in these rows, the snapshot says so: no command at all

    # Another process's agent opens conversation 305: written straight to Redis, as its touch would.
    r.hset(presence._key(305), str(other.id), json.dumps({"name": "Olga Other", "replying": True,
                                                          "at": time.time()}))
    r.zadd(presence.ACTIVE_KEY, {"305": time.time()})
    assert presence.present_in([305], agent.id) == {}  # not yet: the snapshot is still fresh
    assert presence.others(305, agent.id) == [{"name": "Olga Other", "replying": True}]  # the panel asks now
    time.sleep(0.35)
    assert presence.present_in([304, 305], agent.id) == {305: [{"name": "Olga Other", "replying": True}]}

    presence.leave(305, other.id)  # this process: at once, though 305 stays in the set until it ages out
    assert presence.present_in([305], agent.id) == {}


def test_placeholders_and_visible_responses(app, db, world):
    agent, other = world["agent"], world["other"]
    agent.nickname = "Al"
    everyone = make_response(title="Hello", body="Dear {{customer.first_name}} {{customer.last_name}} "
                             "({{customer.email}}), {{agent.nickname}} / {{agent.first_name}} {{agent.last_name}} "
                             "<{{agent.email}}>", subject="About {{customer.first_name}}")
    secret = make_response(title="Secret", visible_to_all=False, queue_ids=[world["secret"].id])
    assert [r.title for r in responses.visible_responses(agent)] == ["Hello"]
    assert {r.title for r in responses.visible_responses(other)} == {"Hello", "Secret"}
    assert [r.title for r in responses.visible_responses(agent, "hel")] == ["Hello"]
    values = responses.placeholder_values("Carol <b>Ann</b> Customer", "carol@example.com", agent)
    subject, html = responses.render_response(everyone, values)
    assert subject == "About Carol"
    assert "Dear Carol &lt;b&gt;Ann&lt;/b&gt; Customer (carol@example.com), Al / Alex Agent" in html
    assert f"&lt;{agent.email}&gt;" in html and "<b>" not in html
    # The renderer's names (used by automatic replies) work as well.
    legacy = make_response(title="Legacy", body="Hi {{ customer_name }}, {{agent_name}} from {{ display_name }} "
                           "({{conversation_reference}})")
    values = responses.placeholder_values("Carol Customer", "carol@example.com", agent, address=world["address"],
                                          conversation_id=42)
    assert responses.render_response(legacy, values)[1] == "<p>Hi Carol Customer, Alex Agent from Support (#42)</p>"
    assert secret.group.queue_ids == [world["secret"].id]


def test_demo_seed_gives_a_workable_workspace(app, db):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["demo", "seed"])
    assert first.exit_code == 0 and "3 demo conversations" in first.output
    second = runner.invoke(args=["demo", "seed"])
    assert "demo conversations" not in second.output and "Standard Responses" not in second.output
    from app.models.auth import User

    agent = db.session.scalar(select(User).where(User.email == "agent@demo.test"))
    assert {r.conversation.subject for r in list_inbox(agent).rows} == {
        "Where is my parcel?", "Refund for order 1042"}
    assert [a.address for a in sending_addresses(agent)] == ["support@mail.pigeonhole.test"]
    assert {r.title for r in responses.visible_responses(agent)} == {
        "Thanks for waiting", "Shipping times", "Refund issued"}


def test_reindex_restores_lost_triggers_and_the_index(app, db, world):
    from sqlalchemy import text

    from app.inbox.search import reindex

    conv = make_conversation(queue=world["queue"], address=world["address"], subject="Gadget")
    if db.engine.dialect.name != "sqlite":
        make_message(conv, text="A gadget")
        db.session.execute(text("DELETE FROM conversation_search"))  # as a bulk load with the triggers off would
        db.session.execute(text("UPDATE conversations SET preview = NULL"))
        db.session.commit()
        assert list_inbox(world["agent"], q="gadget", status=None).rows == []
        reindex()
        db.session.commit()
        assert {r.conversation.id for r in list_inbox(world["agent"], q="gadget", status=None).rows} == {conv.id}
        assert list_inbox(world["agent"], status=None).rows[0].snippet == "A gadget"
        return
    triggers = [f"{table}_fts_{when}" for table in ("messages", "attachments") for when in ("bi", "ai", "bu", "au", "bd", "ad")]
    for trigger in triggers + ["messages_preview_ai", "messages_preview_au", "messages_preview_ad"]:
        db.session.execute(text(f"DROP TRIGGER {trigger}"))  # as a table rebuild on SQLite would
    db.session.commit()
    make_message(conv, text="A sprocket went missing")
    assert list_inbox(world["agent"], q="sprocket", status=None).rows == []
    assert list_inbox(world["agent"], status=None).rows[0].snippet == ""  # no preview either
    result = app.test_cli_runner().invoke(args=["inbox", "reindex"])
    assert result.exit_code == 0 and "search index rebuilt" in result.output
    db.session.expire_all()
    assert [r.conversation.id for r in list_inbox(world["agent"], q="sprocket", status=None).rows] == [conv.id]
    assert list_inbox(world["agent"], status=None).rows[0].snippet == "A sprocket went missing"
    make_message(conv, text="And a widget too")  # the triggers are back
    assert [r.conversation.id for r in list_inbox(world["agent"], q="widget", status=None).rows] == [conv.id]
    assert list_inbox(world["agent"], status=None).rows[0].snippet == "And a widget too"


def test_reply_all_leaves_out_our_published_names_while_a_rename_is_unpublished(app, db, world):
    """Renamed in the draft but not published: customers still write to the published name (and the
    published forwarding address), so Reply All must not send our own mail back to us."""
    address = world["address"]
    address.address, address.forwarded_from = "help2@mail.pigeonhole.test", "help2@acme.test"
    db.session.commit()
    conv = make_conversation(queue=world["queue"], address=address, contact_email="carol@example.com")
    first = make_message(conv, text="one", to_addrs="help@acme.test, Eve <eve@example.com>",
                         cc_addrs="help@mail.pigeonhole.test, dave@example.com")
    everyone = start_draft(world["agent"], conv.id, "reply_all", first.id)
    assert everyone.cc_addrs == "Eve <eve@example.com>, dave@example.com"
