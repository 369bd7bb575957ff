"""Standard Responses management (supervisors and admins) and the CSV "Download"."""
from __future__ import annotations

import csv
import io

from app.models.responses import ResponseGroup, StandardResponse
from tests.factories import make_queue, make_response
from tests.helpers import csrf_token


def _headers(client, htmx=True):
    h = {"X-CSRFToken": csrf_token(client, "/responses/")}
    if htmx:
        h["HX-Request"] = "true"
    return h


def test_agents_cannot_manage_responses(client, login_as):
    login_as("agent")
    assert client.get("/responses/").status_code == 403
    assert client.get("/responses/download").status_code == 403


def test_list_full_page_and_fragment(client, login_as, db, htmx_headers):
    login_as("supervisor")
    make_response(title="Shipping times", group_name="Shipping", shortcut="ship")
    full = client.get("/responses/").get_data(as_text=True)
    assert "<html" in full and "Shipping times" in full and "/ship" in full and "Download" in full
    frag = client.get("/responses/", headers=htmx_headers).get_data(as_text=True)
    assert "<html" not in frag and "Shipping times" in frag


def test_group_dialog_full_fragment_422_and_save(client, login_as, db):
    login_as("supervisor")
    queue = make_queue("Billing")
    assert "<dialog" in client.get("/responses/groups/new").get_data(as_text=True)
    frag = client.get("/responses/groups/new", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert frag.lstrip().startswith("<dialog") and "<html" not in frag
    h = _headers(client)
    bad = client.post("/responses/groups/new", headers=h, data={"name": "", "shortcut": "has space"})
    assert bad.status_code == 422 and "Give the group a name." in bad.get_data(as_text=True)
    bad = client.post("/responses/groups/new", headers=h, data={"name": "Billing", "shortcut": "has space"})
    assert bad.status_code == 422 and "no spaces" in bad.get_data(as_text=True)
    bad = client.post("/responses/groups/new", headers=h, data={"name": "Billing", "shortcut": "bill"})
    assert bad.status_code == 422 and "Choose at least one queue" in bad.get_data(as_text=True)
    ok = client.post("/responses/groups/new", headers=h,
                     data={"name": "Billing", "shortcut": "/Bill", "queue_ids": [str(queue.id)]})
    assert ok.status_code == 204 and ok.headers["HX-Redirect"] == "/responses/"
    group = db.session.scalar(db.select(ResponseGroup))
    assert (group.name, group.shortcut, group.visible_to_all, group.queue_ids) == ("Billing", "bill", False, [queue.id])
    dup = client.post("/responses/groups/new", headers=h, data={"name": "billing", "visible_to_all": "y"})
    assert dup.status_code == 422 and "exists already" in dup.get_data(as_text=True)


def test_response_save_rejects_unknown_placeholders_and_deletes(client, login_as, db):
    login_as("admin")
    existing = make_response(title="Old", group_name="General")
    h = _headers(client)
    bad = client.post("/responses/new", headers=h, data={"group_id": existing.group_id, "title": "Hi",
                                                        "body": "Hello {{customer.nick}}"})
    assert bad.status_code == 422 and "Unknown placeholder {{customer.nick}}" in bad.get_data(as_text=True)
    ok = client.post("/responses/new", headers=h, data={"group_id": existing.group_id, "title": "Hi",
                                                       "subject": "Your order",
                                                       "body": "Hello {{customer.first_name}},\nthanks."})
    assert ok.status_code == 204
    saved = db.session.scalar(db.select(StandardResponse).where(StandardResponse.title == "Hi"))
    assert saved.body == "<p>Hello {{customer.first_name}},<br>thanks.</p>"
    saved_id = saved.id
    confirm = client.get(f"/responses/{saved_id}/delete", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "Delete the response “Hi”?" in confirm
    assert client.post(f"/responses/{saved_id}/delete", headers=h).status_code == 204
    db.session.expire_all()
    assert db.session.get(StandardResponse, saved_id) is None


def test_download_exports_every_response_as_csv(client, login_as, db):
    login_as("supervisor")
    make_response(title="Shipping times", subject="Shipping", body="=HYPERLINK(1) ships today", group_name="Ship")
    r = client.get("/responses/download")
    assert r.status_code == 200 and r.headers["Content-Disposition"].startswith("attachment;")
    assert r.headers["Content-Type"] == "text/csv; charset=utf-8"  # one charset parameter, not two
    rows = list(csv.reader(io.StringIO(r.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0][:5] == ["group", "shortcut_command", "group_description", "visible_to", "title"]
    assert rows[1][0] == "Ship" and rows[1][4] == "Shipping times" and rows[1][5] == "Shipping"
    assert rows[1][6].startswith("<p>")  # a formula-looking body stays text, wrapped in a paragraph
