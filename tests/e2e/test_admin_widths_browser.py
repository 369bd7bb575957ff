"""Every admin page in a real browser at a phone's width (390 px) and a laptop's (1280 px): nothing makes the
page itself scroll sideways (wide tables stack or scroll inside their own box) and no console errors.

The pages come with data in them (long addresses and names, every table with rows), because an empty
page never overflows. Each width is walked in its own browser window; each page is opened as a pasted
link would open it.
"""
from __future__ import annotations

import pytest
from sqlalchemy import select

from app.channels import addresses, wizard
from app.extensions import db as _db
from app.models.auth import Queue, User
from app.models.channels import AddressSetup, EmailAddress
from app.models.flows import Flow
from app.models.inbox import Conversation
from app.models.responses import ResponseGroup, StandardResponse
from app.publish.services import publish_addresses
from app.runtime.dkim import add_key
from tests.channel_factories import custom_values, make_domain
from tests.e2e.conftest import DUPLICATE_IDS_SCRIPT
from tests.factories import PASSWORD, make_user
from tests.web.test_every_route import _data

pytestmark = pytest.mark.browser

WIDTHS = (390, 1280)
#: Measured after the page (and any htmx it loads at once) has settled.
OVERFLOW_SCRIPT = """() => {
  const root = document.documentElement;
  if (root.scrollWidth <= window.innerWidth) return null;
  const wide = [];
  for (const el of document.body.querySelectorAll("*")) {
    const box = el.getBoundingClientRect();
    if (box.right > window.innerWidth + 1 && getComputedStyle(el).position !== "fixed") {
      wide.push(el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
                (el.className && typeof el.className === "string" ? "." + el.className.trim().split(/\\s+/).join(".") : ""));
    }
    if (wide.length >= 6) break;
  }
  return {scrollWidth: root.scrollWidth, innerWidth: window.innerWidth, wide};
}"""


def _seed():
    admin = make_user("admin", email="ada.administrator.with.a.long.name@example.test", name="Ada Administrator")
    agent = make_user("agent")
    supervisor = make_user("supervisor")
    _data(admin, agent, supervisor)
    domain = make_domain("customer-service.acme-international.example")
    setup = wizard.start_setup(domain.id, admin.id)
    wizard.update_address_step(setup, custom_values(
        "international-support-desk@customer-service.acme-international.example",
        display_name="Acme International Customer Support Desk", incoming_host="imap.customer-service.example.net",
        outgoing_host="smtp.customer-service.example.net"), "pw")
    address, _ = addresses.save_setup(setup)
    address.last_test_ok, address.last_test_message = False, "Connection refused " * 5
    publish_addresses([address.id], admin.id, "First version of the international support desk address")
    add_key("customer-service.acme-international.example", "selector2026")
    edit = wizard.start_edit(address.id, admin.id)  # an open Edit wizard: its steps are walked
    _db.session.commit()
    return admin, edit.token


def _admin_paths(setup_token: str) -> list[str]:
    def newest(model):
        return _db.session.scalar(select(model.id).order_by(model.id.desc()).limit(1))

    address = _db.session.scalar(select(EmailAddress.id).where(EmailAddress.address.like("international%")))
    platform_setup = _db.session.scalar(select(AddressSetup.token).where(AddressSetup.token != setup_token)
                                        .order_by(AddressSetup.id.desc()).limit(1))
    domain = _db.session.scalar(select(EmailAddress.domain_id).where(EmailAddress.id == address))
    flow, queue = newest(Flow), newest(Queue)
    wizard_base = f"/channels/email/setup/{setup_token}"
    return [
        "/channels/email/", "/channels/email/domains/new", f"/channels/email/domains/{domain}/exchange",
        f"/channels/email/domains/{domain}/delete", f"/channels/email/addresses/{address}/delete",
        f"/channels/email/addresses/{address}/send-test", f"/channels/email/{address}/blocklist",
        f"{wizard_base}/address", f"{wizard_base}/design", f"{wizard_base}/design/header", f"{wizard_base}/review",
        f"/channels/email/setup/{platform_setup}/address",
        "/channels/dkim/", "/channels/dkim/new",
        "/flows/", "/flows/new", f"/flows/{flow}/edit", f"/flows/{flow}/rules/new", "/flows/intents/",
        "/flows/queues/", f"/flows/queues/{queue}", f"/flows/conversations/{newest(Conversation)}/runs",
        "/channels/publish/", "/channels/publish/new", "/channels/publish/history",
        "/admin/users/", "/admin/users/new", f"/admin/users/{newest(User)}",
        "/admin/audit/",
        "/ops/", "/ops/inbound/", "/ops/suppressions/", "/ops/metrics/",
        "/responses/", "/responses/new", f"/responses/{newest(StandardResponse)}/edit", "/responses/groups/new",
        f"/responses/groups/{newest(ResponseGroup)}/edit",
    ]


def test_every_admin_page_fits_a_phone_and_a_laptop_without_sideways_scrolling(app, browser, live_url, db):
    admin, setup_token = _seed()
    paths = _admin_paths(setup_token)
    overflowing, errors, broken = [], [], []
    for width in WIDTHS:
        context = browser.new_context(base_url=live_url, viewport={"width": width, "height": 800})
        context.add_init_script(DUPLICATE_IDS_SCRIPT)
        page = context.new_page()
        seen: list[str] = []
        page.on("pageerror", lambda exc: seen.append(f"{page.url}: {exc}"))
        page.on("console", lambda msg: seen.append(f"{page.url}: {msg.text}")
                if msg.type == "error" and "Failed to load resource" not in msg.text else None)
        page.goto("/login")
        page.get_by_label("Email").fill(admin.email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url("**/inbox/")
        for path in paths:
            response = page.goto(path)
            if response is None or response.status >= 400:
                broken.append((width, path, response and response.status))
                continue
            page.wait_for_load_state("networkidle")
            if found := page.evaluate(OVERFLOW_SCRIPT):
                overflowing.append((width, path, found))
        # A dialog loaded by htmx (a swap, then settle) fits too, and logs nothing.
        page.goto("/channels/email/")
        page.get_by_role("button", name="New Domain").click()
        dialog = page.get_by_role("dialog", name="New Domain")
        dialog.wait_for()
        page.wait_for_load_state("networkidle")
        if found := page.evaluate(OVERFLOW_SCRIPT):
            overflowing.append((width, "/channels/email/ + New Domain dialog", found))
        box = dialog.bounding_box()
        if box is None or box["x"] < 0 or box["x"] + box["width"] > width:
            overflowing.append((width, "New Domain dialog", box))
        errors += seen
        context.close()
    assert broken == []
    assert overflowing == []
    assert errors == []


def _sign_in(page, admin):
    page.goto("/login")
    page.get_by_label("Email").fill(admin.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/inbox/")


def test_the_menu_column_lines_up_and_the_insert_chips_are_all_visible(app, page, db):
    admin, setup_token = _seed()
    _sign_in(page, admin)
    page.goto("/channels/email/")
    # The ⋮ cell is a table cell like its row's others: its bottom border is theirs.
    rows = page.evaluate("""() => [...document.querySelectorAll("table.addresses tbody tr")].map((tr) => {
      const cells = [...tr.children].map((td) => td.getBoundingClientRect());
      return {display: getComputedStyle(tr.lastElementChild).display,
              bottoms: [...new Set(cells.map((c) => Math.round(c.bottom)))],
              tops: [...new Set(cells.map((c) => Math.round(c.top)))]};
    })""")
    assert rows and all(r["display"] == "table-cell" and len(r["bottoms"]) == 1 and len(r["tops"]) == 1
                        for r in rows), rows

    page.goto(f"/channels/email/setup/{setup_token}/design/header")
    chips = page.locator("button.chip")
    assert chips.count() >= 5
    for n in range(chips.count()):
        chip = chips.nth(n)
        chip.scroll_into_view_if_needed()
        # What the admin sees at the chip's centre is the chip itself (no box cuts it off).
        hit = chip.evaluate("""(el) => { const b = el.getBoundingClientRect();
          return document.elementFromPoint(b.left + b.width / 2, b.top + b.height / 2) === el; }""")
        assert hit, chip.inner_text()
        chip.click()
    value = page.get_by_label("Header HTML").input_value()
    assert "{{ conversation_reference }}" in value and "{{ display_name }}" in value
    assert page.js_errors == []
