"""Browser fixtures: the app served on a free loopback port, Debian's Chromium driven by Playwright,
and an image server on loopback that stands for a remote sender's server (it records each request)."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from werkzeug.serving import make_server

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082")
CHROMIUM = "/usr/bin/chromium"
#: Runs in every page before its own scripts: after the page loads and after each htmx swap has
#: settled, an id used twice is reported as a console error (htmx targets the first one; a hidden
#: copy makes a control do nothing). Frames (mail bodies) are the sender's, not ours: not checked.
DUPLICATE_IDS_SCRIPT = """
(() => {
  if (window.top !== window) return;
  let pending = null;
  function check(when) {
    const counts = {};
    for (const el of document.querySelectorAll("[id]")) counts[el.id] = (counts[el.id] || 0) + 1;
    const twice = Object.keys(counts).filter((id) => counts[id] > 1);
    if (twice.length) console.error("duplicate id: " + twice.join(", ") + " on " + location.pathname + " (" + when + ")");
  }
  document.addEventListener("DOMContentLoaded", () => check("page"));
  document.addEventListener("htmx:afterSettle", () => {
    clearTimeout(pending);
    pending = setTimeout(() => check("after a swap"), 0);
  });
})();
"""
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
]


def _static_read_whole(app):
    """The app, with static files' responses read whole and their files closed before werkzeug writes them.

    werkzeug's development server closes a response's file only after draining the request's socket; when
    the browser drops the connection meanwhile (a page left while its favicon loads), that read raises and
    the file stays open: a ResourceWarning charged to whichever test runs next. Static files are small;
    every other response (event streams too) is passed through as it is."""
    def wsgi(environ, start_response):
        body = app(environ, start_response)
        if not environ.get("PATH_INFO", "").startswith("/static/"):
            return body
        try:
            return [b"".join(body)]
        finally:
            if hasattr(body, "close"):
                body.close()
    return wsgi


@pytest.fixture
def live_url(app):
    server = make_server("127.0.0.1", 0, _static_read_whole(app), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(10)
    server.server_close()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_url):
    # A set zone, not the machine's: a user who chose none gets their browser's (static/zone.js).
    context = browser.new_context(base_url=live_url, viewport={"width": 1280, "height": 800}, timezone_id="UTC")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # Script errors and console errors; a 4xx answer the page expects (422 on a form) is not one.
    page.on("console", lambda msg: errors.append(msg.text)
            if msg.type == "error" and "Failed to load resource" not in msg.text else None)
    page.js_errors = errors
    yield page
    context.close()


@pytest.fixture
def unique_ids(page):
    """Every page the test visits, and every htmx swap there, uses each id once (DUPLICATE_IDS_SCRIPT).

    Used by the workspace's browser tests; every page's first render is checked for repeated ids in
    tests/web/test_every_route.py (a form's hidden `csrf_token` is rendered with `id=False`)."""
    page.context.add_init_script(DUPLICATE_IDS_SCRIPT)
    yield page
    assert [e for e in page.js_errors if e.startswith("duplicate id")] == []


@pytest.fixture
def image_server():
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(PNG)))
            self.end_headers()
            self.wfile.write(PNG)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.hits = hits
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)
