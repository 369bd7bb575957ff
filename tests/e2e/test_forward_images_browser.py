"""Forward holds the customer's remote images back in the composer, as the mail frame does.

The forwarded mail's image points at a loopback HTTP server the test runs (standing for the
sender's tracking server): opening the conversation and then Forward makes no request to it;
the composer's "Show images" does, and the draft still carries the image when saved.
"""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from app.models.inbox import Draft
from tests.e2e.test_workspace_browser import sign_in
from tests.factories import make_address, make_conversation, make_message, make_queue, make_user

pytestmark = pytest.mark.browser


def test_forward_loads_no_remote_image_until_show_images(page, db, image_server):
    agent = make_user("agent", email="alex@example.test", name="Alex Agent")
    queue = make_queue("Support", members=[agent])
    conv = make_conversation(queue=queue, address=make_address("help@mail.pigeonhole.test", queues=[queue]),
                             contact_email="carol@example.com", contact_name="Carol Customer", subject="Our offer")
    pixel = f"http://127.0.0.1:{image_server.server_port}/pixel.png"
    make_message(conv, text="See our offer", html=f'<p>See our offer</p><img alt="a>b" src="{pixel}">')

    sign_in(page, "alex@example.test")
    page.goto(f"/inbox/c/{conv.id}")
    expect(page.get_by_text("Remote images in this message are hidden.")).to_be_visible()
    page.get_by_role("button", name="Forward", exact=True).last.click()
    composer = page.locator(".composer")
    expect(composer).to_have_count(1)
    expect(composer.get_by_text("Remote images in this draft are hidden.")).to_be_visible()
    editor = composer.locator(".editor")
    expect(editor).to_contain_text("See our offer")
    expect(editor.locator("img")).to_have_count(1)
    assert editor.locator("img").get_attribute("src") is None
    page.wait_for_timeout(1000)  # anything that would load has had the time to
    assert image_server.hits == []

    # Editing the draft keeps the image for the recipient (held aside only in the editor).
    editor.click()
    page.keyboard.press("Control+Home")
    page.keyboard.type("FYI ")
    expect(composer.locator(".draft-status")).to_contain_text("Saved")
    page.wait_for_timeout(1500)  # the autosave's delay
    db.session.expire_all()
    draft = db.session.scalar(db.select(Draft))
    assert "FYI" in draft.body and f'src="{pixel}"' in draft.body and "data-ph-" not in draft.body
    assert image_server.hits == []

    composer.get_by_role("button", name="Show images").click()
    expect(page).to_have_url(f"{page.url.split('/inbox/')[0]}/inbox/c/{conv.id}?draft={draft.id}&images=1"
                             f"#composer-{draft.id}")
    shown = page.locator(".composer .editor img")
    expect(shown).to_have_attribute("src", pixel)
    for _ in range(40):
        if image_server.hits:
            break
        page.wait_for_timeout(100)
    assert image_server.hits == ["/pixel.png"]
    expect(page.locator(".composer").get_by_text("Remote images in this draft are hidden.")).to_have_count(0)
    # The conversation's own frame still holds its copy back.
    expect(page.get_by_text("Remote images in this message are hidden.")).to_be_visible()
    assert page.js_errors == []
