"""Publish (dialog, confirmation, history) and Flows > Start Flows (Update dialog) over HTTP."""
from __future__ import annotations

import re

import pytest

from app.channels import addresses, wizard
from app.publish import services as publishing
from app.runtime.live import published_address
from app.flows import editing
from tests.channel_factories import make_address, platform_values
from tests.helpers import csrf_token
from tests.pages import HX, fragment, full


@pytest.fixture
def admin(login_as):
    return login_as("admin", name="Ada Admin")


@pytest.fixture
def token(client, admin):
    return csrf_token(client, "/channels/publish/")


def test_navigation_publish_points_to_the_publish_page(client, admin):
    body = full(client.get("/channels/publish/"))
    assert '<a href="/channels/publish/" aria-current="page">Publish</a>' in body
    assert "Everything is published." in body and "Nothing has been published yet." in body


def test_publish_dialog_select_proceed_confirm_and_history(client, db, admin, token):
    flow = editing.ensure_flow("Route to default queue")
    a = make_address(admin, values=platform_values("a"))
    b = make_address(admin, values=platform_values("b"))
    db.session.commit()

    page = full(client.get("/channels/publish/"))
    assert "a@mail.pigeonhole.test" in page and "New address (Inbound and Outbound, enabled)" in page
    dialog = full(client.get("/channels/publish/new"))
    assert '<dialog id="publish-dialog"' in dialog and '<label for="comment">Comments</label>' in dialog
    dialog = fragment(client.get("/channels/publish/new", headers=HX))
    for key in (f"address:{a.id}", f"address:{b.id}", f"flow:{flow.id}"):
        assert f'value="{key}" checked' in dialog
    assert ">Proceed</button>" in dialog and "New flow" in dialog

    # Bad input: no comment, nothing selected, an unknown item.
    bad = fragment(client.post("/channels/publish/new", data={"csrf_token": token, "item": [f"address:{a.id}"]},
                               headers=HX), 422)
    assert "Write a comment: why are you publishing?" in bad
    bad = fragment(client.post("/channels/publish/new", data={"csrf_token": token, "comment": "x"}, headers=HX), 422)
    assert "Select at least one change to publish." in bad
    full(client.post("/channels/publish/new", data={"csrf_token": token, "comment": "x", "item": "address:999"}), 422)

    # Proceed: the confirmation lists exactly the selection; Back keeps it.
    chosen = {"csrf_token": token, "comment": "Launch A and the flow", "item": [f"address:{a.id}", f"flow:{flow.id}"]}
    confirm = fragment(client.post("/channels/publish/new", data=chosen, headers=HX))
    assert ">Confirm</button>" in confirm and "You are about to publish 2 changes." in confirm
    assert "a@mail.pigeonhole.test" in confirm and "b@mail.pigeonhole.test" not in confirm
    versions = dict(re.findall(r'name="(version-[a-z]+:\d+)" value="([^"]+)"', confirm))
    back = fragment(client.post("/channels/publish/new", data={**chosen, "back": "1"}, headers=HX))
    assert f'value="address:{b.id}">' in back and f'value="address:{a.id}" checked' in back
    assert "Launch A and the flow</textarea>" in back

    done = client.post("/channels/publish/confirm", data={**chosen, **versions}, headers=HX)
    assert done.status_code == 204 and done.headers["HX-Redirect"] == "/channels/publish/"
    db.session.expire_all()
    assert published_address(a.id) is not None and published_address(b.id) is None
    page = full(client.get("/channels/publish/"))
    assert "Published 2 changes." in page and "Launch A and the flow" in page and "Ada Admin" in page
    assert "b@mail.pigeonhole.test" in page.split("Publish history")[0]  # still pending
    history = full(client.get("/channels/publish/history"))
    assert "Launch A and the flow" in history and "New flow" in history
    assert "Launch A and the flow" in fragment(client.get("/channels/publish/history", headers=HX))
    assert "Launch A and the flow" in fragment(client.get("/channels/publish/", headers=HX))


def test_confirm_refuses_a_change_made_after_review(client, db, admin, token):
    a = make_address(admin, values=platform_values("a"))
    data = {"csrf_token": token, "comment": "go", "item": [f"address:{a.id}"]}
    confirm = fragment(client.post("/channels/publish/new", data=data, headers=HX))
    versions = dict(re.findall(r'name="(version-[a-z]+:\d+)" value="([^"]+)"', confirm))
    setup = wizard.start_edit(a.id, admin.id)
    wizard.update_address_step(setup, platform_values("a", display_name="Edited meanwhile"))
    addresses.save_setup(setup)
    db.session.commit()
    stale = fragment(client.post("/channels/publish/confirm", data={**data, **versions}, headers=HX), 422)
    assert "Changed since you reviewed it: a@mail.pigeonhole.test" in stale
    assert published_address(a.id) is None
    no_comment = full(client.post("/channels/publish/confirm", data={"csrf_token": token, "item": f"address:{a.id}"}),
                      422)
    assert "Write a comment" in no_comment
    assert client.post("/channels/publish/confirm", data={**data, "item": "bogus"}).status_code == 400


def test_history_pages(client, db, admin):
    a = make_address(admin, values=platform_values("a"))
    for n in range(21):
        publishing.publish(admin.id, f"comment {n:02d}", address_ids=[a.id])
    db.session.commit()
    first = full(client.get("/channels/publish/"))
    assert "comment 20" in first and "comment 00" not in first and ">Older</a>" in first
    second = fragment(client.get("/channels/publish/?page=2", headers=HX))
    assert "comment 00" in second and ">Newer</a>" in second and "comment 20" not in second


def test_flows_list_and_update_dialog(client, db, admin, token):
    first = editing.ensure_flow("Route to default queue", "Every new conversation goes to General.")
    second = editing.ensure_flow("VIP")
    a = make_address(admin, values=platform_values("a"))
    b = make_address(admin, values=platform_values("b"))
    db.session.commit()

    body = full(client.get("/flows/"))
    assert "<h1>Start Flows</h1>" in body and "Never published" in body and 'aria-controls="menu-flow-' in body
    assert "<h1>" not in fragment(client.get("/flows/", headers=HX))
    url = f"/flows/{first.id}/update"
    assert '<dialog id="flow-dialog"' in full(client.get(url))
    dialog = fragment(client.get(url, headers=HX))
    assert '<label for="address-%d">a@mail.pigeonhole.test</label>' % a.id in dialog and ">Update</button>" in dialog

    done = client.post(url, data={"csrf_token": token, "address": [str(a.id), str(b.id)]}, headers=HX)
    assert done.status_code == 204 and done.headers["HX-Redirect"] == "/flows/"
    page = full(client.get("/flows/"))
    assert "Route to default queue now serves a@mail.pigeonhole.test, b@mail.pigeonhole.test. Publish" in page

    url = f"/flows/{second.id}/update"
    assert "now served by Route to default queue" in fragment(client.get(url, headers=HX))
    conflict = fragment(client.post(url, data={"csrf_token": token, "address": str(a.id)}, headers=HX), 422)
    assert "Another flow serves a@mail.pigeonhole.test (Route to default queue)" in conflict
    assert "Move these addresses to this flow" in conflict
    full(client.post(url, data={"csrf_token": token, "address": "abc"}), 422)
    moved = client.post(url, data={"csrf_token": token, "address": str(a.id), "move": "y"})
    assert moved.status_code == 303
    db.session.expire_all()
    assert (editing.get_flow(second.id).id, addresses.get_address(a.id).flow_id) == (second.id, second.id)
    assert addresses.get_address(a.id).publish_state == "Never published"
    pending = {p.key: p.summary for p in publishing.pending_changes()}
    assert pending[f"flow:{second.id}"] == "New flow"
    assert client.get("/flows/9999/update").status_code == 404


def test_flows_list_links_to_the_editor_intents_queues_and_the_blocklist(client, login_as, db):
    from app.flows import editing

    login_as("admin")
    flow = editing.ensure_flow("Linked flow")
    db.session.commit()
    html = client.get("/flows/").get_data(as_text=True)
    assert f'href="/flows/{flow.id}/edit"' in html and 'href="/flows/new"' in html
    assert 'href="/flows/intents/"' in html and 'href="/flows/queues/"' in html
    for path in (f"/flows/{flow.id}/edit", "/flows/new", "/flows/intents/", "/flows/queues/"):
        assert client.get(path).status_code == 200, path
