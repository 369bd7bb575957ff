"""Running flows on conversations: publish semantics, actions, acknowledgements, safety rules, blocklist, loops."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from app.flows import automatic, blocklist, editing, intent_examples, publishing, runner, safety
from app.demo.flows import DEMO_INTENTS
from app.models.channels import PublishRecord
from app.models.flows import AutomaticMail, FlowRun, IntentModel
from app.models.inbox import Message
from app.queues import get_queue
from tests.factories import make_queue, make_user
from tests.flow_factories import make_address, make_flow, make_inbound, make_response

UTC = timezone.utc


def _intents(db, names=("billing", "delivery", "returns", "account access")):
    for name in names:
        description, examples = DEMO_INTENTS[name]
        intent_examples.save_intent(None, name, description, "\n".join(examples))
    db.session.commit()


def _run(db, message):
    run = runner.run_flow(message.conversation_id)
    db.session.commit()
    return run


def _outgoing(db, conversation_id=None):
    query = select(Message).where(Message.direction == "out")
    if conversation_id:
        query = query.where(Message.conversation_id == conversation_id)
    return list(db.session.scalars(query.order_by(Message.id)))


def _send_jobs():
    return sorted(get_queue("send").job_ids)


def test_refund_mail_is_classified_routed_assigned_to_the_least_loaded_and_acknowledged_once(db):
    _intents(db)
    ann, bob = make_user(name="Ann"), make_user(name="Bob")
    billing = make_queue("Billing", members=[ann, bob])
    billing.ack_enabled = True
    billing.ack_subject = "We got your mail about {{ conversation_reference }}"
    billing.ack_body_html = "<p>Hello {{ customer_name }}, we will answer within a day.</p>"
    billing.ack_interval_minutes = 60
    flow = make_flow([
        {"name": "Billing", "conditions": [{"type": "intent", "value": "billing", "min_confidence": 0.5}],
         "actions": [{"type": "set_queue", "queue_id": billing.id}, {"type": "assign", "mode": "least_loaded"},
                     {"type": "add_tags", "tags": ["billing"]}]},
    ])
    address = make_address(flow=flow)
    busy = make_inbound(address, sender="other@example.com").conversation
    busy.assignee_id = ann.id
    db.session.commit()

    message = make_inbound(address, sender="carol@example.com", subject="Refund please",
                           text="You charged my credit card twice for the same order, I want my money back.")
    run = _run(db, message)
    conv = message.conversation
    assert conv.intent == "billing" and conv.intent_confidence >= 0.5
    assert conv.queue_id == billing.id and conv.assignee_id == bob.id and conv.tags == ["billing"]
    assert run.outcome == "ran" and run.matched == [{"id": flow.published_rules[0]["id"], "name": "Billing"}]
    assert run.intent == "billing"
    assert {"action": "assign", "result": "assigned to Bob (least loaded)"} in run.actions

    [ack] = _outgoing(db, conv.id)
    assert ack.automatic == "acknowledgement" and ack.delivery_status == "queued"
    assert ack.to_addrs == "carol@example.com" and ack.in_reply_to == message.message_id
    assert ack.subject == f"We got your mail about #{conv.id}"
    assert "Hello Carol Customer" in ack.html and "Hello Carol Customer" in ack.text
    assert ack.message_id.startswith(f"<ph.{conv.token}.")
    assert _send_jobs() == [f"send-message-{ack.id}"]

    # A second mail from the same customer within the interval: routed, but not acknowledged again.
    second = make_inbound(address, sender="carol@example.com", subject="Also: invoice",
                          text="And please send me the invoice for March.")
    run2 = _run(db, second)
    assert [m.id for m in _outgoing(db)] == [ack.id]
    assert any("acknowledgement not sent: one went to carol@example.com within 1 hour" in a["result"]
               for a in run2.actions)


def test_a_draft_edit_changes_nothing_live_until_published(db):
    general, vip = make_queue("General"), make_queue("VIP")
    flow = make_flow([{"name": "All to General", "actions": [{"type": "set_queue", "queue_id": general.id}]}])
    address = make_address(flow=flow)
    rule_id = flow.rules[0]["id"]
    editing.update_rule(flow.id, rule_id, {"name": "All to VIP", "actions": [{"type": "set_queue",
                                                                                "queue_id": vip.id}]})
    db.session.commit()
    assert flow.publish_state == "Unpublished changes"

    first = make_inbound(address, sender="a@example.com")
    _run(db, first)
    assert first.conversation.queue_id == general.id

    changes = publishing.publish_flows([flow.id], None, "VIP treatment for all")
    db.session.commit()
    assert changes[0] == {"kind": "flow", "id": flow.id, "name": flow.name, "summary": "1 changed"}
    assert db.session.scalar(select(PublishRecord.comment).order_by(PublishRecord.id.desc()).limit(1)) == \
        "VIP treatment for all"
    assert flow.publish_state == "Published"
    second = make_inbound(address, sender="b@example.com")
    _run(db, second)
    assert second.conversation.queue_id == vip.id


def test_publish_summaries_and_the_model_is_trained_only_when_examples_change(db):
    _intents(db, ("billing", "delivery"))
    flow = make_flow([], publish=False)
    editing.add_rule(flow.id, {"name": "a", "actions": [{"type": "stop"}]})
    changes = publishing.publish_flows([flow.id], None)
    assert changes[0]["summary"] == "first publication, 1 rule"
    assert changes[1]["kind"] == "intents" and "trained on" in changes[1]["summary"]
    db.session.commit()
    editing.add_rule(flow.id, {"name": "b", "actions": [{"type": "stop"}]})
    rule_a = flow.rules[0]["id"]
    editing.move_rule(flow.id, flow.rules[1]["id"], -1)
    assert [r["name"] for r in flow.rules] == ["b", "a"]
    assert editing.find_rule(flow, rule_a)["name"] == "a"
    changes = publishing.publish_flows([flow.id], None)
    assert changes[0]["summary"] == "1 added" and changes[1]["summary"] == "intent model unchanged"
    editing.move_rule(flow.id, rule_a, -1)
    assert publishing.publish_flows([flow.id], None)[0]["summary"] == "reordered"
    assert db.session.scalar(select(func.count()).select_from(IntentModel)) == 1
    intent_examples.save_intent(None, "returns", "", "\n".join(DEMO_INTENTS["returns"][1]))
    publishing.publish_flows([], None)
    assert db.session.scalar(select(func.count()).select_from(IntentModel)) == 2


def test_every_action_is_applied_and_the_auto_reply_resolves(db):
    ann = make_user(name="Ann")
    queue = make_queue("Returns", members=[ann])
    response = make_response("Return label", "<p>Dear {{ customer_name }}, your label is attached.</p>",
                             subject="Your return label")
    flow = make_flow([{"name": "Labels", "conditions": [{"type": "subject", "op": "contains", "value": "label"}],
                       "actions": [{"type": "set_queue", "queue_id": queue.id}, {"type": "set_priority", "priority": 2},
                                   {"type": "add_tags", "tags": ["returns", "label"]},
                                   {"type": "assign", "mode": "agent", "user_id": ann.id},
                                   {"type": "auto_reply", "response_id": response.id},
                                   {"type": "set_status", "status": "resolved"}]}])
    address = make_address(flow=flow)
    message = make_inbound(address, subject="Return label please", text="Can I get a label?")
    run = _run(db, message)
    conv = message.conversation
    assert (conv.queue_id, conv.priority, conv.tags, conv.assignee_id, conv.status) == (
        queue.id, 2, ["returns", "label"], ann.id, "resolved")
    [reply] = _outgoing(db, conv.id)
    assert reply.automatic == "auto_reply" and reply.subject == "Your return label"
    assert "Dear Carol Customer" in reply.html
    assert [a["action"] for a in run.actions] == ["set queue", "set priority", "add tags", "assign",
                                                  "automatic reply", "set status"]


def test_last_agent_assignment_and_its_fallback(db):
    ann, bob = make_user(name="Ann"), make_user(name="Bob")
    queue = make_queue("Billing", members=[ann, bob])
    flow = make_flow([{"name": "Sticky", "actions": [{"type": "set_queue", "queue_id": queue.id},
                                                     {"type": "assign", "mode": "last_agent"}]}])
    address = make_address(flow=flow)
    old = make_inbound(address, sender="carol@example.com").conversation
    old.assignee_id, old.status = bob.id, "resolved"
    FlowRun  # noqa: B018 (the old conversation never ran a flow: not needed for the test)
    db.session.add(FlowRun(conversation_id=old.id, message_id=old.messages[0].id, outcome="ran"))
    db.session.commit()
    new = make_inbound(address, sender="carol@example.com")
    _run(db, new)
    assert new.conversation.assignee_id == bob.id
    bob.email_capacity = 1
    make_inbound(address, sender="x@example.com").conversation.assignee_id = bob.id
    db.session.commit()
    third = make_inbound(address, sender="dave@example.com")
    _run(db, third)
    assert third.conversation.assignee_id == ann.id  # no last agent: the least-loaded member


def test_outside_business_hours_the_conversation_waits_in_the_queue(db):
    ann = make_user(name="Ann")
    queue = make_queue("Billing", members=[ann])
    queue.time_zone, queue.business_hours = "Asia/Tokyo", {"mon": [["09:00", "17:00"]], "holidays": []}
    flow = make_flow([{"name": "Route", "actions": [{"type": "set_queue", "queue_id": queue.id},
                                                    {"type": "assign", "mode": "least_loaded"}]}])
    address = make_address(flow=flow)
    closed = make_inbound(address, created_at=datetime(2026, 3, 1, 23, 30, tzinfo=UTC))  # Mon 08:30 Tokyo
    run = _run(db, closed)
    assert closed.conversation.assignee_id is None
    assert "outside Billing's business hours" in run.actions[-1]["result"]
    opened = make_inbound(address, sender="d@example.com", created_at=datetime(2026, 3, 2, 0, 30, tzinfo=UTC))
    _run(db, opened)
    assert opened.conversation.assignee_id == ann.id


def test_a_flow_runs_once_per_message_even_when_the_job_is_retried(db):
    queue = make_queue("General")
    queue.ack_enabled, queue.ack_body_html = True, "<p>Thanks</p>"
    flow = make_flow([{"name": "Route", "actions": [{"type": "set_queue", "queue_id": queue.id}]}])
    address = make_address(flow=flow)
    message = make_inbound(address)
    first = _run(db, message)
    assert _run(db, message) is None  # nothing left to run in the conversation
    assert runner.run_flow(message.conversation_id, message.id).id == first.id
    assert runner.run_flow(message.conversation_id, message.id).id == first.id
    assert len(_outgoing(db)) == 1
    assert db.session.scalar(select(func.count()).select_from(FlowRun)) == 1


def test_two_messages_stored_before_the_job_ran_are_both_handled_in_order(db):
    ann = make_user(name="Ann")
    queue = make_queue("General", members=[ann])
    flow = make_flow([{"name": "Route", "actions": [{"type": "set_queue", "queue_id": queue.id},
                                                    {"type": "assign", "mode": "least_loaded"}]}])
    address = make_address(flow=flow)
    first = make_inbound(address, text="First")
    make_inbound(address, conversation=first.conversation, text="Second")
    last = _run(db, first)
    runs = runner.runs_of(first.conversation_id)
    assert [r.outcome for r in runs] == ["ran", "reply"] and last.id == runs[-1].id
    assert runs[0].message_id == first.id and first.conversation.assignee_id == ann.id


def test_unpublished_or_disabled_addresses_and_missing_flows(db):
    unpublished = make_address(publish=False)
    run = _run(db, make_inbound(unpublished))
    assert run.outcome == "skipped"
    no_flow = make_address()
    run = _run(db, make_inbound(no_flow, sender="z@example.com"))
    assert run.outcome == "no_flow" and "no published flow" in run.notes[0]


def test_automatic_mail_is_enqueued_only_after_commit_and_never_after_rollback(db):
    queue = make_queue("General")
    queue.ack_enabled, queue.ack_body_html = True, "<p>Thanks</p>"
    flow = make_flow([{"name": "Route", "actions": [{"type": "set_queue", "queue_id": queue.id}]}])
    address = make_address(flow=flow)
    message = make_inbound(address)
    runner.run_flow(message.conversation_id)
    assert _send_jobs() == []
    db.session.rollback()
    assert _send_jobs() == [] and _outgoing(db) == []
    runner.run_flow(message.conversation_id)
    db.session.commit()
    assert _send_jobs() == [f"send-message-{_outgoing(db)[0].id}"]


@pytest.mark.parametrize("subject, expected", [("Re: order 17", "Re: order 17"), ("AW: Paket", "Re: Paket"),
                                               ("Order 18", "Re: Order 18")])
def test_an_acknowledgement_answers_with_re_once(db, subject, expected):
    # It went out as "Re: Re: order 17" (its own prefix rule); app.mail.subjects is the one rule.
    queue = make_queue("General")
    queue.ack_enabled, queue.ack_body_html = True, "<p>Thanks</p>"
    flow = make_flow([{"name": "Route", "actions": [{"type": "set_queue", "queue_id": queue.id}]}])
    message = make_inbound(make_address(flow=flow), subject=subject)
    _run(db, message)
    [ack] = _outgoing(db, message.conversation_id)
    assert ack.automatic == "acknowledgement" and ack.subject == expected


@pytest.mark.parametrize("headers, sender, reason", [
    ({"Auto-Submitted": "auto-replied"}, "carol@example.com", "Auto-Submitted: auto-replied"),
    ({"Precedence": "bulk"}, "carol@example.com", "Precedence: bulk"),
    ({"X-Autoreply": "yes"}, "carol@example.com", "X-Autoreply"),
    ({"List-Id": "<news.example.com>"}, "carol@example.com", "mailing list"),
    ({"Return-Path": "<>"}, "carol@example.com", "empty Return-Path"),
    ({"X-Auto-Response-Suppress": "All"}, "carol@example.com", "X-Auto-Response-Suppress"),
    ({}, "noreply@shop.example.com", "noreply or system address"),
    ({}, "MAILER-DAEMON@mx.example.com", "noreply or system address"),
    ({}, "bounces+123@lists.example.com", "noreply or system address"),
    ({}, "desk@mail.pigeonhole.test", "one of our own addresses"),
    ({}, "acme-center@acme.example", "one of our own addresses"),
    ({}, "x@localhost", "not an address we send to"),  # the composer refuses it too (app.mail.addresses)
])
def test_automatic_mail_is_never_sent_to_automatic_senders_lists_bounces_or_ourselves(db, headers, sender, reason):
    queue = make_queue("General")
    queue.ack_enabled, queue.ack_body_html = True, "<p>Thanks</p>"
    flow = make_flow([{"name": "Route", "actions": [{"type": "set_queue", "queue_id": queue.id}]}])
    address = make_address(flow=flow, forwarded_from="acme-center@acme.example")
    message = make_inbound(address, sender=sender, headers=headers)
    run = _run(db, message)
    assert _outgoing(db) == []
    assert reason in run.actions[-1]["result"], run.actions
    with pytest.raises(automatic.AutomaticMailRefused, match=reason.split(":")[0]):
        automatic.queue_automatic_reply(message.conversation_id, "Hi", "<p>Hi</p>", "auto_reply")


def test_multipart_report_bounces_are_recognised(db):
    address = make_address()
    message = make_inbound(address, sender="postmaster-notice@example.com",
                           headers={"Content-Type": 'multipart/report; report-type="delivery-status"; boundary="x"'})
    assert "delivery report" in safety.automatic_sender_reason(message)


def test_at_most_n_automatic_mails_per_customer_per_hour(db, app):
    app.config["AUTO_REPLIES_PER_HOUR"] = 2
    response = make_response()
    flow = make_flow([{"name": "Answer all", "actions": [{"type": "auto_reply", "response_id": response.id}]}])
    address = make_address(flow=flow)
    for i in range(4):
        _run(db, make_inbound(address, subject=f"Question {i}"))
    assert len(_outgoing(db)) == 2
    last = db.session.scalar(select(FlowRun).order_by(FlowRun.id.desc()).limit(1))
    assert "already got 2 automatic mails in the last hour" in last.actions[0]["result"]
    # An hour later the cap has room again.
    for row in db.session.scalars(select(AutomaticMail)):
        row.created_at -= timedelta(minutes=61)
    db.session.commit()
    _run(db, make_inbound(address, subject="Question 5"))
    assert len(_outgoing(db)) == 3


def test_inbound_only_addresses_send_nothing_automatically(db):
    response = make_response()
    flow = make_flow([{"name": "Answer", "actions": [{"type": "auto_reply", "response_id": response.id}]}])
    address = make_address(flow=flow, usage="inbound")
    run = _run(db, make_inbound(address))
    assert _outgoing(db) == [] and "inbound-only" in run.actions[0]["result"]


def test_replies_stick_to_the_agent_and_rules_do_not_run_again(db):
    ann = make_user(name="Ann")
    queue = make_queue("Billing", members=[ann])
    flow = make_flow([{"name": "Route", "actions": [{"type": "set_queue", "queue_id": queue.id},
                                                    {"type": "assign", "mode": "least_loaded"},
                                                    {"type": "add_tags", "tags": ["first"]}]}])
    address = make_address(flow=flow)
    first = make_inbound(address)
    _run(db, first)
    conv = first.conversation
    conv.status, conv.tags = "resolved", []
    db.session.commit()
    reply = make_inbound(address, conversation=conv, text="One more thing", in_reply_to="<x@y>")
    run = _run(db, reply)
    assert run.outcome == "reply" and run.matched == []
    assert conv.assignee_id == ann.id and conv.status == "open" and conv.tags == []
    assert run.actions[0] == {"action": "route reply", "result": "stays with Ann"}


# --- Email Blocklist ---------------------------------------------------------------------------

def test_a_blocked_sender_is_stored_but_runs_no_automation_and_is_not_assigned(db):
    ann = make_user(name="Ann")
    queue = make_queue("General", members=[ann])
    queue.ack_enabled, queue.ack_body_html = True, "<p>Thanks</p>"
    flow = make_flow([{"name": "Route", "actions": [{"type": "set_queue", "queue_id": queue.id},
                                                    {"type": "assign", "mode": "least_loaded"}]}])
    address = make_address(flow=flow)
    blocklist.add_block(address.id, "spam.example", None)
    db.session.commit()
    message = make_inbound(address, sender="offers@news.spam.example")
    run = _run(db, message)
    conv = message.conversation
    assert run.outcome == "blocked" and "Email Blocklist" in run.notes[0]
    assert conv.queue_id is None and conv.assignee_id is None and _outgoing(db) == []
    assert db.session.get(Message, message.id) is not None  # stored and visible
    other = make_address(flow=flow)  # the blocklist is per address
    assert _run(db, make_inbound(other, sender="offers@spam.example")).outcome == "ran"


def test_blocklist_entries_are_validated_and_unique():
    assert blocklist.normalise_block(" Bob@Example.COM ") == "bob@example.com"
    assert blocklist.normalise_block("@example.org") == "example.org"
    assert blocklist.normalise_block("*.example.org") == "example.org"
    for bad in ("", "bob", "a@b@c.com", "@", "bob@", "two words.com", "example..com"):
        with pytest.raises(ValueError):
            blocklist.normalise_block(bad)


def test_blocklist_csv_upload_reports_added_duplicates_and_errors(db):
    address = make_address()
    blocklist.add_block(address.id, "old@example.com", None)
    data = ("email\nnew@example.com\nOLD@example.com\nspam.example\nnot an address\nnew@example.com\n\n"
            "# a comment\n@bad.example\nbad;chars.example\n").encode()
    summary = blocklist.import_blocklist_csv(address.id, data, None)
    assert summary.added == ["new@example.com", "spam.example", "bad.example"]
    assert summary.duplicates == ["old@example.com", "new@example.com"]
    assert summary.errors == [(5, "“not an address” is not an email address or a domain."),
                              (10, "“bad;chars.example” is not an email address or a domain.")]
    assert [e.value for e in blocklist.entries(address.id)] == [
        "bad.example", "new@example.com", "old@example.com", "spam.example"]
    with pytest.raises(ValueError, match="UTF-8"):
        blocklist.import_blocklist_csv(address.id, b"\xff\xfe\x00bad", None)
    with pytest.raises(ValueError, match="already"):
        blocklist.add_block(address.id, "spam.example", None)


# --- loop safety ---------------------------------------------------------------------------------

def _deliver(db, outgoing: Message, to_address, *, strip_headers: bool, sender: str) -> Message:
    """What the other side's ingest stores when our automatic mail reaches it (a new conversation)."""
    headers = {} if strip_headers else {"Auto-Submitted": "auto-replied"}
    return make_inbound(to_address, sender=sender, name="", subject=outgoing.subject, text=outgoing.text,
                        headers=headers)


def _ping_pong(db, a, b, first: Message, *, strip_headers: bool, a_name: str, b_name: str, limit: int = 50):
    """Deliver every queued automatic mail to the other address and run its flow, until nothing new is queued.

    `first` arrived at `b`; mail that X sends reaches the other side as coming from X's name.
    """
    names = {a.id: a_name, b.id: b_name}
    sent = 0
    pending = [(first, b)]
    while pending and sent < limit:
        message, receiver = pending.pop(0)
        _run(db, message)
        other = a if receiver.id == b.id else b
        for mail in db.session.scalars(select(Message).where(
                Message.conversation_id == message.conversation_id, Message.direction == "out",
                Message.delivery_status == "queued")).all():
            mail.delivery_status = "sent"
            sent += 1
            pending.append((_deliver(db, mail, other, strip_headers=strip_headers, sender=names[receiver.id]), other))
        db.session.commit()
    return sent


def test_two_of_our_addresses_auto_replying_to_each_other_exchange_nothing(db):
    response = make_response("Auto", "<p>Thanks, we got it.</p>")
    flow = make_flow([{"name": "Answer", "actions": [{"type": "auto_reply", "response_id": response.id}]}])
    a = make_address("desk-a@mail.pigeonhole.test", flow=flow)
    b = make_address("desk-b@mail.pigeonhole.test", flow=flow)
    first = make_inbound(b, sender=a.address, name="", subject="Hello", text="Hi")
    assert _ping_pong(db, a, b, first, strip_headers=True, a_name=a.address, b_name=b.address) == 0


def test_auto_replies_pointed_at_each_other_stop_even_when_a_relay_strips_the_headers(db, app):
    """Two installations (here: two custom-domain addresses we do not recognise as each other's)
    whose auto-replies point at each other. With Auto-Submitted intact, the first automatic mail is
    never answered; with a relay that strips it, the per-customer cap ends the exchange."""
    response = make_response("Auto", "<p>Thanks, we got it.</p>")
    flow = make_flow([{"name": "Answer", "actions": [{"type": "auto_reply", "response_id": response.id}]}])
    a = make_address("help@shop-a.example", flow=flow)
    b = make_address("help@shop-b.example", flow=flow)
    relay_a, relay_b = "relay@outside-a.example", "relay@outside-b.example"  # how each side sees the other

    start = make_inbound(b, sender=relay_a, name="", subject="Hello", text="Hi there")
    assert _ping_pong(db, a, b, start, strip_headers=False, a_name=relay_a, b_name=relay_b) == 1

    db.session.execute(AutomaticMail.__table__.delete())
    db.session.commit()
    cap = app.config["AUTO_REPLIES_PER_HOUR"]
    start = make_inbound(b, sender=relay_a, name="", subject="Hello again", text="Hi there")
    sent = _ping_pong(db, a, b, start, strip_headers=True, a_name=relay_a, b_name=relay_b)
    assert sent == 2 * cap  # each side answers the other `cap` times in the hour, then stops
