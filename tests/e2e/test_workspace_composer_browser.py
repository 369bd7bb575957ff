"""The composer's defects from issue 16, in a real browser (Debian's Chromium through Playwright).

Standard Responses search after a reload and from Drafts (no hidden copy of the picker), Append
on a new paragraph and "with subject" replacing the subject, Escape in the "/" picker, the
picker's preview with the conversation's values, readable Delete buttons, the Send tooltip, the
newer-message warning naming the colleague, "Came to" only on mail that came in, and no console
error (CSP included) on the inbox. The `unique_ids` fixture fails a test on any id used twice.
"""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from app.models.inbox import Draft
from tests.e2e.test_workspace_browser import sign_in, workspace  # noqa: F401 (the fixture)
from tests.factories import make_conversation, make_message, make_response, make_user

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("unique_ids")]


def open_reply(page, conv):
    page.goto(f"/inbox/c/{conv.id}")
    page.locator(".compose-bar").get_by_role("button", name="Reply", exact=True).click()
    composer = page.locator(".composer")
    expect(composer.get_by_label("Subject")).to_have_value("Re: Where is my parcel?")
    return composer


def test_response_search_works_after_a_reload_and_from_drafts(page, db, workspace):  # noqa: F811
    conv = workspace["conv"]
    sign_in(page, "alex@example.test")
    composer = open_reply(page, conv)
    expect(page).to_have_url(re.compile(r"draft=\d+"))
    page.reload()
    composer = page.locator(".composer")
    expect(composer).to_have_count(1)
    expect(page.locator("#picker-q")).to_have_count(0)  # no hidden copy of the picker in the page
    composer.get_by_role("button", name="Standard Responses").click()
    dialog = page.get_by_role("dialog", name="Standard Responses")
    dialog.get_by_label("Search responses").fill("refund")
    expect(dialog.locator(".picker-item")).to_have_count(1)
    expect(dialog.locator(".picker-item")).to_contain_text("Refund policy")
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_have_count(0)

    # New Mail opened again from Drafts: its own page, the same picker.
    page.goto("/inbox/?view=all")
    page.get_by_role("button", name="New Mail").click()
    expect(page.get_by_role("heading", name="New Mail", level=1)).to_be_visible()
    db.session.expire_all()
    new_id = db.session.scalar(db.select(Draft.id).where(Draft.kind == "new"))
    page.goto(f"/inbox/drafts/{new_id}")
    expect(page.locator("#picker-q")).to_have_count(0)
    expect(page.locator("#confirm-title")).to_have_count(0)
    page.get_by_role("button", name="Standard Responses").click()
    dialog = page.get_by_role("dialog", name="Standard Responses")
    dialog.get_by_label("Search responses").fill("refund")
    expect(dialog.locator(".picker-item")).to_have_count(1)
    assert page.js_errors == []


def test_append_starts_a_new_paragraph_and_with_subject_replaces_the_subject(page, db, workspace):  # noqa: F811
    make_response(title="Quote", group_name="Sales", subject="Your quote", body="<p>Dear {{customer.first_name}},</p>"
                  "<p>here is your quote.</p>")
    conv = workspace["conv"]
    sign_in(page, "alex@example.test")
    composer = open_reply(page, conv)
    editor = composer.get_by_role("textbox", name="Message")
    editor.click()
    editor.press_sequentially("Best regards, Alex")
    composer.get_by_role("button", name="Standard Responses").click()
    dialog = page.get_by_role("dialog", name="Standard Responses")
    dialog.get_by_label("Search responses").fill("quote")
    expect(dialog.locator(".picker-item")).to_have_count(1)
    # The preview: the conversation's values in place of the placeholders, paragraphs kept apart.
    preview = dialog.locator(".picker-preview p")
    expect(preview).to_have_text(["Dear Carol,", "here is your quote."])
    dialog.get_by_role("button", name="Append with subject").click()
    expect(dialog).to_have_count(0)
    expect(composer.get_by_label("Subject")).to_have_value("Your quote")
    expect(editor).to_contain_text("Dear Carol")
    # Not glued: "Alex" and "Dear" are on separate lines.
    assert re.search(r"Best regards, Alex\n+Dear Carol,", editor.inner_text())
    expect(composer.locator(".draft-status")).to_contain_text("Saved")
    db.session.expire_all()
    assert db.session.scalar(db.select(Draft)).subject == "Your quote"
    assert page.js_errors == []


def test_escape_in_the_slash_picker_gives_the_slash_back_in_one_press(page, workspace):  # noqa: F811
    conv = workspace["conv"]
    sign_in(page, "alex@example.test")
    composer = open_reply(page, conv)
    editor = composer.get_by_role("textbox", name="Message")
    editor.click()
    editor.press_sequentially("see ")
    editor.press("/")
    dialog = page.get_by_role("dialog", name="Standard Responses")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Search responses").fill("nothing like this")
    expect(dialog).to_contain_text("No Standard Responses match")
    page.keyboard.press("Escape")  # once, with text in the search
    expect(dialog).to_have_count(0)
    editor.press_sequentially("docs")
    expect(editor).to_have_text("see /docs")
    assert page.js_errors == []


def test_delete_buttons_are_readable(page, workspace):  # noqa: F811
    conv = workspace["conv"]
    sign_in(page, "alex@example.test")
    composer = open_reply(page, conv)
    colors = "b => [getComputedStyle(b).color, getComputedStyle(b).backgroundColor]"
    text, background = composer.get_by_role("button", name="Delete").evaluate(colors)
    assert text != background and text == "rgb(255, 255, 255)"
    composer.get_by_role("button", name="Delete").click()
    dialog = page.get_by_role("dialog", name="Delete this draft?")
    text, background = dialog.get_by_role("button", name="Delete").evaluate(colors)
    assert text != background and text == "rgb(255, 255, 255)"


def test_send_tooltip_names_a_missing_queue(page, workspace):  # noqa: F811
    sign_in(page, "alex@example.test")
    page.get_by_role("button", name="New Mail").click()
    composer = page.locator(".composer")
    composer.get_by_label("Queue").select_option("")
    composer.get_by_label("To", exact=True).fill("zoe@example.com")
    composer.get_by_label("Subject").fill("Hello")
    composer.get_by_role("textbox", name="Message").fill("A question.")
    send = composer.get_by_role("button", name="Send")
    expect(send).to_be_disabled()
    expect(send).to_have_attribute("title", "Fill in Queue first")
    composer.get_by_label("Subject").fill("")
    expect(send).to_have_attribute("title", "Fill in Queue and Subject first")


def test_newer_message_warning_names_the_colleague(page, db, workspace):  # noqa: F811
    conv = workspace["conv"]
    bea = make_user("agent", email="bea@example.test", name="Bea Agent")
    sign_in(page, "alex@example.test")
    composer = open_reply(page, conv)
    composer.get_by_role("textbox", name="Message").fill("On its way.")
    expect(composer.locator(".draft-status")).to_contain_text("Saved")
    make_message(conv, direction="out", text="Shipped this morning.", author=bea, delivery_status="sent",
                 from_addr="help@mail.pigeonhole.test")
    composer.get_by_role("button", name="Send").click()
    warning = page.locator(".composer .warning")
    expect(warning).to_contain_text("Bea Agent (a colleague)")
    expect(warning).not_to_contain_text("help@mail.pigeonhole.test")


def test_came_to_only_on_mail_that_came_in(page, db, workspace):  # noqa: F811
    conv = workspace["conv"]
    outbound = make_conversation(queue=conv.queue, address=conv.address, contact_email="zoe@example.com",
                                 subject="Our offer")
    make_message(outbound, direction="out", text="An offer for you.", author=workspace["agent"],
                 delivery_status="sent")
    sign_in(page, "alex@example.test")
    page.goto(f"/inbox/c/{outbound.id}")
    arrival = page.get_by_role("region", name="Arrival")
    expect(arrival).to_contain_text("Sent from")
    expect(arrival).not_to_contain_text("Came to")
    page.goto(f"/inbox/c/{conv.id}")
    expect(page.get_by_role("region", name="Arrival")).to_contain_text("Came to")


def test_inbox_polls_without_console_errors(page, app, workspace):  # noqa: F811
    app.config["INBOX_POLL_SECONDS"] = 1
    sign_in(page, "alex@example.test")
    conv = workspace["conv"]
    make_message(conv, text="Still waiting.")
    page.wait_for_timeout(3500)  # a few polls, swaps and settles
    page.get_by_role("link", name="Where is my parcel?").click()
    expect(page.locator(".tile")).to_have_count(4)
    page.wait_for_timeout(2500)
    assert page.js_errors == []


def test_a_styled_element_swapped_by_a_poll_breaks_no_csp(page, app, workspace):  # noqa: F811
    """htmx settles a swapped element by copying the old one's attributes; a `style` attribute (which a
    script or the browser may set through CSSOM) copied with setAttribute is an inline style the
    site's CSP refuses, once per poll. The inbox's tabs are swapped every few seconds."""
    app.config["INBOX_POLL_SECONDS"] = 1
    sign_in(page, "alex@example.test")
    page.locator("#view-tabs").evaluate("el => { el.style.opacity = '1'; }")
    page.wait_for_function("() => !document.querySelector('#view-tabs').hasAttribute('style')", timeout=10000)
    assert [e for e in page.js_errors if "inline style" in e] == []
