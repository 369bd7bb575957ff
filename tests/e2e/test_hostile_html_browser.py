"""Hostile customer HTML in a real browser: no script runs, nothing remote loads until "Show images".

The payloads are the DOMPurify XSS vectors and Cure53's HTTPLeaks page from the shared
corpora (`PIGEONHOLE_CORPORA/html-xss`), stored *unsanitised* as message HTML, as if an
ingest bug had let them through: the display alone must hold. Every request the page
makes is observed with `page.route`; remote ones are answered with an abort, and a test
image is served from our own server on 127.0.0.1.
"""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.factories import PASSWORD, make_address, make_conversation, make_message, make_queue, make_user

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
CORPORA = Path(os.environ.get("PIGEONHOLE_CORPORA", ROOT.parent / "shared" / "corpora"))
XSS = CORPORA / "html-xss"


#: Chromium's own background traffic (autofill, safe browsing), not the page's.
BROWSER_HOSTS = (".googleapis.com", ".google.com", ".gstatic.com", ".googleusercontent.com")


def _from_pages(proxied: list[str]) -> list[str]:
    out = []
    for line in proxied:
        parts = line.split()
        target = parts[1] if len(parts) > 1 else line
        host = urlsplit(target if "://" in target else f"//{target}").hostname or ""
        if not host.endswith(BROWSER_HOSTS):
            out.append(line)
    return out


@pytest.fixture
def remote_sink():
    """Stands in for the whole internet: the browser's proxy for every non-loopback host.

    Requests of sandboxed `srcdoc` frames escape Playwright's request events and routes,
    but not the proxy: each connection's first line (`CONNECT host:443` or `GET http://...`)
    is recorded and refused.
    """
    import socket

    seen: list[str] = []
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    first = conn.recv(4096).split(b"\r\n", 1)[0].decode("latin-1")
                    seen.append(first)
                    conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield sock.getsockname()[1], seen
    stop.set()
    sock.close()
    thread.join(5)


def test_hostile_html_runs_no_script_and_fetches_nothing_remote_until_show_images(
        browser, db, live_url, image_server, remote_sink):
    if not (XSS / "dompurify" / "vectors.json").exists() or not (XSS / "httpleaks" / "leak.html").exists():
        pytest.skip(f"the html-xss corpus is not at {XSS} (set PIGEONHOLE_CORPORA)")
    vectors = [v["payload"] for v in json.loads((XSS / "dompurify" / "vectors.json").read_text())["vectors"]]
    leak = (XSS / "httpleaks" / "leak.html").read_text(errors="replace")

    agent = make_user("agent", email="alex@example.test")
    queue = make_queue("Support", members=[agent])
    conv = make_conversation(queue=queue, address=make_address(queues=[queue]), subject="Totally harmless")
    chunk = 25
    for i in range(0, len(vectors), chunk):
        make_message(conv, text=f"vectors {i}", html="\n".join(vectors[i:i + chunk]))
    make_message(conv, text="leaks", html=leak)
    pixel = f"http://127.0.0.1:{image_server.server_port}/pixel.png"
    make_message(conv, text="picture", html=f'<p>Our logo:</p><img src="{pixel}" alt="logo">')

    app_origin = urlsplit(live_url).netloc
    remote: list[str] = []
    dialogs: list[str] = []

    def observe(route):
        host = urlsplit(route.request.url).netloc
        if route.request.url.startswith(("data:", "about:")) or host in (app_origin, f"127.0.0.1:{image_server.server_port}"):
            route.continue_()
        else:
            remote.append(route.request.url)
            route.abort()

    sink_port, proxied = remote_sink
    context = browser.new_context(base_url=live_url, proxy={
        "server": f"http://127.0.0.1:{sink_port}", "bypass": "127.0.0.1,localhost"})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.js_errors = errors
    page.route("**/*", observe)
    # Requests of the sandboxed frames are seen here too, whether or not a route handled them.
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto("/login")
    page.get_by_label("Email").fill("alex@example.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()

    page.goto(f"/inbox/c/{conv.id}")
    page.get_by_role("button", name="Expand all").click()
    # Unfold every quoted part too: hostile content may hide behind "…".
    toggles = page.get_by_role("button", name="Show quoted text")
    for i in range(toggles.count()):
        toggles.nth(i).click()
    expect(page.locator(".quoted iframe")).to_have_count(toggles.count())
    frames = page.locator("iframe.mail-frame")
    expect(frames).to_have_count(len(range(0, len(vectors), chunk)) + 2 + toggles.count())
    for i in range(frames.count()):
        frames.nth(i).scroll_into_view_if_needed()
    page.wait_for_timeout(1500)  # give anything that might fire (timers, lazy loads) the time to do it

    assert dialogs == [], dialogs
    assert page.js_errors == [], page.js_errors
    assert remote == [], remote[:10]
    outside = [u for u in requested if not u.startswith(("data:", "about:"))
               and urlsplit(u).netloc not in (app_origin, f"127.0.0.1:{image_server.server_port}")]
    assert outside == [], outside[:10]
    assert _from_pages(proxied) == [], _from_pages(proxied)[:10]
    assert image_server.hits == []
    # No frame may run script (same origin without scripts lets the page size a frame to its content).
    for i in range(frames.count()):
        sandbox = frames.nth(i).get_attribute("sandbox")
        assert "allow-scripts" not in sandbox and "allow-forms" not in sandbox and "allow-top-navigation" not in sandbox
    assert page.evaluate("typeof window.__xss") == "undefined"

    picture = page.locator(".tile").last
    expect(picture.get_by_text("Remote images in this message are hidden.")).to_be_visible()
    picture.get_by_role("button", name="Show images").click()
    expect(picture.locator("iframe.mail-frame")).to_have_count(1)
    page.wait_for_function("1", timeout=1000)
    for _ in range(40):
        if image_server.hits:
            break
        page.wait_for_timeout(100)
    assert image_server.hits == ["/pixel.png"]
    assert _from_pages(proxied) == []  # the other messages' images stay blocked
    assert dialogs == [] and page.js_errors == []
    context.close()
