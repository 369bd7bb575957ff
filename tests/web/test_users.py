"""Admin › Users, the audit log, one-time reset links and the profile, through the real routes."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from app.auth.password_rules import WeakPassword, check_new_password
from app.models.auth import AuditEntry, PasswordReset, User, UserSession
from app.models.inbox import Conversation
from tests.factories import PASSWORD, make_conversation, make_queue, make_user
from tests.helpers import csrf_token

NEW_PASSWORD = "plum tree under the old bridge"


def _client(app, address="10.9.9.9"):
    other = app.test_client()
    other.environ_base["REMOTE_ADDR"] = address
    return other


def _sign_in(client, email, password=PASSWORD):
    return client.post("/login", data={"email": email, "password": password, "csrf_token": csrf_token(client)})


def _signed_in(client) -> bool:
    return client.get("/inbox/").status_code == 200


def _actions(db, user_id):
    return [e.action for e in db.session.scalars(select(AuditEntry).where(AuditEntry.target_user_id == user_id)
                                                 .order_by(AuditEntry.id))]


def _link(html: str) -> str:
    match = re.search(r'id="reset-link" type="text" readonly value="http://[^/"]+(/password/[^"]+)"', html)
    assert match, html
    return match.group(1)


def test_only_admins_reach_users_and_the_audit_log(client, login_as):
    login_as("supervisor")
    for path in ("/admin/users/", "/admin/users/new", "/admin/audit/"):
        assert client.get(path).status_code == 403


def test_admin_creates_a_user_who_sets_a_password_with_the_one_time_link(app, client, db, login_as, htmx_headers):
    admin = login_as("admin")
    queue = make_queue("Billing")
    token = csrf_token(client, "/admin/users/new")
    form = {"name": "Nina Novak", "email": "Nina@Example.test", "role": "agent", "queues": [str(queue.id)],
            "email_capacity": "7", "csrf_token": token, "delivery": "show"}

    bad = client.post("/admin/users/new", data={**form, "email_capacity": "16"}, headers=htmx_headers)
    assert bad.status_code == 422 and "Email capacity is between 1 and 15." in bad.get_data(as_text=True)
    assert bad.get_data(as_text=True).lstrip().startswith('<form id="user-form"')
    assert 'for="email_capacity"' in bad.get_data(as_text=True) and 'value="Nina Novak"' in bad.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(User)) == 1

    made = client.post("/admin/users/new", data=form)
    html = made.get_data(as_text=True)
    assert made.status_code == 200 and made.headers["Cache-Control"] == "no-store"
    nina = db.session.scalar(select(User).where(User.email == "nina@example.test"))
    assert nina.name == "Nina Novak" and nina.email_capacity == 7 and [q.name for q in nina.queues] == ["Billing"]
    path = _link(html)
    assert path.split("/")[-1] not in str(db.session.scalar(select(PasswordReset.token_hash)))  # only a hash kept
    again = client.post("/admin/users/new", data=form)
    assert again.status_code == 422 and "Another account has this email address." in again.get_data(as_text=True)

    # She has no password until she uses the link; a wrong one is just a wrong password.
    nina_browser = _client(app)
    assert _sign_in(nina_browser, "nina@example.test", "anything at all here").status_code == 422
    page = nina_browser.get(path)
    assert page.status_code == 200 and 'for="new_password"' in page.get_data(as_text=True)
    assert nina_browser.get(path).status_code == 200  # opening it twice spends nothing
    form_token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.get_data(as_text=True)).group(1)

    weak = nina_browser.post(path, data={"new_password": "password1234", "confirm_password": "password1234",
                                         "csrf_token": form_token})
    assert weak.status_code == 422 and "too common" in weak.get_data(as_text=True)
    named = nina_browser.post(path, data={"new_password": "i am nina the great", "confirm_password": "i am nina the great",
                                          "csrf_token": form_token})
    assert named.status_code == 422 and "email name" in named.get_data(as_text=True)
    done = nina_browser.post(path, data={"new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD,
                                         "csrf_token": form_token})
    assert done.status_code == 303 and done.headers["Location"] == "/login"
    assert nina_browser.get(path).status_code == 404  # single use
    assert _sign_in(nina_browser, "nina@example.test", NEW_PASSWORD).status_code == 302
    assert _actions(db, nina.id) == ["create", "password_reset_link", "password_reset"]
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "create"))
    assert entry.actor_id == admin.id and entry.details["queues"] == ["Billing"]
    assert NEW_PASSWORD not in str([e.details for e in db.session.scalars(select(AuditEntry))])


def test_a_new_reset_link_signs_out_other_sessions_and_replaces_the_old_link(app, client, db, login_as):
    login_as("admin")
    agent = make_user("agent")
    phone = _client(app)
    assert _sign_in(phone, agent.email).status_code == 302
    token = csrf_token(client, f"/admin/users/{agent.id}")
    first = _link(client.post(f"/admin/users/{agent.id}/reset-link", data={"csrf_token": token}).get_data(as_text=True))
    second = _link(client.post(f"/admin/users/{agent.id}/reset-link", data={"csrf_token": token}).get_data(as_text=True))
    browser = _client(app, "10.7.7.7")
    assert browser.get(first).status_code == 404
    page = browser.get(second).get_data(as_text=True)
    form_token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    assert _signed_in(phone)
    r = browser.post(second, data={"new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD,
                                   "csrf_token": form_token})
    assert r.status_code == 303
    assert not _signed_in(phone)
    assert _sign_in(_client(app, "10.6.6.6"), agent.email).status_code == 422  # the old password is gone


def test_an_expired_link_does_not_work(app, client, db, login_as):
    login_as("admin")
    agent = make_user("agent")
    token = csrf_token(client, f"/admin/users/{agent.id}")
    path = _link(client.post(f"/admin/users/{agent.id}/reset-link", data={"csrf_token": token}).get_data(as_text=True))
    row = db.session.scalar(select(PasswordReset))
    row.expires_at = row.created_at
    db.session.commit()
    r = _client(app).get(path)
    assert r.status_code == 404 and "does not work any more" in r.get_data(as_text=True)


def test_deactivate_signs_out_everywhere_and_releases_open_conversations(app, client, db, login_as):
    login_as("admin")
    agent = make_user("agent", name="Ann Agent")
    queue = make_queue("Sales", members=[agent])
    working = make_conversation(queue=queue, assignee=agent)
    done = make_conversation(queue=queue, assignee=agent, status="closed")
    browser = _client(app)
    assert _sign_in(browser, agent.email).status_code == 302 and _signed_in(browser)

    dialog = client.get(f"/admin/users/{agent.id}/deactivate", headers={"HX-Request": "true"})
    assert dialog.status_code == 200 and 'for="conversations-release"' in dialog.get_data(as_text=True)
    assert "1 open conversation" in dialog.get_data(as_text=True)
    assert client.get(f"/admin/users/{agent.id}/deactivate").status_code == 303  # a pasted link: the user's page
    token = csrf_token(client, f"/admin/users/{agent.id}")
    r = client.post(f"/admin/users/{agent.id}/deactivate", data={"conversations": "release", "csrf_token": token})
    assert r.status_code == 303
    assert "Ann Agent is deactivated and signed out everywhere. 1 open conversation went to their queues." in \
        client.get("/admin/users/").get_data(as_text=True)
    assert not _signed_in(browser)
    assert db.session.scalar(select(func.count()).select_from(UserSession).where(UserSession.user_id == agent.id)) == 0
    db.session.expire_all()
    assert db.session.get(Conversation, working.id).assignee_id is None
    assert db.session.get(Conversation, done.id).assignee_id == agent.id  # history kept
    # Deactivated: the same answer as a wrong password
    again = _sign_in(_client(app, "10.3.3.3"), agent.email)
    assert again.status_code == 422 and "Wrong email or password." in again.get_data(as_text=True)
    listed = client.get("/admin/users/?status=deactivated").get_data(as_text=True)
    assert "Ann Agent" in listed and "Ann Agent" not in client.get("/admin/users/").get_data(as_text=True).split(
        'id="user-list"')[1]

    assert client.post(f"/admin/users/{agent.id}/reactivate", data={"csrf_token": token}).status_code == 303
    assert _sign_in(_client(app, "10.2.2.2"), agent.email).status_code == 302
    assert _actions(db, agent.id) == ["deactivate", "reactivate"]


def test_deactivate_can_reassign_to_a_chosen_agent_who_must_see_the_queue(app, client, db, login_as):
    login_as("admin")
    leaver, outsider, colleague = make_user("agent"), make_user("agent"), make_user("agent", name="Cleo")
    queue = make_queue("Returns", members=[leaver, colleague])
    conversation = make_conversation(queue=queue, assignee=leaver)
    token = csrf_token(client, f"/admin/users/{leaver.id}")
    refused = client.post(f"/admin/users/{leaver.id}/deactivate", headers={"HX-Request": "true"},
                          data={"conversations": "reassign", "reassign_to": str(outsider.id), "csrf_token": token})
    assert refused.status_code == 422 and "is not a member of Returns" in refused.get_data(as_text=True)
    assert db.session.get(User, leaver.id).active
    ok = client.post(f"/admin/users/{leaver.id}/deactivate",
                     data={"conversations": "reassign", "reassign_to": str(colleague.id), "csrf_token": token})
    assert ok.status_code == 303
    db.session.expire_all()
    assert db.session.get(Conversation, conversation.id).assignee_id == colleague.id
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "deactivate"))
    assert entry.details["conversations"] == 1 and "Cleo" in entry.details["conversations_to"]


def test_an_admin_cannot_deactivate_or_demote_themselves(client, db, login_as):
    admin = login_as("admin")
    token = csrf_token(client, f"/admin/users/{admin.id}")
    r = client.post(f"/admin/users/{admin.id}/deactivate", data={"conversations": "release", "csrf_token": token})
    assert r.status_code == 422 and "cannot deactivate your own account" in r.get_data(as_text=True)
    r = client.post(f"/admin/users/{admin.id}", data={"name": admin.name, "email": admin.email, "role": "agent",
                                                      "email_capacity": "5", "csrf_token": token})
    assert r.status_code == 422 and "own admin role" in r.get_data(as_text=True)
    assert db.session.get(User, admin.id).role == "admin" and db.session.get(User, admin.id).active


def test_edit_records_role_and_queue_changes_and_search_finds_by_name_or_email(client, db, login_as, htmx_headers):
    login_as("admin")
    agent = make_user("agent", name="Bruno Brandt", email="bruno@example.test")
    make_user("agent", name="Other_Person")
    queue = make_queue("Tier 2")
    token = csrf_token(client, f"/admin/users/{agent.id}")
    r = client.post(f"/admin/users/{agent.id}", data={"name": "Bruno B.", "email": agent.email, "role": "supervisor",
                                                      "queues": [str(queue.id)], "email_capacity": "9",
                                                      "csrf_token": token})
    assert r.status_code == 303
    assert _actions(db, agent.id) == ["edit", "role_change", "queues_change"]
    edit = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "edit"))
    assert edit.details["changes"] == {"name": ["Bruno Brandt", "Bruno B."], "email_capacity": [5, 9]}

    for path in ("/admin/users/", "/admin/users/?status=all", "/admin/users/?status=nonsense"):
        assert client.get(path).status_code == 200  # the list's own filter never becomes the answer's status
    found = client.get("/admin/users/?q=BRUNO", headers=htmx_headers).get_data(as_text=True)
    assert found.lstrip().startswith('<table class="list" id="user-list"') and "Bruno B." in found
    assert "Other_Person" not in found
    assert "Bruno B." not in client.get("/admin/users/?q=%25_", headers=htmx_headers).get_data(as_text=True)

    log = client.get(f"/admin/audit/?user={agent.id}").get_data(as_text=True)
    assert log.index("Queues changed") < log.index("Role changed") < log.index("Account edited")  # newest first
    assert 'for="audit-user"' in log


def test_profile_sets_name_signature_time_zone_and_start_page(client, db, login_as):
    user = login_as("agent")
    token = csrf_token(client, "/profile")
    bad = client.post("/profile", data={"name": "Pat", "signature_html": "", "time_zone": "Mars/Olympus",
                                        "landing_view": "inbox", "csrf_token": token}, headers={"HX-Request": "true"})
    assert bad.status_code == 422 and "Choose a time zone from the list." in bad.get_data(as_text=True)
    admin_page = client.post("/profile", data={"name": "Pat", "signature_html": "", "time_zone": "UTC",
                                               "landing_view": "ops", "csrf_token": token})
    assert admin_page.status_code == 422  # an agent may not start on Ops
    r = client.post("/profile", data={"name": "Pat Doe", "signature_html": "<p>Pat<script>x()</script></p>",
                                      "time_zone": "Asia/Tokyo", "landing_view": "inbox_mine", "csrf_token": token})
    assert r.status_code == 303
    db.session.expire_all()
    saved = db.session.get(User, user.id)
    assert saved.name == "Pat Doe" and saved.signature_html == "<p>Pat</p>" and saved.time_zone == "Asia/Tokyo"
    assert client.get("/").headers["Location"] == "/inbox/?view=mine"
    page = client.get("/profile").get_data(as_text=True)
    assert "(JST)" in page  # times are shown in the chosen zone
    assert _actions(db, user.id) == ["profile_edit"]


def test_sign_out_everywhere_and_password_change_are_in_the_audit_log(client, db, login_as):
    user = login_as("agent")
    token = csrf_token(client, "/profile")
    r = client.post("/profile/password", data={"current_password": PASSWORD, "new_password": NEW_PASSWORD,
                                               "confirm_password": NEW_PASSWORD, "csrf_token": token})
    assert r.status_code == 303
    assert client.post("/profile/sign-out-everywhere", data={"csrf_token": token}).status_code == 303
    assert _actions(db, user.id) == ["password_change", "sign_out_everywhere"]


@pytest.mark.parametrize("password,why", [
    ("short one", "at least 12"), ("x" * 1025, "at most 1024"), ("password1234", "too common"),
    ("Password 1234", "too common"), ("abcabcabcabc", "too common"), ("my name is johnsmith", "email name"),
])
def test_password_rules_refuse(app, password, why):
    with app.app_context(), pytest.raises(WeakPassword, match=why):
        check_new_password(password, "johnsmith@example.test")


def test_password_rules_accept_long_phrases_of_any_characters(app):
    with app.app_context():
        for password in ("correct horse battery staple", ("abcdefghij" * 103)[:1024], "ü∂ß 🙂 ñandú fünf", "aaaaaaaaaaab"):
            check_new_password(password, "johnsmith@example.test")


def test_the_profile_signature_is_under_every_reply_the_agent_sends(app, db, relay):
    from email import message_from_bytes, policy

    from app.runtime.outbound import deliver_message, send_reply
    from tests.factories import make_sending_address, make_sending_conversation

    agent = make_user("agent", name="Sam")
    agent.signature_html = "<p>Sam Smith<br>Acme Support</p>"
    db.session.commit()
    conversation = make_sending_conversation(make_sending_address(), email="carol@example.com")
    message = send_reply(conversation.id, agent.id, "<p>It ships today.</p>")
    db.session.commit()
    deliver_message(message.id)
    mail = message_from_bytes(relay.messages[-1]["data"], policy=policy.default)
    html = mail.get_body(("html",)).get_content()
    text = mail.get_body(("plain",)).get_content()
    assert '<div class="ph-signature"><p>Sam Smith<br>Acme Support</p></div>' in html
    assert html.index("It ships today.") < html.index("Sam Smith")
    assert "Sam Smith" in text and "Acme Support" in text


def test_a_reset_link_mailed_through_the_platform_relay_works(app, client, db, login_as, relay):
    from email import message_from_bytes, policy

    login_as("admin")
    agent = make_user("agent", email="mo@example.test")
    token = csrf_token(client, f"/admin/users/{agent.id}")
    r = client.post(f"/admin/users/{agent.id}/reset-link", data={"csrf_token": token, "delivery": "mail"})
    assert r.status_code == 303
    page = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "was mailed a new link" in page and "/password/" not in page  # never in a page when mailed
    sent = relay.messages[-1]
    assert sent["rcpt_tos"] == ["mo@example.test"]
    mail = message_from_bytes(sent["data"], policy=policy.default)
    assert mail["Auto-Submitted"] == "auto-generated"
    path = re.search(r"http://[^/\s]+(/password/\S+)", mail.get_content()).group(1)
    browser = _client(app)
    form_token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"',
                           browser.get(path).get_data(as_text=True)).group(1)
    r = browser.post(path, data={"new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD,
                                 "csrf_token": form_token})
    assert r.status_code == 303 and _sign_in(browser, "mo@example.test", NEW_PASSWORD).status_code == 302
