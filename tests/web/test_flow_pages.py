"""Flow editor, intents, queues, Email Blocklist and run log pages: full page, fragment, 422, effects."""
from __future__ import annotations

import io

from sqlalchemy import select

from app.flows import runner
from app.models.auth import Queue
from app.models.flows import BlocklistEntry, Flow, Intent
from tests.factories import make_queue, make_user
from tests.flow_factories import make_address, make_flow, make_inbound

import pytest

from tests.helpers import csrf_token


HX = {"HX-Request": "true"}


@pytest.fixture
def login_as(login_as, client):
    """Sign in, then send the CSRF token with every request, as base.html's hx-headers does."""

    def _login(role="agent", **kwargs):
        user = login_as(role, **kwargs)
        client.environ_base["HTTP_X_CSRFTOKEN"] = csrf_token(client, "/inbox/")
        return user

    return _login


def _html(response) -> str:
    return response.get_data(as_text=True)


def _is_fragment(html: str) -> bool:
    return "<html" not in html and "<nav aria-label=\"Main\"" not in html


def test_editor_pages_are_for_admins_only(client, db, login_as):
    flow = make_flow([], publish=False)
    address = make_address(flow=flow)
    paths = ("/flows/", f"/flows/{flow.id}/update", f"/flows/{flow.id}/edit", "/flows/new", "/flows/intents/",
             "/flows/queues/", f"/channels/email/{address.id}/blocklist")
    for path in paths:
        assert client.get(path).status_code == 302, path  # signed out: the sign-in page
    login_as("supervisor")
    for path in paths:
        assert client.get(path).status_code == 403, path


def test_create_a_flow_full_page_422_and_htmx_redirect(client, db, login_as):
    login_as("admin")
    page = client.get("/flows/new")
    assert page.status_code == 200 and "<html" in _html(page) and 'for="name"' in _html(page)
    bad = client.post("/flows/new", data={"name": ""}, headers=HX)
    assert bad.status_code == 422 and "Give the flow a name." in _html(bad) and _is_fragment(_html(bad))
    ok = client.post("/flows/new", data={"name": "Support triage", "description": "Mail to support"}, headers=HX)
    flow = db.session.scalar(select(Flow).where(Flow.name == "Support triage"))
    assert ok.status_code == 204 and ok.headers["HX-Redirect"] == f"/flows/{flow.id}/edit"
    dup = client.post("/flows/new", data={"name": "support TRIAGE"}, headers=HX)
    assert dup.status_code == 422 and "exists already" in _html(dup)


def test_rule_editing_without_reloads_add_edit_move_delete(client, db, login_as):
    login_as("admin")
    billing = make_queue("Billing")
    flow = make_flow([], publish=False, name="Triage")

    full = client.get(f"/flows/{flow.id}/edit")
    assert full.status_code == 200 and "No rules yet" in _html(full) and "flows.js" in _html(full)
    frag = client.get(f"/flows/{flow.id}/edit", headers=HX)
    assert _is_fragment(_html(frag)) and 'id="editor"' in _html(frag)

    form = client.get(f"/flows/{flow.id}/rules/new", headers=HX)
    assert form.status_code == 200 and 'id="rule-form"' in _html(form) and _is_fragment(_html(form))
    assert '<label for="subject_value">' in _html(form) and "Billing" in _html(form)

    bad = client.post(f"/flows/{flow.id}/rules/new", headers=HX, data={
        "name": "Refunds", "match": "all", "subject_op": "matches", "subject_value": "(refund", "queue": billing.id})
    assert bad.status_code == 422 and "not a valid regular expression" in _html(bad)
    assert 'aria-invalid="true"' in _html(bad) and flow.rules == []
    no_action = client.post(f"/flows/{flow.id}/rules/new", headers=HX, data={"name": "Nothing", "match": "all"})
    assert no_action.status_code == 422 and "Choose at least one action." in _html(no_action)

    ok = client.post(f"/flows/{flow.id}/rules/new", headers=HX, data={
        "name": "Refunds", "match": "all", "subject_op": "matches", "subject_value": r"refund|money back",
        "queue": billing.id, "assign": "least_loaded", "priority": "1"})
    assert ok.status_code == 200 and ok.headers["HX-Retarget"] == "#editor"
    body = _html(ok)
    assert "Refunds" in body and "subject matches “refund|money back”" in body
    assert "set queue Billing · set priority High · assign to the least-loaded member" in body
    client.post(f"/flows/{flow.id}/rules/new", headers=HX, data={
        "name": "Tag everything", "match": "all", "always": "y", "tags": "triaged"})
    client.post(f"/flows/{flow.id}/rules/new", headers=HX, data={
        "name": "VIPs", "match": "any", "sender": "vip.example, boss@corp.example", "priority": "2"})
    db.session.expire_all()
    flow = db.session.get(Flow, flow.id)
    assert [r["name"] for r in flow.rules] == ["Refunds", "VIPs", "Tag everything"]
    refunds, vips = flow.rules[0]["id"], flow.rules[1]["id"]

    edit_form = client.get(f"/flows/{flow.id}/rules/{refunds}", headers=HX)
    assert 'value="refund|money back"' in _html(edit_form)
    client.post(f"/flows/{flow.id}/rules/{refunds}", headers=HX, data={
        "name": "Refunds and invoices", "match": "all", "intent": "billing", "intent_confidence": "60",
        "queue": billing.id})
    moved = client.post(f"/flows/{flow.id}/rules/{vips}/move", headers=HX, data={"direction": "up"})
    assert moved.status_code == 200 and _is_fragment(_html(moved))
    db.session.expire_all()
    flow = db.session.get(Flow, flow.id)
    assert [r["name"] for r in flow.rules] == ["VIPs", "Refunds and invoices", "Tag everything"]
    assert flow.rules[1]["conditions"] == [{"type": "intent", "value": "billing", "min_confidence": 0.6}]
    deleted = client.post(f"/flows/{flow.id}/rules/{vips}/delete", headers=HX)
    assert deleted.status_code == 200 and "VIPs" not in _html(deleted).split("Rule deleted")[0]
    db.session.expire_all()
    assert [r["name"] for r in db.session.get(Flow, flow.id).rules] == ["Refunds and invoices", "Tag everything"]
    assert db.session.get(Flow, flow.id).published_rules is None  # all of it is draft


def test_publish_dialog_422_and_publish(client, db, login_as):
    login_as("admin")
    flow = make_flow([{"name": "Stop", "actions": [{"type": "stop"}]}], publish=False)
    dialog = client.get(f"/flows/{flow.id}/publish", headers=HX)
    assert "<dialog" in _html(dialog) and "data-modal" in _html(dialog) and _is_fragment(_html(dialog))
    full = client.get(f"/flows/{flow.id}/publish")
    assert "<html" in _html(full) and "<dialog" in _html(full) and " open" in _html(full)
    bad = client.post(f"/flows/{flow.id}/publish", data={"comment": ""}, headers=HX)
    assert bad.status_code == 422 and "Say what changed and why." in _html(bad)
    ok = client.post(f"/flows/{flow.id}/publish", data={"comment": "first rules"}, headers=HX)
    assert ok.status_code == 204 and ok.headers["HX-Redirect"] == f"/flows/{flow.id}/edit"
    db.session.expire_all()
    assert db.session.get(Flow, flow.id).published_rules[0]["name"] == "Stop"
    assert "Published" in _html(client.get(f"/flows/{flow.id}/edit"))


def test_a_flow_in_use_cannot_be_deleted(client, db, login_as):
    login_as("admin")
    flow = make_flow([], publish=False)
    make_address(flow=flow)
    r = client.post(f"/flows/{flow.id}/delete", headers=HX)
    assert r.status_code == 204 and db.session.get(Flow, flow.id) is not None
    spare_id = make_flow([], publish=False).id
    client.post(f"/flows/{spare_id}/delete", headers=HX)
    db.session.expire_all()
    assert db.session.get(Flow, spare_id) is None


def test_intents_page_add_edit_delete(client, db, login_as):
    login_as("admin")
    full = client.get("/flows/intents/")
    assert full.status_code == 200 and "No model trained yet." in _html(full) and 'for="examples"' in _html(full)
    frag = client.get("/flows/intents/", headers=HX)
    assert _is_fragment(_html(frag)) and 'id="intents-page"' in _html(frag)
    bad = client.post("/flows/intents/", headers=HX, data={"name": "billing", "examples": "just one"})
    assert bad.status_code == 422 and "at least 2 example phrases" in _html(bad)
    unknown = client.post("/flows/intents/", headers=HX, data={"name": "Unknown", "examples": "a\nb"})
    assert unknown.status_code == 422 and "choose another name" in _html(unknown)
    ok = client.post("/flows/intents/", headers=HX, data={
        "name": " Billing ", "description": "Money", "examples": "refund please\ncharged twice\ncharged twice\n"})
    assert ok.status_code == 204
    intent = db.session.scalar(select(Intent))
    assert intent.name == "billing" and intent.examples == ["refund please", "charged twice"]
    edit = client.get(f"/flows/intents/{intent.id}", headers=HX)
    assert "refund please\ncharged twice" in _html(edit) and "Edit intent billing" in _html(edit)
    client.post(f"/flows/intents/{intent.id}", headers=HX, data={"name": "billing", "examples": "a refund\nan invoice"})
    db.session.expire_all()
    assert db.session.get(Intent, intent.id).examples == ["a refund", "an invoice"]
    assert "Unpublished changes" in _html(client.get("/flows/intents/"))
    client.post(f"/flows/intents/{intent.id}/delete", headers=HX)
    assert db.session.scalar(select(Intent)) is None


def test_queue_settings_capacity_hours_and_acknowledgement(client, db, login_as):
    admin = login_as("admin")
    ann = make_user(name="Ann")
    address = make_address()
    page = client.get("/flows/queues/new")
    assert page.status_code == 200 and 'href="/admin/users/"' in _html(page) and "Acknowledgement Message for Email Channel" in _html(page)
    frag = client.get("/flows/queues/new", headers=HX)
    assert _is_fragment(_html(frag)) and 'id="queue-form"' in _html(frag)

    base = {"name": "Billing", "time_zone": "Europe/Berlin", "hours": "Mon-Fri 09:00-17:00",
            "ack_interval_minutes": "60", "members": [str(ann.id)], f"capacity-{ann.id}": "8",  # no longer set here: ignored
            "outbound_addresses": [str(address.id)]}
    for change, words in (({"hours": "Mon 9-5"}, "Line 1"), ({"time_zone": "Mars/Base"}, "is not a time zone"),
                          ({"ack_interval_minutes": "10"}, "Between 15 minutes and 72 hours"),
                          ({"ack_enabled": "y"}, "Write the acknowledgement message"),
                          ({"ack_enabled": "y", "ack_body_html": "<p>{{ nope }}</p>"}, "Unknown placeholder")):
        bad = client.post("/flows/queues/new", headers=HX, data={**base, **change})
        assert bad.status_code == 422 and words in _html(bad), change
    assert db.session.scalar(select(Queue)) is None

    ok = client.post("/flows/queues/new", headers=HX, data={
        **base, "ack_enabled": "y", "ack_body_html": "<p>Hi {{ customer_name }}</p><script>x</script>"})
    assert ok.status_code == 204 and ok.headers["HX-Redirect"] == "/flows/queues/"
    queue = db.session.scalar(select(Queue))
    db.session.refresh(ann)
    assert [m.name for m in queue.members] == ["Ann"] and ann.email_capacity == 5  # set in Admin › Users
    assert queue.business_hours["mon"] == [["09:00", "17:00"]] and queue.time_zone == "Europe/Berlin"
    assert queue.ack_enabled and "<script>" not in queue.ack_body_html and queue.outbound_address_ids == [address.id]
    listing = client.get("/flows/queues/")
    assert "Ann (0 / 5)" in _html(listing) and "Europe/Berlin" in _html(listing)
    assert _is_fragment(_html(client.get("/flows/queues/", headers=HX)))
    edit = client.get(f"/flows/queues/{queue.id}")
    assert "Mon 09:00-17:00" in _html(edit) and admin.email not in _html(edit).split("Members and email capacity")[0]


def test_blocklist_add_upload_delete(client, db, login_as):
    login_as("admin")
    address = make_address()
    url = f"/channels/email/{address.id}/blocklist"
    full = client.get(url)
    assert full.status_code == 200 and "Nobody is blocked." in _html(full) and 'for="value"' in _html(full)
    assert _is_fragment(_html(client.get(url, headers=HX)))
    bad = client.post(url, headers=HX, data={"value": "not valid"})
    assert bad.status_code == 422 and "is not an email address or a domain" in _html(bad)
    ok = client.post(url, headers=HX, data={"value": "Spam.Example"})
    assert ok.status_code == 200 and "spam.example" in _html(ok) and _is_fragment(_html(ok))
    dup = client.post(url, headers=HX, data={"value": "spam.example"})
    assert dup.status_code == 422 and "already" in _html(dup)

    no_file = client.post(f"{url}/upload", headers=HX, data={})
    assert no_file.status_code == 422 and "Choose a CSV file." in _html(no_file)
    csv = io.BytesIO(b"email\na@example.com\nspam.example\nnope\n")
    up = client.post(f"{url}/upload", headers=HX, data={"file": (csv, "block.csv")},
                     content_type="multipart/form-data")
    html = _html(up)
    assert up.status_code == 200 and "1 added</strong>, 1 duplicates, 1 errors" in html and "Line 4" in html
    entry = db.session.scalar(select(BlocklistEntry).where(BlocklistEntry.value == "a@example.com"))
    assert entry.source == "csv"
    gone = client.post(f"{url}/{entry.id}/delete", headers=HX)
    assert gone.status_code == 200 and "a@example.com" not in _html(gone)
    assert client.get("/channels/email/999999/blocklist").status_code == 404


def test_run_log_page_shows_routing_and_is_limited_to_the_queue(client, db, login_as):
    ann = make_user(name="Ann")
    queue = make_queue("Billing", members=[ann])
    flow = make_flow([{"name": "To Billing", "actions": [{"type": "set_queue", "queue_id": queue.id},
                                                         {"type": "assign", "mode": "least_loaded"}]}])
    message = make_inbound(make_address(flow=flow), subject="Invoice question")
    runner.run_flow(message.conversation_id)
    db.session.commit()
    url = f"/flows/conversations/{message.conversation_id}/runs"
    login_as("agent")
    assert client.get(url).status_code == 404  # not in their queue
    client.post("/logout", data={"csrf_token": csrf_token(client, "/inbox/")})
    login_as("admin")
    full = client.get(url)
    html = _html(full)
    assert full.status_code == 200 and "Invoice question" in html and "To Billing" in html
    assert "Assign: assigned to Ann (least loaded)" in html and "<dd>Billing</dd>" in html
    frag = client.get(url, headers=HX)
    assert _is_fragment(_html(frag)) and "Flow run log" in _html(frag)


def test_flow_pages_have_no_inline_script_or_style(client, db, login_as):
    login_as("admin")
    flow = make_flow([{"name": "Stop", "actions": [{"type": "stop"}]}], publish=False)
    address = make_address()
    for path in (f"/flows/{flow.id}/edit", "/flows/new", "/flows/intents/", "/flows/queues/", "/flows/queues/new",
                 f"/channels/email/{address.id}/blocklist", f"/flows/{flow.id}/publish"):
        html = _html(client.get(path))
        assert "<script>" not in html and " style=" not in html and " onclick=" not in html, path


def test_sender_authentication_condition_in_the_rule_editor(client, db, login_as):
    login_as("admin")
    held = make_queue("Held for review")
    flow = make_flow([], publish=False, name="Hold forged mail")
    form = client.get(f"/flows/{flow.id}/rules/new", headers=HX)
    assert '<label for="sender_auth">Sender authentication</label>' in _html(form)
    assert "failed (DMARC fail, or a look-alike of our own domain)" in _html(form)
    ok = client.post(f"/flows/{flow.id}/rules/new", headers=HX, data={
        "name": "Forged", "match": "all", "sender_auth": "fail", "queue": held.id})
    assert ok.status_code == 200
    assert "sender authentication failed (DMARC fail, or a look-alike of our own domain)" in _html(ok)
    db.session.expire_all()
    rule = db.session.get(Flow, flow.id).rules[0]
    assert rule["conditions"] == [{"type": "sender_auth", "value": "fail"}]
    edit = client.get(f"/flows/{flow.id}/rules/{rule['id']}", headers=HX)
    assert '<option selected value="fail">' in _html(edit) or 'value="fail" selected' in _html(edit)
    bad = client.post(f"/flows/{flow.id}/rules/new", headers=HX, data={
        "name": "Odd", "match": "all", "sender_auth": "maybe", "queue": held.id})
    assert bad.status_code == 422 and "Choose passed, failed or not checked." in _html(bad)
