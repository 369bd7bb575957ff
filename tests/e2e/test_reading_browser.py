"""Reading in a real browser: relative times in lists with the exact time (in the agent's zone) on
hover, mail frames as tall as their content (no scrollbar inside; a long mail grows the page), and
the quoted history folded behind "Show quoted text"."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from playwright.sync_api import expect

from tests.e2e.test_workspace_browser import sign_in, workspace  # noqa: F401 (the fixture)
from tests.factories import make_conversation, make_message

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("unique_ids")]


def test_lists_say_how_long_ago_and_the_exact_time_in_the_agents_zone_on_hover(page, db, workspace):  # noqa: F811
    agent, conv = workspace["agent"], workspace["conv"]
    agent.time_zone = "Asia/Tokyo"
    now = datetime.now(timezone.utc)
    recent = make_conversation(queue=conv.queue, address=conv.address, subject="Recent one",
                               when=now - timedelta(minutes=3, seconds=10))
    old = make_conversation(queue=conv.queue, address=conv.address, subject="Old one",
                            when=datetime(2025, 1, 2, 16, 10, tzinfo=timezone.utc))
    db.session.commit()
    sign_in(page, "alex@example.test")
    time = page.locator(f"#conv-{recent.id} time")
    expect(time).to_have_text("3 min ago")
    exact = recent.last_message_at.astimezone(timezone(timedelta(hours=9)))
    expect(time).to_have_attribute("title", f"{exact:%Y-%m-%d %H:%M} JST")  # the profile's zone, named
    expect(time).to_have_attribute("datetime", re.compile(r"^\d{4}-\d\d-\d\dT"))
    expect(page.locator(f"#conv-{conv.id} time")).to_have_text("1 h ago")  # its last mail came 1 h ago
    expect(page.locator(f"#conv-{old.id} time")).to_have_text("2025-01-03 01:10")  # beyond a week: the date
    assert page.js_errors == []


def test_frames_fit_their_mail_and_the_quote_folds(page, db, workspace):  # noqa: F811
    conv = workspace["conv"]
    long_html = "".join(f"<p>Line {i} of a very long mail about the parcel.</p>" for i in range(150))
    make_message(conv, text="Line 0 of a very long mail", html=long_html)
    db.session.commit()
    sign_in(page, "alex@example.test")
    page.goto(f"/inbox/c/{conv.id}")
    page.get_by_role("button", name="Expand all").click()
    frames = page.locator(".tile-body iframe.mail-frame")
    expect(frames).to_have_count(4)
    expect(frames.last).to_have_class(re.compile("sized"))

    def measure(i):
        return frames.nth(i).evaluate("""f => ({frame: f.getBoundingClientRect().height,
            inner: f.contentDocument.documentElement.scrollHeight,
            scrolls: f.contentDocument.documentElement.scrollHeight > f.contentDocument.documentElement.clientHeight + 1,
            page: document.scrollingElement.scrollHeight})""")

    long = measure(3)
    assert long["frame"] > 2500 and not long["scrolls"] and abs(long["frame"] - long["inner"]) <= 2
    assert long["page"] > long["frame"]  # the page grew, not the frame's scrollbar
    short = measure(0)  # "Hello, my parcel has not arrived."
    assert 20 < short["frame"] < 120 and not short["scrolls"]

    # The quoted history: folded, shown (its frame sized too), folded again without a new request.
    tile = page.locator(".tile").nth(2)
    toggle = tile.get_by_role("button", name="Show quoted text")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    toggle.click()
    quote = tile.locator(".quoted iframe.mail-frame")
    expect(quote).to_have_class(re.compile("sized"))
    hide = tile.get_by_role("button", name="Hide quoted text")
    expect(hide).to_have_attribute("aria-expanded", "true")
    assert quote.evaluate("f => f.contentDocument.body.textContent").find("We are looking into it.") >= 0
    requests = []
    page.on("request", lambda r: requests.append(r.url) if "/quote" in r.url else None)
    hide.click()
    expect(tile.locator(".quoted")).to_be_hidden()
    tile.get_by_role("button", name="Show quoted text").click()
    expect(quote).to_be_visible()
    assert requests == []
    assert page.js_errors == []
