"""The rich-text editor of Edit Header in a real browser: bold, a link, colour, an uploaded image (shown from our
URL in the editor), HTML view, Save, the Preview; no console errors under the page CSP; usable at 390 px."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.models.channels import AddressSetup
from tests.e2e.conftest import PNG
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


def design_step(page):
    """A new platform address, filled in, at its Email Template Design step with the design on."""
    page.goto("/channels/email/")
    page.locator("#platform-domain").get_by_role("button", name="New Email Address").click()
    page.get_by_label("Email Address").fill("help")
    page.get_by_label("Display Name").fill("Acme Help")
    page.get_by_label("Forwarded from").fill("help@acme.example")
    page.get_by_role("group", name="Usage").get_by_label("Inbound and Outbound").check()
    page.get_by_role("group", name="Send contact card (.VCF)").get_by_label("No").check()
    page.get_by_role("group", name="Enable Channel").get_by_label("Yes").check()
    page.get_by_role("button", name="Next").click()
    expect(page).to_have_url(re.compile(r"/channels/email/setup/[\w-]+/design$"))
    page.get_by_label("Email Template Design (Optional)").check()


def select_text(page, locator, text: str):
    """Select `text` inside `locator` (a contenteditable), as a drag of the mouse would."""
    locator.evaluate("""(area, text) => {
        const walker = document.createTreeWalker(area, NodeFilter.SHOW_TEXT);
        while (walker.nextNode()) {
            const at = walker.currentNode.data.indexOf(text);
            if (at >= 0) {
                const range = document.createRange();
                range.setStart(walker.currentNode, at);
                range.setEnd(walker.currentNode, at + text.length);
                const sel = getSelection(); sel.removeAllRanges(); sel.addRange(range);
                return;
            }
        }
        throw new Error("not found: " + text);
    }""", text)


def test_rich_editor_bold_link_image_html_view_save_and_preview(admin_page, unique_ids, db, tmp_path):
    page = admin_page
    design_step(page)
    page.get_by_role("button", name="Edit Header").click()
    dialog = page.get_by_role("dialog", name="Edit Header")
    expect(dialog).to_be_visible()
    area = dialog.get_by_role("textbox", name="Header", exact=True)
    expect(area).to_be_visible()
    expect(dialog.get_by_label("Header HTML")).to_be_hidden()  # the textarea under it, still in the form
    expect(dialog.get_by_text("What mail keeps")).to_be_visible()

    area.click()
    page.keyboard.type("Welcome to Acme Help. Read our guide.")
    select_text(page, area, "Welcome")
    dialog.get_by_role("button", name="Bold").click()
    expect(area.locator("b")).to_have_text("Welcome")

    select_text(page, area, "our guide")
    dialog.get_by_role("button", name="Link").click()
    dialog.get_by_label("Link address").fill("https://acme.example/guide")
    dialog.get_by_role("button", name="Add link").click()
    expect(area.locator("a")).to_have_attribute("href", "https://acme.example/guide")

    select_text(page, area, "Acme Help")
    dialog.get_by_label("Text colour").evaluate(
        "(input) => { input.value = '#cc0000'; input.dispatchEvent(new Event('change', {bubbles: true})); }")
    expect(area.locator("font[color='#cc0000']")).to_have_text("Acme Help")

    select_text(page, area, "Read")
    dialog.get_by_role("button", name="Align centre").click()
    # Shown in the editor too (set through the CSSOM: a style attribute would be refused by the page policy).
    assert area.evaluate("(a) => [...a.querySelectorAll('*')].some((e) => getComputedStyle(e).textAlign === 'center')")
    select_text(page, area, "Welcome")
    dialog.get_by_label("Background colour").evaluate(
        "(input) => { input.value = '#222244'; input.dispatchEvent(new Event('change', {bubbles: true})); }")
    expect(area.get_by_text("Welcome")).to_have_css("background-color", "rgb(34, 34, 68)")

    # An image by upload: refused with a clear message when it is not an image, then a PNG.
    bad = tmp_path / "notes.txt"
    bad.write_text("not an image")
    dialog.get_by_label("Image").set_input_files(str(bad))
    expect(dialog.get_by_role("status")).to_contain_text("“notes.txt” is not a PNG, JPEG or GIF image")
    logo = tmp_path / "logo.png"
    logo.write_bytes(PNG)
    area.press("End")
    dialog.get_by_label("Image").set_input_files(str(logo))
    expect(dialog.get_by_role("status")).to_contain_text("Image added: logo.png.")
    image = area.locator("img")
    expect(image).to_have_attribute("src", re.compile(r"^/channels/email/template-images/[0-9a-f]{64}$"))
    assert image.evaluate("(img) => img.complete && img.naturalWidth") == 1  # shown from our URL

    # The live Preview shows the same: bold, link, colour, the image from our URL.
    frame = dialog.frame_locator("iframe[title='Preview: HTML part']")
    expect(frame.locator(".ph-header b")).to_have_text("Welcome")
    # The sandboxed frame has no cookies: the image is inlined there, as a data: URI.
    expect(frame.locator(".ph-header img")).to_have_attribute("src", re.compile(r"^data:image/png;base64,"))

    # HTML view: the textarea shows the HTML; an edit there comes back to the rich view.
    dialog.get_by_role("button", name="HTML view").click()
    source = dialog.get_by_label("Header HTML")
    expect(source).to_be_visible()
    expect(area).to_be_hidden()
    assert re.search(r"<b><span style=\"background-color: rgb\(34, 34, 68\);\">Welcome</span></b>",
                     source.input_value()) and 'href="https://acme.example/guide"' in source.input_value()
    source.fill(source.input_value().replace("Welcome", "Hello {{ customer_name }}"))
    dialog.get_by_role("button", name="HTML view").click()
    expect(area.locator("b")).to_have_text("Hello {{ customer_name }}")

    dialog.get_by_role("button", name="Save Header").click()
    expect(dialog).to_be_hidden()
    expect(page.get_by_text("Header saved.")).to_be_visible()
    setup_id = re.search(r"/setup/([\w-]+)/", page.url).group(1)
    db.session.expire_all()
    stored = db.session.scalar(select(AddressSetup).where(AddressSetup.token == setup_id)).values["header_html"]
    assert re.search(r"<b><span style=\"[^\"]*\">Hello \{\{ customer_name \}\}</span></b>", stored) and 'href="https://acme.example/guide"' in stored
    assert "text-align:center" in stored.replace(" ", "") and '<font color="#cc0000">' in stored
    assert "background-color:rgb(34,34,68)" in stored.replace(" ", "")
    assert re.search(r'src="cid:tpl-[0-9a-f]{64}@pigeonhole"', stored) and "template-images" not in stored

    # The design step's Preview: the saved header and its image.
    design = page.locator("#design-preview").frame_locator("iframe")
    expect(design.locator(".ph-header b")).to_have_text("Hello Carol Customer")
    expect(design.locator(".ph-header a")).to_have_attribute("href", "https://acme.example/guide")
    shown = design.locator(".ph-header img")
    expect(shown).to_have_attribute("src", re.compile(r"^data:image/png;base64,"))
    assert shown.evaluate("(img) => img.decode().then(() => img.naturalWidth)") == 1

    # Opening it again shows the image from our URL in the editor (not cid:).
    page.get_by_role("button", name="Edit Header").click()
    dialog = page.get_by_role("dialog", name="Edit Header")
    expect(dialog.get_by_role("textbox", name="Header", exact=True).locator("img")).to_have_attribute(
        "src", re.compile(r"^/channels/email/template-images/"))
    assert page.js_errors == [], page.js_errors


def test_rich_editor_fits_a_phone_screen(browser, live_url, db):
    make_user("admin", email="ada@example.test", name="Ada Admin")
    context = browser.new_context(base_url=live_url, viewport={"width": 390, "height": 844})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    try:
        page.goto("/login")
        page.get_by_label("Email").fill("ada@example.test")
        page.get_by_label("Password").fill(USER_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url("/inbox/")
        design_step(page)
        edit = page.get_by_role("button", name="Edit Header")
        url = edit.get_attribute("hx-get")
        page.goto(url)  # the editor as a page of its own (no JavaScript dialog)
        area = page.get_by_role("textbox", name="Header", exact=True)
        expect(area).to_be_visible()
        toolbar = page.get_by_role("toolbar", name="Formatting")
        expect(toolbar.get_by_role("button", name="HTML view")).to_be_visible()
        wide = page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert wide <= 0, f"the page scrolls sideways by {wide}px at 390 px"
        box = toolbar.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390
        # And as the dialog over the design step.
        page.go_back()
        page.get_by_role("button", name="Edit Header").click()
        dialog = page.get_by_role("dialog", name="Edit Header")
        expect(dialog.get_by_role("toolbar", name="Formatting")).to_be_visible()
        for name in ("Bold", "HTML view"):
            button = dialog.get_by_role("button", name=name).bounding_box()
            assert button["x"] >= 0 and button["x"] + button["width"] <= 390, name
        wide = page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert wide <= 0, f"the page scrolls sideways by {wide}px at 390 px with the dialog open"
        assert errors == []
    finally:
        context.close()


def test_standard_response_body_gets_the_rich_editor_and_saves_html(page, unique_ids, db):
    from app.models.responses import StandardResponse
    from tests.factories import make_response

    make_user("supervisor", email="sue@example.test", name="Sue Supervisor")
    existing = make_response(title="Shipping times", group_name="Shipping")
    page.goto("/login")
    page.get_by_label("Email").fill("sue@example.test")
    page.get_by_label("Password").fill(USER_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url("/inbox/")
    page.goto("/responses/")
    page.get_by_role("button", name="Add a response to Shipping").click()
    dialog = page.get_by_role("dialog", name="New response")
    dialog.get_by_label("Title").fill("Refunds")
    area = dialog.get_by_role("textbox", name="Response text")
    area.click()
    page.keyboard.type("Refunds take five days.")
    select_text(page, area, "five days")
    dialog.get_by_role("button", name="Italic").click()
    dialog.get_by_role("button", name="Bulleted list").click()
    area.press("End")  # nothing selected: the link's address becomes its text
    dialog.get_by_role("button", name="Link").click()
    dialog.get_by_label("Link address").fill("javascript:alert(1)")
    dialog.get_by_label("Link address").press("Enter")
    expect(dialog.get_by_role("status")).to_contain_text("Write a link starting with https://")
    dialog.get_by_label("Link address").fill("https://acme.example/refunds")
    dialog.get_by_label("Link address").press("Enter")
    expect(area.get_by_role("link", name="https://acme.example/refunds")).to_be_visible()
    expect(dialog.get_by_role("button", name="Image")).to_have_count(0)  # images: headers and footers only
    dialog.get_by_role("button", name="Save response").click()
    expect(dialog).to_be_hidden()
    db.session.expire_all()
    saved = db.session.query(StandardResponse).filter_by(title="Refunds", group_id=existing.group_id).one()
    assert "<i>five days</i>" in saved.body and "<li>" in saved.body
    assert '<a href="https://acme.example/refunds"' in saved.body
    assert page.js_errors == [], page.js_errors
