"""The workspace by keyboard in a real browser: the "?" overlay, j/k/o through the list and the
conversations, r/a/f/c/e/#, "/" for search, Ctrl+Enter to send, Esc to close, no shortcut while
typing, and rows that open their conversation wherever they are clicked."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from playwright.sync_api import expect

from app.models.inbox import Message
from tests.e2e.test_workspace_browser import sign_in, workspace  # noqa: F401 (the fixture)
from tests.factories import make_conversation, make_message

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("unique_ids")]


@pytest.fixture
def three(db, workspace):  # noqa: F811
    """Three conversations in the agent's queue, newest first: Newest, Middle, then the workspace's."""
    conv = workspace["conv"]
    now = datetime.now(timezone.utc)
    made = []
    for subject, ago in (("Newest question", 1), ("Middle question", 2)):
        other = make_conversation(queue=conv.queue, address=conv.address, contact_email=f"{subject[:3].lower()}@example.com",
                                  subject=subject, when=now - timedelta(minutes=ago))
        make_message(other, text=f"About the {subject.lower()}.", when=now - timedelta(minutes=ago))
        made.append(other)
    db.session.commit()
    return [made[0], made[1], conv]


def test_overlay_and_moving_through_the_list_and_the_conversations(page, db, three):
    newest, middle, oldest = three
    sign_in(page, "alex@example.test")
    expect(page.locator("#conversation-rows .conv-row")).to_have_count(3)

    page.keyboard.press("?")
    overlay = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(overlay).to_be_visible()
    expect(overlay).to_contain_text("Assign to me")
    assert page.evaluate("document.getElementById('shortcuts').matches(':modal')")  # a real modal <dialog>
    page.keyboard.press("Escape")
    expect(overlay).to_be_hidden()
    page.get_by_role("button", name=re.compile("Keyboard shortcuts")).click()
    expect(overlay).to_be_visible()
    overlay.get_by_role("button", name="Close").click()
    expect(overlay).to_be_hidden()

    page.keyboard.press("j")
    expect(page.locator(f"#conv-{newest.id}")).to_have_class(re.compile("is-current"))
    expect(page.locator(f"#conv-{newest.id} .subject a")).to_be_focused()  # the real link has the focus
    page.keyboard.press("j")
    page.keyboard.press("j")
    expect(page.locator(f"#conv-{oldest.id}")).to_have_class(re.compile("is-current"))
    page.keyboard.press("k")
    expect(page.locator(f"#conv-{middle.id}")).to_have_class(re.compile("is-current"))
    expect(page.locator(f"#conv-{newest.id}")).not_to_have_class(re.compile("is-current"))
    page.keyboard.press("o")
    expect(page).to_have_url(re.compile(rf"/inbox/c/{middle.id}$"))
    page.wait_for_load_state()  # keys.js is bound (a deferred script)

    # In a conversation, j and k go to the neighbours in the list it was opened from.
    page.keyboard.press("j")
    expect(page).to_have_url(re.compile(rf"/inbox/c/{oldest.id}$"))
    page.wait_for_load_state()  # keys.js is bound (a deferred script)
    page.keyboard.press("k")
    expect(page).to_have_url(re.compile(rf"/inbox/c/{middle.id}$"))
    page.wait_for_load_state()  # keys.js is bound (a deferred script)
    page.keyboard.press("k")
    expect(page).to_have_url(re.compile(rf"/inbox/c/{newest.id}$"))
    page.wait_for_load_state()  # keys.js is bound (a deferred script)

    # "/" from a conversation: the inbox, with the search field ready; typing there is not a shortcut.
    page.keyboard.press("/")
    search = page.get_by_label("Search")
    expect(search).to_be_focused()
    page.keyboard.type("jk")
    expect(search).to_have_value("jk")
    expect(page.locator(".conv-row.is-current")).to_have_count(0)
    search.fill("")
    page.keyboard.press("Escape")
    expect(search).not_to_be_focused()
    page.keyboard.press("/")
    expect(search).to_be_focused()
    search.press("Escape")
    page.keyboard.press("j")
    page.keyboard.press("Enter")  # the focused link opens
    expect(page).to_have_url(re.compile(rf"/inbox/c/{newest.id}$"))
    page.wait_for_load_state()  # keys.js is bound (a deferred script)

    # The whole row opens the conversation, not only its link.
    page.go_back()
    page.locator(f"#conv-{oldest.id} td.customer").click()
    expect(page).to_have_url(re.compile(rf"/inbox/c/{oldest.id}$"))
    page.wait_for_load_state()  # keys.js is bound (a deferred script)
    page.keyboard.press("c")
    expect(page.get_by_role("heading", name="New Mail", level=1)).to_be_visible()
    assert page.js_errors == []


def test_reply_keys_send_close_resolve_and_assign(page, db, app, workspace, redis_server):  # noqa: F811
    conv = workspace["conv"]
    sign_in(page, "alex@example.test")
    page.goto(f"/inbox/c/{conv.id}")
    expect(page.get_by_role("heading", name="Where is my parcel?")).to_be_visible()
    page.locator("body").click(position={"x": 5, "y": 300})  # focus on the page, not in a field

    page.keyboard.press("a")
    composer = page.locator(".composer")
    expect(composer).to_have_count(1)
    expect(composer.get_by_label("CC", exact=True)).to_have_value("dave@example.com")  # Reply All
    composer.get_by_role("textbox", name="Message").click()
    page.keyboard.type("far away")  # letters typed in the editor are text, never shortcuts (f, a, r, e)
    expect(composer.get_by_role("textbox", name="Message")).to_have_text("far away")
    expect(page.locator(".composer")).to_have_count(1)
    page.keyboard.press("Escape")  # Esc closes the composer (saved: something was written)
    expect(page.locator(".composer")).to_have_count(0)
    expect(page.locator("#drafts")).to_contain_text("Reply All to carol@example.com")

    page.locator("body").click(position={"x": 5, "y": 300})
    page.keyboard.press("f")
    expect(page.locator(".composer").get_by_label("Subject")).to_have_value("Fwd: Where is my parcel?")
    page.locator(".composer").get_by_label("To", exact=True).focus()
    page.keyboard.press("Escape")  # from a field of the composer too; nothing written: no draft left
    expect(page.locator(".composer")).to_have_count(0)
    expect(page.locator("#drafts")).not_to_contain_text("Forward")

    page.locator("body").click(position={"x": 5, "y": 300})
    page.keyboard.press("r")
    composer = page.locator(".composer")
    expect(composer.get_by_label("Subject")).to_have_value("Re: Where is my parcel?")
    editor = composer.get_by_role("textbox", name="Message")
    editor.click()
    page.keyboard.type("Sent by keyboard.")
    expect(composer.get_by_role("button", name="Send")).to_be_enabled()
    page.keyboard.press("Control+Enter")
    expect(page.locator(".composer")).to_have_count(0)
    expect(page.locator(".tile-out").last).to_contain_text("Sent by keyboard.")
    db.session.expire_all()
    assert db.session.scalar(db.select(Message).where(Message.text.contains("Sent by keyboard."))) is not None

    page.locator("body").click(position={"x": 5, "y": 300})
    page.keyboard.press("#")
    expect(page.locator("#arrival-assignee")).to_contain_text("Alex Agent")
    page.keyboard.press("e")
    expect(page.locator("#status-badge")).to_have_text("resolved")
    db.session.expire_all()
    db.session.refresh(conv)
    assert conv.status == "resolved" and conv.assignee.name == "Alex Agent"
    assert page.js_errors == []


def test_recipients_are_an_aria_combobox_checked_when_left_or_separated(page, db, workspace):  # noqa: F811
    conv = workspace["conv"]
    make_conversation(queue=conv.queue, address=conv.address, contact_email="carla@example.com",
                      contact_name="Carla Client")
    db.session.commit()
    sign_in(page, "alex@example.test")
    page.goto(f"/inbox/c/{conv.id}")
    page.locator(".compose-bar").get_by_role("button", name="Forward").click()
    to = page.get_by_role("combobox", name="To", exact=True)
    expect(to).to_have_attribute("aria-expanded", "false")
    listbox_id = to.get_attribute("aria-controls")
    to.click()
    page.keyboard.type("car")
    listbox = page.locator(f"#{listbox_id}")
    expect(listbox).to_have_attribute("role", "listbox")
    options = listbox.get_by_role("option")
    expect(options).to_have_count(2)
    expect(to).to_have_attribute("aria-expanded", "true")
    expect(page.locator(".recipient-error").first).to_be_empty()  # "car" is half typed: no error yet

    page.keyboard.press("ArrowDown")
    first_id = options.nth(0).get_attribute("id")
    expect(to).to_have_attribute("aria-activedescendant", first_id)
    expect(options.nth(0)).to_have_attribute("aria-selected", "true")
    page.keyboard.press("ArrowDown")
    expect(to).to_have_attribute("aria-activedescendant", options.nth(1).get_attribute("id"))
    expect(options.nth(0)).to_have_attribute("aria-selected", "false")
    page.keyboard.press("ArrowDown")  # wraps to the first
    expect(to).to_have_attribute("aria-activedescendant", first_id)
    page.keyboard.press("ArrowUp")
    chosen = options.nth(1).get_attribute("data-address")
    page.keyboard.press("Enter")
    expect(to).to_have_value(f"{chosen}, ")
    expect(to).to_have_attribute("aria-expanded", "false")
    expect(to).not_to_have_attribute("aria-activedescendant", re.compile("."))
    expect(page.locator(".composer")).to_have_count(1)  # Enter chose; it did not submit or close anything

    # A half-typed address waits; a separator checks what came before it.
    page.keyboard.type("bad@")
    page.wait_for_timeout(900)
    expect(page.locator(".recipient-error").first).to_be_empty()
    page.keyboard.type(",")
    expect(page.locator(".recipient-error").first).to_contain_text("“bad@” is not a valid email address")
    page.keyboard.press("Backspace")
    page.keyboard.type("example.com")  # while an error shows, it goes once the address is right
    expect(page.locator(".recipient-error").first).to_be_empty()

    # Escape closes the list, not the composer; leaving the field checks it.
    page.keyboard.type(", carl")
    expect(to).to_have_attribute("aria-expanded", "true")
    page.keyboard.press("Escape")
    expect(to).to_have_attribute("aria-expanded", "false")
    expect(listbox).to_be_hidden()
    expect(page.locator(".composer")).to_have_count(1)
    page.keyboard.type("@")
    page.keyboard.press("Tab")
    expect(page.locator(".recipient-error").first).to_contain_text("“carl@” is not a valid email address")
    assert page.js_errors == []
