"""Every GET route of the app, opened as a plain page by each role, answers a page, a redirect or a 4xx.

The routes come from the app's own `url_map`, so a route added later is walked too. Each id in a
path is tried with a row that exists and with one that does not; fragments that HTMX loads
(a message body, a quote, the suggestions) are opened without HTMX, as a pasted link would.
"""
from __future__ import annotations

from collections import Counter
from html.parser import HTMLParser

from sqlalchemy import func, select

from app.channels import wizard
from app.channels.domains import ensure_platform_domain
from app.extensions import db as _db
from app.inbox import drafts
from app.models.auth import User
from app.models.channels import AddressSetup, Domain
from app.models.flows import Flow, Intent
from app.models.inbound import InboundRaw
from app.models.inbox import Attachment, Contact, Conversation, Draft, Message
from app.models.notifications import Notification
from app.models.responses import ResponseGroup, StandardResponse
from app.models.send_tests import SendTest
from app.runtime.outbound import queue_send_test
from tests.factories import (PASSWORD, make_address, make_conversation, make_message, make_queue, make_response,
                             make_user)
from tests.flow_factories import make_flow
from tests.helpers import csrf_token

#: Each path argument: the model whose newest row fills it.
ARGUMENT_ROWS = {
    "address_id": "EmailAddress", "domain_id": Domain, "setup_id": AddressSetup, "flow_id": Flow,
    "conversation_id": Conversation, "intent_id": Intent, "queue_id": None, "attachment_id": Attachment,
    "draft_id": Draft, "message_id": Message, "response_id": StandardResponse, "group_id": ResponseGroup,
    "raw_id": InboundRaw, "user_id": User, "test_id": SendTest,
    "contact_id": Contact, "note_id": Message, "notification_id": Notification,
}
OTHER_VALUES = {"part": ("header", "footer"), "version": (1,), "number": (1, 987654), "rule_id": ("r1", "nope"), "index": (0, 5),
                "name": ("nothing.eml",), "filename": ("app.css",),
                "token": ("not-a-token",), "sha256": ("0" * 64, "not-a-sha")}
MISSING = 987654
#: Query strings the pages give some fragments (tried besides none).
QUERIES = {"inbox.updates": ("after=0",), "inbox.picker": ("draft={draft_id}", "draft={draft_id}&results=1"),
           "inbox.suggest": ("q=cu&draft={draft_id}", "to=cu"), "inbox.message_body": ("images=1",),
           "inbox.insert_response": ("draft={draft_id}",)}


def _data(admin, agent, supervisor):
    queue = make_queue(members=[agent, supervisor])
    address = make_address(queues=[queue])
    conversation = make_conversation(queue=queue, address=address, assignee=agent)
    make_message(conversation, html="<p>Hello <b>there</b></p>",
                 attachments=[("note.txt", "text/plain", b"a note")])
    make_message(conversation, direction="out", delivery_status="sent", author=agent)
    note = make_message(conversation, direction="note", author=agent, text="A note", html="<p>A note</p>")
    _db.session.add(Notification(user_id=agent.id, actor_id=supervisor.id, conversation_id=conversation.id,
                                 message_id=note.id, text="Sam mentioned you"))
    make_response()
    flow = make_flow([{"name": "Stop", "actions": [{"type": "stop"}]}], publish=False)
    OTHER_VALUES["rule_id"] = (flow.rules[0]["id"], "nope")
    for user in (admin, agent, supervisor):
        drafts.start_draft(user, conversation.id, "reply")
    wizard.start_setup(ensure_platform_domain().id, admin.id)
    queue_send_test(address.id, "ada@example.org", requested_by=admin.id)
    _db.session.add(InboundRaw(address_id=address.id, source="cli", raw_sha256="0" * 64, size=3, status="error",
                               error="unreadable"))
    _db.session.commit()


def _values(app, argument):
    if argument in OTHER_VALUES:
        return OTHER_VALUES[argument]
    model = ARGUMENT_ROWS[argument]
    if model is AddressSetup:  # wizards are named by their unguessable token
        newest = _db.session.scalar(select(AddressSetup.token).order_by(AddressSetup.id.desc()).limit(1))
        return (newest, "no-such-wizard") if newest else ("no-such-wizard",)
    if model is None:
        from app.models.auth import Queue as model
    elif model == "EmailAddress":
        from app.models.channels import EmailAddress as model
    newest = _db.session.scalar(select(func.max(model.id)))
    return (newest, MISSING) if newest else (MISSING,)


def _paths(app):
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint == "static":
            continue
        combos = [{}]
        for argument in sorted(rule.arguments):
            combos = [{**c, argument: v} for c in combos for v in _values(app, argument)]
        draft_id = _values(app, "draft_id")[0]
        for values in combos:
            path = rule.build(values, append_unknown=False)[1]
            yield rule.endpoint, path
            for query in QUERIES.get(rule.endpoint, ()):
                yield rule.endpoint, f"{path}?{query.format(draft_id=draft_id)}"


class _Ids(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids = Counter()

    def handle_starttag(self, tag, attrs):
        self.ids.update(value for name, value in attrs if name == "id" and value)


def _repeated_ids(html: str) -> list[str]:
    """Ids used more than once on a page (a label's `for`, htmx targets and screen readers need one)."""
    parser = _Ids()
    parser.feed(html)
    return sorted(i for i, n in parser.ids.items() if n > 1)


def test_every_get_route_answers_each_role_without_a_server_error(app):
    admin = make_user("admin")
    agent = make_user("agent")
    supervisor = make_user("supervisor")
    _data(admin, agent, supervisor)
    app.config["PROPAGATE_EXCEPTIONS"] = False  # a server error answers 500, as in production
    walked, failures, repeated = 0, [], []
    for user in (admin, supervisor, agent):
        fresh = app.test_client()
        r = fresh.post("/login", data={"email": user.email, "password": PASSWORD, "csrf_token": csrf_token(fresh)})
        assert r.status_code == 302
        with app.app_context():
            paths = list(_paths(app))
        for endpoint, path in paths:
            response = fresh.get(path)
            walked += 1
            if endpoint == "ops.healthz" and response.status_code == 503:
                # Its answer, not an error: the send test queued above waits with no worker listening.
                assert response.get_json()["unworked_queues"] == ["send"]
            elif response.status_code >= 500:
                failures.append((user.role, endpoint, path, response.status_code))
            elif response.status_code == 200 and response.mimetype == "text/html":
                if ids := _repeated_ids(response.get_data(as_text=True)):
                    repeated.append((user.role, path, ids))
    assert walked > 150
    assert failures == []
    assert repeated == []  # no id twice on any page (issue 16: htmx targeted a hidden copy)


def test_a_fragment_opened_as_a_page_leads_to_its_page(client, login_as, htmx_headers):
    agent = login_as("agent")
    queue = make_queue(members=[agent])
    conversation = make_conversation(queue=queue, address=make_address(queues=[queue]), assignee=agent)
    message = make_message(conversation, html="<p>Hello</p>")
    page = f"/inbox/c/{conversation.id}"
    for path in (f"/inbox/m/{message.id}/body", f"/inbox/m/{message.id}/quote", f"{page}/updates?after=0"):
        r = client.get(path)
        assert (r.status_code, r.headers["Location"]) == (303, page), path
        assert client.get(path, headers=htmx_headers).status_code == 200, path
    assert client.get("/inbox/contacts/suggest?q=cu").status_code == 404
    assert client.get("/inbox/contacts/suggest?q=cu", headers=htmx_headers).status_code == 200
