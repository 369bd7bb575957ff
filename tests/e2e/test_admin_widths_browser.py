"""Every admin page in a real browser at a phone's width (390 px) and a laptop's (1280 px): nothing makes the
page itself scroll sideways (wide tables stack or scroll inside their own box) and no console errors.

The pages come with data in them (long addresses and names, every table with rows), because an empty
page never overflows. Each width is walked in its own browser window; each page is opened as a pasted
link would open it.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from rq.job import Job
from rq.registry import FailedJobRegistry
from rq.results import Result
from sqlalchemy import select

from app.channels import addresses, wizard
from app.extensions import db as _db
from app.flows import alerts, timers
from app.flows.sla_policies import add_policy
from app.mail.sink import list_outbox, write_message
from app.models.auth import Queue, User
from app.models.channels import AddressSetup, EmailAddress
from app.models.flows import Flow, Intent
from app.models.inbound import ForwardingConfirmation
from app.models.inbox import Contact, Conversation
from app.models.notifications import Notification
from app.models.responses import ResponseGroup, StandardResponse
from app.models.send_tests import SendTest
from app.publish.services import publish_addresses
from app.queues import get_queue
from app.runtime.dkim import add_key
from tests.channel_factories import custom_values, make_domain
from tests.e2e.conftest import DUPLICATE_IDS_SCRIPT
from tests.factories import PASSWORD, make_address, make_conversation, make_message, make_user
from tests.reports_seed import seed_history
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


def _seed(outbox_dir=None):
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
    if outbox_dir is not None:
        _seed_newer_pages(admin, outbox_dir)
    return admin, edit.token


LONG_TAG = "refund-requested-by-the-international-customer"
#: A platform address with a long name (its Forwarding page) and the mailbox it is forwarded from.
PLATFORM = "global-customer-care-desk-for-all-orders@mail.pigeonhole.test"


def _seed_newer_pages(admin, outbox_dir):
    """Data for the pages added after the walk was first written: the reports' history (charts and
    tables by queue and by tag), a queue's SLA policies, timers and alerts, a failed job, the Outbox's
    messages, the admin's notifications, a contact with long details, a forwarding confirmation."""
    seed_history(date.today() - timedelta(days=6), 7)
    queue = _db.session.scalar(select(Queue).order_by(Queue.id.desc()).limit(1))
    add_policy(queue.id, name="Priority customers of the international support desk", priority=None, tag=LONG_TAG,
               first_response_minutes=90, next_response_minutes=24 * 60 + 5, resolution_minutes=3 * 24 * 60,
               warning_minutes=45)
    timers.save_timer(queue.id, "customer_idle", True, 2 * 24 * 60,
                      "<p>Dear {{ customer_name }}, we have not heard from you for {{ elapsed_time }} about your parcel.</p>",
                      None)
    alerts.save_alert(queue.id, "service_level", 80, 30, 60,
                      "ada.administrator.with.a.long.name@example.test, operations-escalations@example.test")
    conversation = make_conversation(contact_email="wilhelmina.featherstonehaugh-cholmondeley@example-customer.co.uk",
                                     contact_name="Wilhelmina Featherstonehaugh-Cholmondeley",
                                     subject="Parcel 4711-0815-2342 never arrived at our Rotterdam warehouse")
    contact = conversation.contact
    contact.organization = "Featherstonehaugh International Logistics and Warehousing B.V."
    contact.extra_addresses = "w.featherstonehaugh@rotterdam-warehouse.example-customer.co.uk"
    contact.notes = "Prefers mail in English; " * 8
    note = make_message(conversation, direction="note", author=admin, text="A note", html="<p>A note</p>")
    for kind, text in (("mention", "Sam Supervisor mentioned you in " + conversation.subject),
                       ("overdue", "Overdue: " + conversation.subject), ("alert", "Response Service Level " * 4)):
        _db.session.add(Notification(user_id=admin.id, conversation_id=conversation.id, message_id=note.id,
                                     kind=kind, text=text))
    _db.session.add(Intent(name="damaged parcel delivered to the wrong international warehouse",
                           description="The parcel arrived broken, or at another warehouse than the one ordered",
                           examples=["My parcel 4711-0815-2342 arrived at the Rotterdam warehouse instead of "
                                     "Antwerp and the box was crushed"] * 3))
    platform = make_address(PLATFORM, display_name="Acme International Customer Care",
                            forwarded_from="customer-care@acme-international-holdings.example")
    _db.session.add(ForwardingConfirmation(
        address_id=platform.id, provider="gmail", requested_by="customer-care@acme-international-holdings.example",
        link="https://mail-settings.google.com/mail/vf-%5BANGjdJ8" + "x" * 120, code="187412345",
        subject="(#187412345) Gmail Forwarding Confirmation - Receive Mail from customer-care@acme-international"))
    _db.session.commit()

    # A failed job, as a worker records one, with a long call and traceback.
    flows = get_queue("flows")
    job = Job.create("jobs.flows.run_flows", args=["conversation-" + "4711" * 20], connection=flows.connection,
                     serializer=flows.serializer, origin="flows")
    job.ended_at = datetime.now(timezone.utc)
    trace = ("Traceback (most recent call last):\n  File \"/srv/pigeonhole/app/flows/engine.py\", line 812, in run\n"
             "ValueError: " + "the rule's condition could not be read " * 6)
    Result.create_failure(job, 600, trace)
    FailedJobRegistry(queue=flows).add(job, ttl=600, exc_string=trace)

    for n in range(2):
        write_message(outbox_dir, "international-support-desk@customer-service.acme-international.example",
                      ["wilhelmina.featherstonehaugh-cholmondeley@example-customer.co.uk"], (
                          "From: Acme International Customer Support Desk "
                          "<international-support-desk@customer-service.acme-international.example>\r\n"
                          "To: wilhelmina.featherstonehaugh-cholmondeley@example-customer.co.uk\r\n"
                          f"Subject: Re: Parcel 4711-0815-2342 never arrived at our Rotterdam warehouse ({n})\r\n"
                          "Content-Type: text/html; charset=utf-8\r\n\r\n"
                          "<p>It ships <b>today</b>: " + "https://tracking.example/" + "0815" * 30 + "</p>\r\n"
                      ).encode())


def _admin_paths(setup_token: str, outbox_dir) -> list[str]:
    def newest(model):
        return _db.session.scalar(select(model.id).order_by(model.id.desc()).limit(1))

    address = _db.session.scalar(select(EmailAddress.id).where(EmailAddress.address.like("international%")))
    platform_setup = _db.session.scalar(select(AddressSetup.token).where(AddressSetup.token != setup_token)
                                        .order_by(AddressSetup.id.desc()).limit(1))
    domain = _db.session.scalar(select(EmailAddress.domain_id).where(EmailAddress.id == address))
    flow, queue = newest(Flow), newest(Queue)
    wizard_base = f"/channels/email/setup/{setup_token}"
    platform = _db.session.scalar(select(EmailAddress.id).where(EmailAddress.address == PLATFORM))
    contact = _db.session.scalar(select(Contact.id).where(Contact.email.like("wilhelmina%")))
    rule = _db.session.get(Flow, flow).rules[0]["id"]
    outbox = list_outbox(outbox_dir)[0].name
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
        # pages added since the walk was first written
        f"/channels/email/addresses/{platform}/forwarding", f"/channels/email/send-tests/{newest(SendTest)}",
        "/channels/publish/versions/1", "/channels/publish/versions/1/compare", "/channels/publish/versions/1/restore",
        f"/flows/{flow}/rules/{rule}", f"/flows/{flow}/update", f"/flows/{flow}/publish",
        f"/flows/intents/{newest(Intent)}", "/flows/queues/new",
        f"/flows/queues/{queue}/service-levels", f"/flows/queues/{queue}/timers",
        "/ops/jobs/", "/ops/outbox/", f"/ops/outbox/{outbox}",
        f"/responses/{newest(StandardResponse)}/delete", f"/responses/groups/{newest(ResponseGroup)}/delete",
        "/dashboard", "/reports/", "/reports/?days=30&by=tag",
        "/notifications", "/profile", f"/inbox/contacts/{contact}",
    ]


def test_every_admin_page_fits_a_phone_and_a_laptop_without_sideways_scrolling(app, browser, live_url, db, tmp_path):
    app.config["OUTBOX_DIR"] = str(tmp_path / "outbox")
    admin, setup_token = _seed(tmp_path / "outbox")
    paths = _admin_paths(setup_token, tmp_path / "outbox")
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
    assert broken == [], broken
    assert overflowing == [], "\n".join(map(str, overflowing))
    assert errors == [], "\n".join(errors)


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
