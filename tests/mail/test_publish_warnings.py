"""Publish warns about configurations that cannot work, and mail no flow routes lands in the default queue.

Through the real routes (Publish dialog, Queues page) and the real SMTP ingress.
"""
from __future__ import annotations

import html
import smtplib

from rq import SimpleWorker
from rq.serializers import JSONSerializer
from sqlalchemy import select

import jobs
from app.models.auth import Queue
from app.models.channels import EmailAddress
from app.models.inbox import Conversation
from app.queues import get_queue, redis_connection
from tests.factories import make_queue
from tests.flow_factories import make_flow
from tests.helpers import csrf_token
from tests.mail.conftest import make_address, message
from tests.mail.test_ingress import running, work_ingest_queue
from tests.pages import HX, fragment

PLATFORM = "mail.pigeonhole.test"
ANY_RULE = [{"name": "All", "conditions": [], "actions": [{"type": "set_priority", "priority": 1}]}]


def test_proceed_lists_a_warning_per_item_and_publishing_stays_allowed(app, db, client, login_as):
    login_as("admin")
    make_queue("Billing")
    unpublished_flow = make_flow(ANY_RULE, name="Never published", publish=False)
    empty_flow = make_flow([], name="Empty")
    no_flow = make_address(f"noflow@{PLATFORM}", publish=False)
    draft_flow = make_address(f"draftflow@{PLATFORM}", publish=False, flow_id=unpublished_flow.id)
    empty = make_address(f"empty@{PLATFORM}", publish=False, flow_id=empty_flow.id)
    failed = make_address("help@acme.test", "custom", publish=False, flow_id=empty_flow.id, last_test_ok=False,
                          last_test_message="Sign-in refused: wrong user name or password.")
    fine_flow = make_flow(ANY_RULE, name="Fine")
    fine = make_address(f"fine@{PLATFORM}", publish=False, flow_id=fine_flow.id, last_test_ok=True)
    items = [f"address:{a.id}" for a in (no_flow, draft_flow, empty, failed, fine)]
    token = csrf_token(client, "/channels/publish/")
    body = html.unescape(fragment(client.post("/channels/publish/new", headers=HX, data={
        "csrf_token": token, "comment": "go live", "item": items})))
    assert "Check before you confirm" in body
    assert f"noflow@{PLATFORM} has no flow: its mail goes to the default queue “Billing”." in body
    assert f"draftflow@{PLATFORM}: its flow “Never published” was never published" in body
    assert f"empty@{PLATFORM}: its flow “Empty” has no rules" in body
    assert ("help@acme.test: the last Test Connection failed (Sign-in refused: wrong user name or password.)"
            in body)
    assert f"fine@{PLATFORM}" in body and f"fine@{PLATFORM}:" not in body and f"fine@{PLATFORM} has" not in body

    # Publishing the flow with its address clears that warning.
    with_flow = html.unescape(fragment(client.post("/channels/publish/new", headers=HX, data={
        "csrf_token": token, "comment": "go live", "item": [f"address:{draft_flow.id}",
                                                             f"flow:{unpublished_flow.id}"]})))
    assert "Check before you confirm" not in with_flow

    versions = {f"version-{i}": db.session.get(EmailAddress, int(i.split(":")[1])).draft_updated_at.isoformat()
                for i in items}
    confirmed = client.post("/channels/publish/confirm", headers=HX,
                            data={"csrf_token": token, "comment": "go live", "item": items, **versions})
    assert confirmed.status_code == 204 and confirmed.headers["HX-Redirect"] == "/channels/publish/"
    db.session.expire_all()
    assert all(db.session.get(EmailAddress, int(i.split(":")[1])).published is not None for i in items)


def _deliver(app, db, recipient: str, subject: str) -> Conversation:
    with running(app) as ingress:
        with smtplib.SMTP(ingress.hostname, ingress.port, timeout=10) as smtp:
            assert smtp.sendmail("carla@example.com", [recipient], message(to=recipient, subject=subject)) == {}
    work_ingest_queue(app)
    jobs.use_app(app)
    SimpleWorker([get_queue("flows")], connection=redis_connection(), serializer=JSONSerializer).work(burst=True)
    db.session.expire_all()
    return db.session.scalars(select(Conversation).where(Conversation.subject == subject)).one()


def test_mail_no_flow_routes_goes_to_the_default_queue_the_admin_chose(app, db, client, login_as):
    login_as("admin")
    make_queue("Alpha")
    billing = make_queue("Billing")
    no_flow = make_address(f"noflow@{PLATFORM}")
    no_match = make_address(f"nomatch@{PLATFORM}", flow_id=make_flow([
        {"name": "Refunds", "conditions": [{"type": "subject", "op": "contains", "value": "refund"}],
         "actions": [{"type": "set_priority", "priority": 2}]}]).id)
    db.session.commit()

    assert _deliver(app, db, no_flow.address, "Before choosing").queue.name == "Alpha"  # the first queue

    token = csrf_token(client, "/flows/queues/")
    page = html.unescape(client.get("/flows/queues/").get_data(as_text=True))
    assert '<label for="queue">Default queue</label>' in page
    assert fragment(client.post("/flows/queues/default", headers=HX,
                                data={"csrf_token": token, "queue": "99999"}), 422)
    saved = client.post("/flows/queues/default", headers=HX, data={"csrf_token": token, "queue": str(billing.id)})
    assert saved.status_code == 204 and saved.headers["HX-Redirect"] == "/flows/queues/"
    db.session.expire_all()
    assert [q.name for q in db.session.scalars(select(Queue).where(Queue.is_default.is_(True)))] == ["Billing"]

    assert _deliver(app, db, no_flow.address, "No flow at all").queue_id == billing.id
    routed = _deliver(app, db, no_match.address, "Where is my order?")
    assert routed.queue_id == billing.id


def test_without_any_queue_mail_lands_in_a_new_unassigned_queue(app, db):
    address = make_address(f"noflow@{PLATFORM}")
    conversation = _deliver(app, db, address.address, "Nobody set up queues")
    assert conversation.queue is not None and conversation.queue.name == "Unassigned"
