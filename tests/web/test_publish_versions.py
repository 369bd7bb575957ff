"""Publish versions (snapshot, compare, restore as draft) and Publish approvals, over services and HTTP."""
from __future__ import annotations

import re

import pytest

from app.channels import addresses, wizard
from app.flows import editing
from app.models.channels import EmailAddress, PublishRecord
from app.models.flows import Flow
from app.models.publish import PublishRequest
from app.publish import approvals, restore, services as publishing, versions
from app.runtime.live import published_address
from tests.channel_factories import custom_values, make_address, make_domain, platform_values
from tests.factories import PASSWORD, make_queue, make_user
from tests.helpers import csrf_token
from tests.pages import HX, fragment, full


@pytest.fixture
def admin(login_as):
    return login_as("admin", name="Ada Admin")


def _edit(address, user, **values):
    setup = wizard.start_edit(address.id, user.id)
    base = platform_values(address.address.split("@")[0], display_name=address.display_name)
    wizard.update_address_step(setup, {**base, **values})
    addresses.save_setup(setup)


def _routing_flow(queue):
    flow = editing.create_flow("Billing routing")
    editing.add_rule(flow.id, {"name": "Refunds", "conditions": [{"type": "subject", "op": "contains",
                                                                   "value": "refund"}],
                               "actions": [{"type": "set_queue", "queue_id": queue.id}]})
    return flow


# --- snapshot -------------------------------------------------------------------------------------

def test_each_publish_is_a_numbered_version_with_a_snapshot_and_no_secret(db, admin):
    domain = make_domain("acme.test")
    box = make_address(admin, domain, custom_values("box@acme.test"), password="hunter2-secret")
    plat = make_address(admin, values=platform_values("help"))
    first = publishing.publish(admin.id, "first", address_ids=[box.id])
    second = publishing.publish(admin.id, "second", address_ids=[plat.id])
    db.session.commit()
    assert (first.number, second.number) == (1, 2)
    snap = first.snapshot
    assert list(snap["addresses"]) == [str(box.id)]  # only what was live then
    data = snap["addresses"][str(box.id)]
    assert data["address"] == "box@acme.test" and data["domain"] == "acme.test" and data["has_password"] is True
    assert "password_encrypted" not in data and "smtp_password_encrypted" not in data
    assert box.password_encrypted.decode() not in repr(snap)
    assert set(second.snapshot["addresses"]) == {str(box.id), str(plat.id)}
    shown = {s.name: {r.label: r.old for r in s.rows} for s in versions.sections(second.snapshot)}
    assert shown["box@acme.test"]["Password"] == "set" and shown["box@acme.test"]["Incoming server"] == \
        "imap.example.net"
    assert "Password" not in shown["help@mail.pigeonhole.test"]  # a platform address has no mailbox sign-in

    # An unpublished draft edit never reaches the next version.
    _edit(plat, admin, display_name="Draft only")
    db.session.commit()
    flow = editing.create_flow("Lonely")
    db.session.commit()
    third = publishing.publish(admin.id, "flow only", flow_ids=[flow.id])
    assert third.snapshot["addresses"][str(plat.id)]["display_name"] == "Acme Help"
    assert third.snapshot["flows"][str(flow.id)] == {"name": "Lonely", "rules": []}


def test_a_flow_published_from_the_flows_page_is_a_version_too(client, db, admin):
    flow = editing.create_flow("From the flow editor")
    db.session.commit()
    token = csrf_token(client, f"/flows/{flow.id}/publish")
    r = client.post(f"/flows/{flow.id}/publish", data={"csrf_token": token, "comment": "from the editor"})
    assert r.status_code in (302, 303)
    record = db.session.query(PublishRecord).one()
    assert record.number == 1 and str(flow.id) in record.snapshot["flows"]


# --- compare --------------------------------------------------------------------------------------

def test_compare_shows_labels_and_names_field_by_field(db, admin):
    billing = make_queue("Billing")
    flow = _routing_flow(billing)
    plat = make_address(admin, values=platform_values("help"))
    plat.flow_id = flow.id
    plat.touch_draft()
    publishing.publish(admin.id, "v1", address_ids=[plat.id], flow_ids=[flow.id])
    db.session.commit()
    _edit(plat, admin, display_name="Acme Care", usage="inbound")
    support = make_queue("Support")
    rule = flow.rules[0]
    editing.update_rule(flow.id, rule["id"], {**rule, "actions": [{"type": "set_queue", "queue_id": support.id}]})
    publishing.publish(admin.id, "v2", address_ids=[plat.id], flow_ids=[flow.id])
    db.session.commit()

    sections = versions.compare(versions.get_version(1).snapshot, versions.current_snapshot())
    address = next(s for s in sections if s.kind == "Address")
    changed = {r.label: (r.old, r.new) for r in address.changed_rows}
    assert changed == {"Display Name": ("Acme Help", "Acme Care"), "Usage": ("Inbound and Outbound", "Inbound")}
    flow_rows = {r.label: r for r in next(s for s in sections if s.kind == "Flow").rows}
    assert next(r for r in address.rows if r.label == "Flow").old == "Billing routing"
    refunds = flow_rows["Rule “Refunds”"]
    assert refunds.old == "When: Subject contains “refund”. Then: Set queue Billing."
    assert refunds.new == "When: Subject contains “refund”. Then: Set queue Support."
    assert "queue_id" not in repr(sections) and "display_name" not in {r.label for r in address.rows}
    # The same version compared with itself: nothing differs.
    assert all(s.state == "same" for s in versions.compare(versions.get_version(2).snapshot,
                                                            versions.current_snapshot()))


# --- restore --------------------------------------------------------------------------------------

def test_restore_as_draft_changes_drafts_only_and_keeps_passwords(db, admin):
    domain = make_domain("acme.test")
    box = make_address(admin, domain, custom_values("box@acme.test", display_name="Old name"), password="pw-one")
    publishing.publish(admin.id, "v1", address_ids=[box.id])
    db.session.commit()
    setup = wizard.start_edit(box.id, admin.id)
    wizard.update_address_step(setup, custom_values("box@acme.test", display_name="New name",
                                                    incoming_host="imap2.example.net"), "pw-two")
    addresses.save_setup(setup)
    publishing.publish(admin.id, "v2", address_ids=[box.id])
    db.session.commit()
    password_now = box.password_encrypted

    result = restore.restore_as_draft(1)
    db.session.commit()
    assert result.restored == ["box@acme.test"] and result.skipped == []
    db.session.expire_all()
    box = db.session.get(EmailAddress, box.id)
    assert (box.display_name, box.incoming_host) == ("Old name", "imap.example.net")
    assert box.password_encrypted == password_now  # secrets stay as they are now
    live = published_address(box.id)
    assert (live.display_name, live.incoming_host) == ("New name", "imap2.example.net")  # nothing went live
    assert [p.name for p in publishing.pending_changes()] == ["box@acme.test"]

    publishing.publish(admin.id, "back to v1", address_ids=[box.id])
    db.session.commit()
    assert published_address(box.id).display_name == "Old name"
    assert all(s.state == "same" for s in versions.compare(versions.get_version(1).snapshot,
                                                            versions.current_snapshot()))
    # Restoring what is already the draft changes nothing and leaves nothing to publish.
    assert restore.restore_as_draft(3).restored == [] and publishing.pending_changes() == []


def test_restore_reports_what_it_cannot_bring_back(db, admin):
    plat = make_address(admin, values=platform_values("help"))
    flow = editing.create_flow("Gone soon")
    publishing.publish(admin.id, "v1", address_ids=[plat.id], flow_ids=[flow.id])
    db.session.commit()
    addresses.archive_address(plat)
    editing.delete_flow(flow.id)
    db.session.commit()
    result = restore.restore_as_draft(1)
    assert result.restored == []
    assert result.skipped == ["help@mail.pigeonhole.test was archived since; create it again to use it.",
                              "The flow “Gone soon” was deleted since."]
    with pytest.raises(restore.RestoreError, match="There is no version 9"):
        restore.restore_as_draft(9)


# --- approvals ------------------------------------------------------------------------------------

def _request(db, requester, address, comment="please"):
    pending = {p.key: p for p in publishing.pending_changes()}
    key = f"address:{address.id}"
    req = approvals.request_publish(requester.id, comment, [key], {key: pending[key].version},
                                    [{"kind": "address", "id": address.id, "name": address.address,
                                      "summary": pending[key].summary}])
    db.session.commit()
    return req


def test_approval_rules(db, admin):
    other = make_user("admin", name="Bob Admin")
    plat = make_address(admin, values=platform_values("help"))
    approvals.set_approvals_required(True, admin.id)
    db.session.commit()
    assert approvals.publish_approvals_required()
    req = _request(db, admin, plat)
    assert published_address(plat.id) is None  # a request is not a Publish
    with pytest.raises(approvals.ApprovalError, match="is waiting for approval"):
        _request(db, other, plat)
    with pytest.raises(approvals.ApprovalError, match="another admin must approve it"):
        approvals.approve(req.id, admin.id)
    with pytest.raises(approvals.ApprovalError, match="Write why"):
        approvals.decline(req.id, other.id, "  ")
    with pytest.raises(approvals.ApprovalError, match="withdraw it instead"):
        approvals.decline(req.id, admin.id, "no")
    record = approvals.approve(req.id, other.id)
    db.session.commit()
    assert (record.user_id, record.approved_by_id, record.number) == (admin.id, other.id, 1)
    assert published_address(plat.id) is not None
    assert req.status == "approved" and req.record_id == record.id
    with pytest.raises(approvals.ApprovalError, match="already approved"):
        approvals.approve(req.id, other.id)


def test_approve_refuses_a_draft_changed_after_the_request(client, db, admin):
    other = make_user("admin")
    plat = make_address(admin, values=platform_values("help"))
    req = _request(db, admin, plat)
    _edit(plat, admin, display_name="Changed after the request")
    db.session.commit()
    assert approvals.changed_since(req) == ["help@mail.pigeonhole.test"]
    page = full(client.get("/channels/publish/"))
    assert "The draft changed after this request:</strong> help@mail.pigeonhole.test." in page
    with pytest.raises(approvals.ChangedSinceRequest, match="The draft changed after this request: help@"):
        approvals.approve(req.id, other.id)
    db.session.rollback()
    assert published_address(plat.id) is None and db.session.get(PublishRequest, req.id).status == "pending"
    approvals.decline(req.id, other.id, "It changed")
    db.session.commit()
    assert [r.reason for r in approvals.recent_decisions()] == ["It changed"]


# --- pages ----------------------------------------------------------------------------------------

def test_history_version_compare_and_restore_pages(client, db, admin):
    plat = make_address(admin, values=platform_values("help"))
    publishing.publish(admin.id, "First launch", address_ids=[plat.id])
    _edit(plat, admin, display_name="Acme Care")
    publishing.publish(admin.id, "Friendlier name", address_ids=[plat.id])
    db.session.commit()

    history = full(client.get("/channels/publish/history"))
    assert '<a href="/channels/publish/versions/1" aria-label="Version 1">1</a>' in history
    assert "Friendlier name" in history and "<h1>History</h1>" in history
    page = full(client.get("/channels/publish/versions/1"))
    assert "<h1>Version 1</h1>" in page and "First launch" in page and "Acme Help" in page
    assert "Display Name" in page and "display_name" not in page
    assert client.get("/channels/publish/versions/99").status_code == 404
    compare = full(client.get("/channels/publish/versions/1/compare"))
    assert re.search(r"Display Name.*?</th>\s*<td>Acme Help</td><td>Acme Care</td>", compare, re.S)
    assert "Usage" not in compare  # differences only, unless asked
    assert "Usage" in full(client.get("/channels/publish/versions/1/compare?all=1"))
    assert "is the same as what is live now" in full(client.get("/channels/publish/versions/2/compare"))

    confirm = full(client.get("/channels/publish/versions/1/restore"))
    assert "Passwords (mailbox and SMTP) and sign-ins stay as they are now" in confirm
    assert "Unpublished changes will be replaced" not in confirm
    _edit(plat, admin, display_name="Unpublished idea")
    db.session.commit()
    confirm = full(client.get("/channels/publish/versions/1/restore"))
    assert "Unpublished changes will be replaced:</strong> help@mail.pigeonhole.test has draft changes" in confirm
    assert "Nothing goes live" in confirm
    token = csrf_token(client, "/channels/publish/versions/1/restore")
    assert client.post("/channels/publish/versions/1/restore").status_code == 400
    r = client.post("/channels/publish/versions/1/restore", data={"csrf_token": token}, headers=HX)
    assert r.status_code == 204 and r.headers["HX-Redirect"] == "/channels/publish/"
    page = full(client.get("/channels/publish/"))
    assert "Version 1 restored as draft: 1 draft changed." in page
    assert "Display Name: Acme Care → Acme Help" in page  # compared with what is live, not the replaced draft
    assert published_address(plat.id).display_name == "Acme Care"


def test_approval_pages_with_two_admins(app, client, db, admin):
    bob = make_user("admin", name="Bob Admin")
    plat = make_address(admin, values=platform_values("help"))
    token = csrf_token(client, "/channels/publish/")
    r = client.post("/channels/publish/settings", data={"csrf_token": token, "approvals_required": "y"})
    assert r.status_code == 303
    assert "Publish approvals are on" in full(client.get("/channels/publish/"))

    data = {"csrf_token": token, "comment": "Launch help", "item": [f"address:{plat.id}"]}
    confirm = fragment(client.post("/channels/publish/new", data=data, headers=HX))
    assert "another admin must approve this request before it goes live" in confirm
    found = dict(re.findall(r'name="(version-[a-z]+:\d+)" value="([^"]+)"', confirm))
    r = client.post("/channels/publish/confirm", data={**data, **found}, headers=HX)
    assert r.status_code == 204
    assert published_address(plat.id) is None
    page = full(client.get("/channels/publish/"))
    assert "Waiting for approval" in page and "Another admin must approve or decline your request." in page
    assert ">Approve</button>" not in page
    req = db.session.query(PublishRequest).one()
    refused = full(client.post(f"/channels/publish/requests/{req.id}/approve", data={"csrf_token": token}), 422)
    assert "another admin must approve it" in refused

    # The flows page cannot go around the approval.
    flow = editing.create_flow("Side door")
    db.session.commit()
    r = client.post(f"/flows/{flow.id}/publish", data={"csrf_token": token, "comment": "sneak"})
    assert r.status_code == 303 and db.session.get(Flow, flow.id).published_at is None

    second = app.test_client()
    second.post("/login", data={"email": bob.email, "password": PASSWORD, "csrf_token": csrf_token(second)})
    bob_token = csrf_token(second, "/channels/publish/")
    page = full(second.get("/channels/publish/"))
    assert ">Approve</button>" in page and '<label for="decline-reason">Reason</label>' in page
    no_reason = full(second.post(f"/channels/publish/requests/{req.id}/decline", data={"csrf_token": bob_token}), 422)
    assert "Write why you decline this Publish request." in no_reason
    r = second.post(f"/channels/publish/requests/{req.id}/approve", data={"csrf_token": bob_token})
    assert r.status_code == 303
    assert "Approved: published as version 1." in full(second.get("/channels/publish/"))
    assert published_address(plat.id) is not None
    history = full(second.get("/channels/publish/history"))
    assert "Approved by Bob Admin" in history and "Ada Admin" in history
