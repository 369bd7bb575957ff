"""The agent workspace in a real browser (Debian's Chromium through Playwright).

An agent reads a threaded conversation, expands and collapses tiles, replies with a
Standard Response inserted by typing "/", adds CC, BCC and an attachment, closes the
composer, finds the draft again after signing out and in, and sends it: the message
shows in the thread as queued, and its job waits in the send queue.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from playwright.sync_api import expect

from app.models.inbox import Attachment, Draft, Message
from tests.factories import (PASSWORD, make_address, make_conversation, make_message, make_queue, make_response,
                             make_user)

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("unique_ids")]


def sign_in(page, email, view="all"):
    """Sign in, then open the inbox's `view` (an agent lands on "Mine"; these tests work from All)."""
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    if view:
        page.goto(f"/inbox/?view={view}")
        expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    # The tabs' counts come by htmx once it has bound the page: typing before that would be lost.
    expect(page.locator("#view-tabs .count").first).to_be_visible()


@pytest.fixture
def workspace(db):
    agent = make_user("agent", email="alex@example.test", name="Alex Agent")
    queue = make_queue("Support", members=[agent])
    address = make_address("help@mail.pigeonhole.test", queues=[queue], forwarded_from="help@acme.test")
    start = datetime.now(timezone.utc) - timedelta(hours=3)
    conv = make_conversation(queue=queue, address=address, contact_email="carol@example.com",
                             contact_name="Carol Customer", subject="Where is my parcel?", when=start)
    make_message(conv, text="Hello, my parcel has not arrived.", when=start)
    make_message(conv, direction="out", text="We are looking into it.", author=agent, delivery_status="sent",
                 when=start + timedelta(hours=1))
    make_message(conv, text="Any news?\n\nOn Monday, Alex wrote:\n> We are looking into it.",
                 cc_addrs="dave@example.com", when=start + timedelta(hours=2))
    make_response(title="Shipping times", group_name="Shipping", shortcut="ship",
                  body="Hello {{customer.first_name}}, your parcel ships today. {{agent.first_name}}")
    make_response(title="Refund policy", group_name="Billing", body="Refunds take 5 days.")
    return {"agent": agent, "conv": conv}


def test_reply_with_standard_response_cc_bcc_attachment_draft_survives_logout_then_send(
        page, db, app, workspace, tmp_path, redis_server):
    conv = workspace["conv"]
    app.config["INBOX_POLL_SECONDS"] = 1
    sign_in(page, "alex@example.test")
    row = page.locator(f"#conv-{conv.id}")
    expect(row).to_contain_text("Where is my parcel?")
    expect(row.locator(".marker-unread")).to_be_visible()
    row.get_by_role("link", name="Where is my parcel?").click()

    # Threaded tiles: the newest open, older ones collapsed to one line; each and all toggle.
    tiles = page.locator(".tile")
    expect(tiles).to_have_count(3)
    details = page.locator(".tile details")
    expect(details.nth(2)).to_have_attribute("open", "")
    expect(details.nth(0)).not_to_have_attribute("open", "")
    expect(tiles.nth(0).locator(".tile-snippet")).to_have_text("Hello, my parcel has not arrived.")
    tiles.nth(0).locator("summary").click()
    expect(details.nth(0)).to_have_attribute("open", "")
    page.get_by_role("button", name="Collapse all").click()
    for i in range(3):
        expect(details.nth(i)).not_to_have_attribute("open", "")
    page.get_by_role("button", name="Expand all").click()
    for i in range(3):
        expect(details.nth(i)).to_have_attribute("open", "")
    # The customer's quoted history is folded behind "…".
    expect(tiles.nth(2).get_by_role("button", name="Show quoted text")).to_be_visible()
    tiles.nth(2).get_by_role("button", name="Show quoted text").click()
    expect(tiles.nth(2).locator(".quoted iframe")).to_have_count(1)

    # Reply: a Standard Response by typing "/", then CC (with a typo first), BCC and a file.
    page.locator(".compose-bar").get_by_role("button", name="Reply", exact=True).click()
    composer = page.locator(".composer")
    expect(composer.get_by_label("To", exact=True)).to_have_value("carol@example.com")
    # Colleagues see that Alex is replying (the page reports it with its presence ping).
    from app.inbox import presence

    with app.app_context():
        for _ in range(60):
            if presence.others(conv.id, 0) == [{"name": "Alex Agent", "replying": True}]:
                break
            page.wait_for_timeout(100)
        assert presence.others(conv.id, 0) == [{"name": "Alex Agent", "replying": True}]
    expect(composer.get_by_label("Subject")).to_have_value("Re: Where is my parcel?")
    editor = composer.get_by_role("textbox", name="Message")
    editor.click()
    editor.press_sequentially("Hi Carol, ")
    editor.press("/")
    dialog = page.get_by_role("dialog", name="Standard Responses")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Search responses").fill("ship")
    expect(dialog.locator(".picker-item")).to_have_count(1)
    dialog.get_by_role("button", name="Append", exact=True).click()
    expect(dialog).to_be_hidden()
    expect(editor).to_contain_text("Hi Carol, Hello Carol, your parcel ships today. Alex")
    composer.get_by_label("CC", exact=True).fill("dave@")
    composer.get_by_label("CC", exact=True).press("Tab")  # checked once the field is left
    expect(composer.locator(".recipient-error").nth(1)).to_contain_text("not a valid email address")
    composer.get_by_label("CC", exact=True).fill("dave@example.com")
    expect(composer.locator(".recipient-error").nth(1)).to_be_empty()
    composer.get_by_label("BCC", exact=True).fill("boss@example.com")
    report = tmp_path / "tracking.pdf"
    report.write_bytes(b"%PDF-1.4 tracking details\n")
    composer.get_by_label("Attach files").set_input_files(str(report))
    expect(composer.locator(".attachments-area")).to_contain_text("tracking.pdf")
    expect(composer.locator(".draft-status")).to_contain_text("Saved")
    composer.get_by_role("button", name="Close").click()
    expect(page.locator(".composer")).to_have_count(0)
    expect(page.locator("#drafts")).to_contain_text("Reply to carol@example.com")
    db.session.expire_all()
    assert "your parcel ships today" in db.session.scalar(db.select(Draft)).body

    # Sign out and in: the draft is in "Drafts", with everything the agent typed.
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, "alex@example.test")
    page.get_by_role("navigation", name="Inbox views").get_by_role("link", name=re.compile("Drafts")).click()
    page.get_by_role("link", name=re.compile("Reply · Carol Customer")).click()
    composer = page.locator(".composer")
    expect(composer.get_by_label("CC", exact=True)).to_have_value("dave@example.com")
    expect(composer.get_by_label("BCC", exact=True)).to_have_value("boss@example.com")
    expect(composer.get_by_role("textbox", name="Message")).to_contain_text("your parcel ships today")
    expect(composer.locator(".attachments-area")).to_contain_text("tracking.pdf")

    composer.get_by_role("button", name="Send").click()
    expect(page.locator(".composer")).to_have_count(0)
    sent_tile = page.locator(".tile-out").last
    expect(sent_tile).to_contain_text("Hi Carol, Hello Carol, your parcel ships today.")
    expect(sent_tile.locator(".delivery")).to_have_text(re.compile("Queued"))
    expect(page.locator("#drafts")).to_contain_text("No drafts in this conversation.")

    db.session.expire_all()
    sent = db.session.scalar(db.select(Message).where(Message.direction == "out").order_by(Message.id.desc()))
    assert (sent.to_addrs, sent.cc_addrs, sent.bcc_addrs) == ("carol@example.com", "dave@example.com",
                                                              "boss@example.com, help@acme.test")
    assert sent.delivery_status == "queued" and sent.in_reply_to and "ships today" in sent.text
    assert [a.filename for a in db.session.scalars(db.select(Attachment).where(Attachment.message_id == sent.id))] \
        == ["tracking.pdf"]
    assert db.session.scalar(db.select(Draft)) is None
    import redis

    from app.queues import get_queue

    job = get_queue("send", redis.Redis.from_url(redis_server.url)).fetch_job(f"send-message-{sent.id}")
    assert job is not None and job.func_name == "jobs.send.send_message" and job.args == [sent.id]

    # The send job delivers it to a real SMTP server with the recipients the agent chose.
    from email import message_from_bytes, policy

    from app.runtime.outbound import deliver_message
    from tests.servers import SMTPServer

    server = SMTPServer(tmp_path / "smtp")
    try:
        app.config["SMTP_RELAY_URL"] = f"smtp://127.0.0.1:{server.port}?tls=none"
        assert deliver_message(sent.id)["sent"] == 1
    finally:
        server.stop()
    received = server.messages[0]
    assert sorted(received["rcpt_tos"]) == ["boss@example.com", "carol@example.com", "dave@example.com",
                                            "help@acme.test"]
    mail = message_from_bytes(received["data"], policy=policy.default)
    assert mail["To"] == "carol@example.com" and mail["Cc"] == "dave@example.com" and mail["Bcc"] is None
    assert "tracking.pdf" in [p.get_filename() for p in mail.iter_attachments()]
    page.reload()
    expect(page.locator(".tile-out").last.locator(".delivery")).to_have_text(re.compile("Sent"))
    assert page.js_errors == []


def test_a_draft_survives_a_dropped_connection_and_a_reload(page, db, workspace):
    conv = workspace["conv"]
    sign_in(page, "alex@example.test")
    page.goto(f"/inbox/c/{conv.id}")
    page.locator(".compose-bar").get_by_role("button", name="Reply", exact=True).click()
    composer = page.locator(".composer")
    editor = composer.get_by_role("textbox", name="Message")
    editor.click()
    editor.press_sequentially("Saved while online.")
    expect(composer.locator(".draft-status")).to_contain_text("Saved")
    page.context.set_offline(True)
    editor.press_sequentially(" Typed while offline.")
    expect(composer.locator(".draft-status")).to_contain_text("no connection")
    page.context.set_offline(False)
    expect(composer.locator(".draft-status")).to_contain_text("Saved", timeout=15000)
    db.session.expire_all()
    assert "Typed while offline." in db.session.scalar(db.select(Draft)).body

    # Offline again, type, and reload once back: the words come back from this browser and are saved.
    page.context.set_offline(True)
    editor.press_sequentially(" And more.")
    page.context.set_offline(False)
    page.reload()
    composer = page.locator(".composer")
    expect(composer.get_by_role("textbox", name="Message")).to_contain_text("And more.")
    expect(composer.locator(".draft-status")).to_contain_text("Saved", timeout=15000)
    db.session.expire_all()
    assert "And more." in db.session.scalar(db.select(Draft)).body
    # htmx reports the autosave that failed while offline (that is the point); nothing else may fail.
    assert [e for e in page.js_errors if not e.startswith(("htmx:sendError", "htmx:afterRequest"))] == []


def test_new_mail_appears_on_top_without_a_reload_and_search_filters(page, db, app, workspace):
    app.config["INBOX_POLL_SECONDS"] = 1
    sign_in(page, "alex@example.test")
    rows = page.locator("#conversation-rows tr.conv-row")
    expect(rows).to_have_count(1)
    page.get_by_label("Search").fill("umbrella")
    expect(page.locator("#results")).to_contain_text("No conversation matches “umbrella”.")
    page.get_by_label("Search").fill("")
    expect(rows).to_have_count(1)
    conv = workspace["conv"]
    queue = conv.queue
    newer = make_conversation(queue=queue, address=conv.address, subject="Broken umbrella",
                              contact_email="zoe@example.com")
    make_message(newer, text="The handle snapped.")
    expect(rows.first).to_contain_text("Broken umbrella", timeout=10000)  # polled in, on top
    expect(rows).to_have_count(2)
    make_message(conv, text="Hello? Anyone?")  # an older conversation gets new mail: it moves up, once
    expect(rows.first).to_contain_text("Where is my parcel?", timeout=10000)
    expect(rows).to_have_count(2)
    page.get_by_label("Search").fill("umbrella")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Broken umbrella")
    assert page.js_errors == []


def test_new_mail_needs_the_required_fields_before_send(page, db, workspace):
    sign_in(page, "alex@example.test")
    page.get_by_role("button", name="New Mail").click()
    expect(page.get_by_role("heading", name="New Mail", level=1)).to_be_visible()
    composer = page.locator(".composer")
    send = composer.get_by_role("button", name="Send")
    expect(composer.get_by_label("Queue")).to_have_value(str(workspace["conv"].queue_id))
    expect(send).to_be_disabled()
    composer.get_by_label("To", exact=True).fill("new@exa")
    expect(composer.locator(".suggestions").first).to_be_empty()
    composer.get_by_label("To", exact=True).fill("car")
    composer.get_by_role("option", name=re.compile("Carol Customer")).click()
    expect(composer.get_by_label("To", exact=True)).to_have_value("Carol Customer <carol@example.com>, ")
    composer.get_by_label("Subject").fill("A new question")
    expect(send).to_be_disabled()
    editor = composer.get_by_role("textbox", name="Message")
    editor.fill("Hello from us.")
    expect(send).to_be_enabled()
    # Formatting: select a word and make it bold.
    editor.evaluate("""el => { const r = document.createRange(); const t = el.firstChild;
        r.setStart(t, 0); r.setEnd(t, 5); const s = getSelection(); s.removeAllRanges(); s.addRange(r); }""")
    composer.get_by_role("button", name="Bold").click()
    expect(editor.locator("b")).to_have_text("Hello")
    # Drag and drop a file onto the attachments area.
    composer.locator("[data-dropzone]").evaluate("""zone => { const dt = new DataTransfer();
        dt.items.add(new File(["dropped bytes"], "dropped.txt", {type: "text/plain"}));
        zone.dispatchEvent(new DragEvent("drop", {dataTransfer: dt, bubbles: true, cancelable: true})); }""")
    expect(composer.locator(".attachments-area")).to_contain_text("dropped.txt")
    send.click()
    expect(page.get_by_role("heading", name="A new question")).to_be_visible()
    expect(page.locator(".tile-out")).to_contain_text("Hello from us.")
    expect(page.locator(".tile-out .delivery")).to_have_text(re.compile("Queued"))
    expect(page.locator(".tile-out .attachments")).to_contain_text("dropped.txt")
    db.session.expire_all()
    sent = db.session.scalar(db.select(Message).where(Message.direction == "out").order_by(Message.id.desc()))
    assert "<b>Hello</b> from us." in sent.html and "Hello from us." in sent.text

    # A draft can be deleted, after confirming.
    page.get_by_role("button", name="Forward", exact=True).last.click()
    expect(page.locator(".composer")).to_have_count(1)
    page.locator(".composer").get_by_role("button", name="Delete").click()
    dialog = page.get_by_role("dialog", name="Delete this draft?")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Cancel").click()
    expect(page.locator(".composer")).to_have_count(1)
    page.locator(".composer").get_by_role("button", name="Delete").click()
    page.get_by_role("dialog", name="Delete this draft?").get_by_role("button", name="Delete").click()
    expect(page.get_by_text("Draft deleted.")).to_be_visible()
    expect(page.locator(".composer")).to_have_count(0)
    db.session.expire_all()
    assert db.session.scalar(db.select(Draft)) is None
    assert page.js_errors == []


def test_search_older_messages_appends_the_older_windows(page, db, workspace, monkeypatch):
    from app.inbox import search

    monkeypatch.setattr(search, "MAX_MATCHES", 1)  # a window of one match (the server runs in this process)
    conv = workspace["conv"]
    for i in range(3):
        other = make_conversation(queue=conv.queue, address=conv.address, subject=f"Hinge {i}",
                                  when=datetime.now(timezone.utc) - timedelta(minutes=30 - i))
        make_message(other, text=f"A squeaky hinge, number {i}.")
    sign_in(page, "alex@example.test")
    page.get_by_label("Search").fill("squeaky")
    rows = page.locator("#conversation-rows tr.conv-row")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Hinge 2")
    older = page.get_by_role("link", name="Search older messages")
    older.focus()  # leaving the search box must not search again (and wipe what comes next)
    page.keyboard.press("Enter")  # a keyboard reaches it too
    expect(rows).to_have_count(2)
    expect(rows.nth(1)).to_contain_text("Hinge 1")
    older.click()
    expect(rows).to_have_count(3)
    expect(rows.nth(2)).to_contain_text("Hinge 0")
    older.click()  # a full window of one: the next one is empty, and says so
    expect(page.locator("#conversation-rows")).to_contain_text("No older conversation matches “squeaky”.")
    expect(older).to_have_count(0)
    expect(rows).to_have_count(3)
    assert page.js_errors == []
