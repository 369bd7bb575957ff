"""The channel setup in a real browser: what an admin clicks through, with the labels the issue names."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from app.runtime.live import published_address
from tests.channel_fixtures import MAILBOX, PASSWORD
from tests.factories import PASSWORD as USER_PASSWORD, make_user

pytestmark = pytest.mark.browser


@pytest.fixture
def admin_page(page, db):
    make_user("admin", email="ada@example.test", name="Ada Admin")
    page.goto("/login")
    page.get_by_label("Email").fill("ada@example.test")
    page.get_by_label("Password").fill(USER_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url("/inbox/")
    return page


def open_channels(page):
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Channels").click()
    expect(page.get_by_role("heading", name="Channels › Email")).to_be_visible()


def next_step(page, step: str):
    """Click "Next" and wait until the wizard shows `step` (its own URL)."""
    page.get_by_role("button", name="Next").click()
    expect(page).to_have_url(re.compile(rf"/channels/email/setup/[\w-]+/{step}$"))


def row_menu(page, address: str):
    row = page.get_by_role("row").filter(has_text=address)
    row.get_by_role("button", name=f"Actions for {address}").click()
    return row


def test_platform_address_with_header_footer_and_a_live_preview(admin_page):
    page = admin_page
    open_channels(page)
    page.locator("#platform-domain").get_by_role("button", name="New Email Address").click()
    expect(page.get_by_role("heading", name="New Email Address")).to_be_visible()

    # Step 1, with a mistake first: the step comes back with the error next to its field.
    page.get_by_label("Email Address").fill("help")
    page.get_by_label("Display Name").fill("Acme Help")
    page.get_by_label("Forwarded from").fill("help@mail.pigeonhole.test")
    page.get_by_role("group", name="Usage").get_by_label("Inbound and Outbound").check()
    page.get_by_role("group", name="Send contact card (.VCF)").get_by_label("Yes").check()
    page.get_by_role("group", name="Enable Channel").get_by_label("Yes").check()
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_text("outside the platform domain")).to_be_visible()
    expect(page.get_by_label("Forwarded from")).to_have_attribute("aria-invalid", "true")
    page.get_by_label("Forwarded from").fill("help@acme.example")
    next_step(page, "design")

    # Step 2: its own URL; switch the template design on, edit the header and watch the preview.
    page.get_by_label("Email Template Design (Optional)").check()
    page.get_by_role("button", name="Edit Header").click()
    editor = page.get_by_role("dialog", name="Edit Header")
    expect(editor).to_be_visible()
    frame = editor.frame_locator("iframe[title='Preview: HTML part']")
    expect(frame.locator("body")).to_contain_text("Thank you for your message")
    editor.get_by_role("button", name="HTML view").click()  # the textarea under the rich-text editor
    editor.get_by_label("Header HTML").fill("<p>Hello {{ customer_name }}, this is {{ display_name }}</p>")
    expect(frame.locator(".ph-header")).to_have_text("Hello Carol Customer, this is Acme Help")
    expect(editor.get_by_test_id("preview-text")).to_contain_text("Hello Carol Customer, this is Acme Help")
    editor.get_by_label("Header HTML").press_sequentially(" {{ custmer }}", delay=10)
    expect(editor.get_by_role("alert")).to_contain_text("Unknown placeholder: {{ custmer }}")
    editor.get_by_label("Header HTML").fill("<p onclick=\"steal()\">Hello {{ customer_name }}</p>")
    editor.get_by_role("button", name="customer_name").click()  # placeholder buttons insert at the cursor
    expect(editor.get_by_label("Header HTML")).to_have_value(
        "<p onclick=\"steal()\">Hello {{ customer_name }}</p>{{ customer_name }}")
    editor.get_by_label("Header HTML").fill("<p onclick=\"steal()\">Hello {{ customer_name }}</p>")
    editor.get_by_role("button", name="Save Header").click()
    expect(editor).to_be_hidden()
    expect(page.get_by_text("Header saved.")).to_be_visible()
    expect(page.locator(".template-part").first).to_contain_text("<p>Hello {{ customer_name }}</p>")  # sanitised

    page.get_by_role("button", name="Edit Footer").click()
    footer = page.get_by_role("dialog", name="Edit Footer")
    footer.get_by_role("button", name="HTML view").click()
    footer.get_by_label("Footer HTML").fill("<p>{{ agent_name }} · ref {{ conversation_reference }}</p>")
    expect(footer.frame_locator("iframe").locator(".ph-footer")).to_have_text("Alex Agent · ref #1042")
    footer.get_by_role("button", name="Save Footer").click()
    expect(footer).to_be_hidden()
    design_frame = page.locator("#design-preview").frame_locator("iframe")
    expect(design_frame.locator(".ph-header")).to_have_text("Hello Carol Customer")
    expect(design_frame.locator(".ph-footer")).to_have_text("Alex Agent · ref #1042")

    # Back works (each step is a URL), then Review and Save.
    page.go_back()
    expect(page).to_have_url(re.compile(r"/address$"))
    expect(page.get_by_label("Display Name")).to_have_value("Acme Help")
    page.go_forward()
    next_step(page, "review")
    expect(page.get_by_role("heading", name="Review")).to_be_visible()
    page.reload()  # the wizard's state lives in the database, not the page
    expect(page.get_by_text("help@acme.example", exact=True)).to_be_visible()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Email address help@mail.pigeonhole.test saved. Publish to make it live.")).to_be_visible()
    row = page.get_by_role("row").filter(has_text="help@mail.pigeonhole.test")
    expect(row).to_contain_text("Never published")

    # "⋮" > Edit reopens the same form; "Update" saves.
    row_menu(page, "help@mail.pigeonhole.test")
    page.get_by_role("link", name="Edit").click()
    expect(page.get_by_role("heading", name="Edit Email Address")).to_be_visible()
    page.get_by_label("Display Name").fill("Acme Help Desk")
    next_step(page, "design")
    next_step(page, "review")
    page.get_by_role("button", name="Update").click()
    expect(page.get_by_text("Email address help@mail.pigeonhole.test updated.")).to_be_visible()
    expect(page.get_by_role("row").filter(has_text="help@mail.pigeonhole.test")).to_contain_text("Acme Help Desk")
    assert page.js_errors == []


def fill_custom_address(page, address, servers, password=PASSWORD, incoming_port=None, fresh=True):
    page.get_by_label("Email Address").fill(address)
    page.get_by_label("Display Name").fill("Acme Support")
    page.get_by_label("Password", exact=True).fill(password)
    incoming = page.get_by_role("group", name="Incoming")
    incoming.get_by_label("Protocol").select_option("IMAP")
    incoming.get_by_label("Use SSL to connect").check()
    if fresh:  # a port the admin typed stays; a default follows the protocol and security
        expect(incoming.get_by_label("Port")).to_have_value("993")
    incoming.get_by_label("Server").fill("127.0.0.1")
    incoming.get_by_label("Port").fill(str(incoming_port or servers.dovecot.ports["imaps"]))
    outgoing = page.get_by_role("group", name="Outgoing")
    outgoing.get_by_label("Server").fill("127.0.0.1")
    outgoing.get_by_label("Use STARTTLS").check()
    if fresh:
        expect(outgoing.get_by_label("Port")).to_have_value("587")
    outgoing.get_by_label("Port").fill(str(servers.smtp_starttls.port))


def test_custom_domain_three_addresses_the_fourth_refused_and_test_connection(app, admin_page, mail_servers):
    app.config["MAIL_TLS_CA_FILE"] = str(mail_servers.ca_file)
    app.config["PROBE_TIMEOUT_SECONDS"] = 2
    page = admin_page
    open_channels(page)

    page.get_by_role("button", name="New Domain").click()
    dialog = page.get_by_role("dialog", name="New Domain")
    dialog.get_by_label("Domain Name").fill("acme")
    dialog.get_by_role("button", name="Create").click()
    expect(dialog.get_by_text("It should have a period")).to_be_visible()
    dialog.get_by_label("Domain Name").fill("Acme.test")
    dialog.get_by_role("button", name="Create").click()
    expect(page.get_by_text("Domain acme.test created.")).to_be_visible()
    domain = page.locator("section.domain").filter(has=page.get_by_role("heading", name="acme.test"))

    # The first address: Test Connection green, then red, then green again before saving.
    domain.get_by_role("button", name="New Email Address").click()
    incoming = page.get_by_role("group", name="Incoming")
    expect(incoming.get_by_label("Port")).to_have_value("993")  # the wizard's page is in place, and
    page.wait_for_load_state("load")  # its scripts run (a change made before would find no listener)
    incoming.get_by_label("Protocol").select_option("POP3")
    expect(incoming.get_by_label("Port")).to_have_value("995")
    fill_custom_address(page, MAILBOX, mail_servers)
    page.get_by_role("button", name="Test Connection").click()
    results = page.locator("#test-results")
    expect(results).to_contain_text("Incoming: Success.", timeout=15000)
    expect(results).to_contain_text("opened INBOX read-only")
    expect(results).to_contain_text("Outgoing: Success.")
    expect(results).to_contain_text("nothing was sent")

    page.get_by_label("Password", exact=True).fill("not-the-password")
    page.get_by_role("group", name="Incoming").get_by_label("Port").fill(str(mail_servers.closed_port()))
    page.get_by_role("button", name="Test Connection").click()
    expect(results).to_contain_text("Incoming: Failed.", timeout=15000)
    expect(results).to_contain_text("The server refused the connection.")
    expect(results).to_contain_text("Outgoing: Failed.")
    expect(results).to_contain_text("The server refused the user name or password.")
    expect(results.locator(".test-bad")).to_have_count(2)

    fill_custom_address(page, MAILBOX, mail_servers, fresh=False)
    page.get_by_role("button", name="Test Connection").click()
    expect(results.locator(".test-ok")).to_have_count(2, timeout=15000)
    next_step(page, "design")
    next_step(page, "review")
    expect(page.get_by_text("Passed")).to_be_visible()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("row").filter(has_text=MAILBOX)).to_contain_text("Passed")

    # Two more (saving does not require a passing test) ...
    for local in ("sales", "billing"):
        domain.get_by_role("button", name="New Email Address").click()
        fill_custom_address(page, f"{local}@acme.test", mail_servers, password="whatever",
                            incoming_port=mail_servers.closed_port())
        next_step(page, "design")
        next_step(page, "review")
        page.get_by_role("button", name="Save").click()
        expect(page.get_by_text(f"Email address {local}@acme.test saved.")).to_be_visible()
    expect(domain).to_contain_text("3 of 3 addresses")
    expect(page.get_by_role("row").filter(has_text="sales@acme.test")).to_contain_text("Not tested")

    # ... and a fourth cannot be started: the button is disabled, and the page says why.
    expect(domain.get_by_role("button", name="New Email Address")).to_be_disabled()
    expect(domain.get_by_text(re.compile(r"acme.test has its 3 email addresses, the most a custom domain can have"))
           ).to_be_visible()

    # The domain cannot be deleted while it holds addresses.
    domain.get_by_role("button", name="Actions for acme.test").click()
    domain.get_by_role("button", name="Delete").click()
    blocked = page.get_by_role("dialog", name="Delete acme.test?")
    expect(blocked.get_by_role("alert")).to_contain_text("still has 3 email addresses")
    blocked.get_by_role("link", name="Close").click()
    expect(blocked).to_be_hidden()
    assert page.js_errors == []


def test_menu_keyboard_and_delete_with_confirmation(admin_page, db):
    from tests.channel_factories import make_address, platform_values
    from app.models.auth import User
    from sqlalchemy import select

    admin = db.session.scalar(select(User).where(User.email == "ada@example.test"))
    make_address(admin, values=platform_values("old"))
    page = admin_page
    open_channels(page)
    button = page.get_by_role("button", name="Actions for old@mail.pigeonhole.test")
    expect(button).to_have_attribute("aria-expanded", "false")
    button.click()
    expect(button).to_have_attribute("aria-expanded", "true")
    expect(page.get_by_role("link", name="Edit")).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(page.get_by_role("link", name="Forwarding")).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(page.get_by_role("link", name="Email Blocklist")).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(page.get_by_role("link", name="Send test email")).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(page.get_by_role("button", name="Delete")).to_be_focused()
    page.keyboard.press("Escape")
    expect(button).to_have_attribute("aria-expanded", "false")
    expect(button).to_be_focused()
    expect(page.get_by_role("link", name="Edit")).to_be_hidden()

    button.click()
    page.get_by_role("button", name="Delete").click()
    dialog = page.get_by_role("dialog", name="Delete old@mail.pigeonhole.test?")
    expect(dialog).to_contain_text("This cannot be undone.")
    dialog.get_by_role("link", name="Cancel").click()
    expect(dialog).to_be_hidden()
    expect(page.get_by_role("row").filter(has_text="old@mail.pigeonhole.test")).to_be_visible()
    button.click()
    page.get_by_role("button", name="Delete").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(page.get_by_text("old@mail.pigeonhole.test deleted.")).to_be_visible()
    expect(page.get_by_role("row").filter(has_text="old@mail.pigeonhole.test")).to_have_count(0)
    assert page.js_errors == []


def test_attach_a_flow_then_publish_with_a_comment_and_see_the_history(admin_page, db):
    from sqlalchemy import select

    from app.flows.editing import ensure_flow
    from app.models.auth import User
    from tests.channel_factories import make_address, platform_values

    admin = db.session.scalar(select(User).where(User.email == "ada@example.test"))
    ensure_flow("Route to default queue", "Every new conversation goes to the General queue.")
    address = make_address(admin, values=platform_values("support"))
    page = admin_page

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Flows").click()
    expect(page.get_by_role("heading", name="Start Flows")).to_be_visible()
    page.get_by_role("button", name="Actions for Route to default queue").click()
    page.get_by_role("button", name="Update").click()
    dialog = page.get_by_role("dialog", name="Update Route to default queue")
    dialog.get_by_label("support@mail.pigeonhole.test").check()
    dialog.get_by_role("button", name="Update").click()
    expect(page.get_by_text("Route to default queue now serves support@mail.pigeonhole.test. Publish")).to_be_visible()
    expect(page.get_by_role("row").filter(has_text="Route to default queue")).to_contain_text(
        "support@mail.pigeonhole.test")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Publish").click()
    expect(page.get_by_role("heading", name="Publish", exact=True)).to_be_visible()
    page.get_by_role("button", name="Publish").click()
    dialog = page.get_by_role("dialog", name="Publish")
    expect(dialog).to_contain_text("New address (Inbound and Outbound, enabled)")
    expect(dialog).to_contain_text("New flow")
    dialog.get_by_role("button", name="Proceed").click()
    expect(dialog.get_by_text("Write a comment: why are you publishing?")).to_be_visible()
    expect(dialog.get_by_label("Comments")).to_be_focused()
    dialog.get_by_label("Comments").fill("Go live with support and its flow")
    dialog.get_by_role("button", name="Proceed").click()
    expect(dialog.get_by_text("You are about to publish 2 changes.")).to_be_visible()
    dialog.get_by_role("button", name="Confirm").click()
    expect(page.get_by_text("Published 2 changes.")).to_be_visible()
    expect(page.get_by_text("Everything is published.")).to_be_visible()
    history = page.get_by_role("table")
    expect(history).to_contain_text("Go live with support and its flow")
    expect(history).to_contain_text("Ada Admin")
    expect(history).to_contain_text("support@mail.pigeonhole.test: New address")
    db.session.expire_all()
    live = published_address("support@mail.pigeonhole.test")
    assert live is not None and live.flow_id is not None and address.id == live.id

    open_channels(page)
    expect(page.get_by_role("row").filter(has_text="support@mail.pigeonhole.test")).to_contain_text("Published")
    expect(page.get_by_role("row").filter(has_text="support@mail.pigeonhole.test")).to_contain_text(
        "Route to default queue")
    assert page.js_errors == []
