"""Test Connection in a real browser: a silent server "did not answer in time (N s)", and a result goes
away on reload together with the unsaved values it tested (issue 20, defect 4)."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.channel_factories import make_domain
from tests.e2e.test_channels_browser import admin_page, fill_custom_address, next_step  # noqa: F401 (fixture)

pytestmark = pytest.mark.browser


def test_silent_server_timeout_and_a_result_that_does_not_outlive_its_values(app, admin_page, mail_servers):  # noqa: F811
    app.config["MAIL_TLS_CA_FILE"] = str(mail_servers.ca_file)
    app.config["PROBE_TIMEOUT_SECONDS"] = 1
    make_domain("quiet.test")
    page = admin_page
    page.goto("/channels/email/")
    domain = page.locator("section.domain").filter(has=page.get_by_role("heading", name="quiet.test"))
    domain.get_by_role("button", name="New Email Address").click()
    expect(page).to_have_url(re.compile(r"/channels/email/setup/[\w-]+/address$"))
    page.wait_for_load_state("load")
    fill_custom_address(page, "help@quiet.test", mail_servers, incoming_port=mail_servers.silent.port)
    page.get_by_role("button", name="Test Connection").click()
    results = page.locator("#test-results")
    expect(results).to_contain_text("Incoming: Failed.", timeout=15000)
    expect(results).to_contain_text("The server did not answer in time (1 s).")
    expect(results).not_to_contain_text("closed the connection")

    # Reload: the typed values were never saved, so their result goes with them.
    page.reload()
    expect(page.get_by_label("Email Address")).to_have_value("")
    expect(page.locator("#test-results")).not_to_contain_text("Incoming")

    # Test again and save the step: back on it, the values and their result show together.
    fill_custom_address(page, "help@quiet.test", mail_servers, incoming_port=mail_servers.silent.port, fresh=False)
    page.get_by_role("button", name="Test Connection").click()
    expect(results).to_contain_text("did not answer in time (1 s)", timeout=15000)
    next_step(page, "design")
    page.go_back()
    page.reload()
    expect(page.get_by_label("Email Address")).to_have_value("help@quiet.test")
    expect(page.locator("#test-results")).to_contain_text("The server did not answer in time (1 s).")
    assert page.js_errors == []
