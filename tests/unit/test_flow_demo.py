"""The demo seed's intents and "Route by intent" flow: mail about a refund lands in Billing."""
from __future__ import annotations

from sqlalchemy import select

from app.demo import seed
from app.flows import runner
from app.models.auth import Queue
from app.models.flows import Flow, Intent, IntentModel
from tests.flow_factories import make_address, make_inbound


def test_demo_flow_routes_by_intent_and_seeding_again_changes_nothing(db):
    created = seed()
    db.session.commit()
    assert "intent billing (34 examples)" in created and any(c.startswith("flow Route by intent") for c in created)
    assert sorted(db.session.scalars(select(Intent.name))) == ["account access", "billing", "delivery", "returns"]
    flow = db.session.scalar(select(Flow).where(Flow.name == "Route by intent"))
    assert flow.publish_state == "Published" and len(flow.published_rules) == 5
    assert db.session.scalar(select(IntentModel.example_count)) == 136
    assert not [line for line in seed() if "intent" in line or "flow" in line]

    address = make_address(flow=flow)
    cases = {"Refund please": ("I was charged twice, please refund the second payment.", "Billing"),
             "Parcel missing": ("My package still has not arrived, the tracking is stuck.", "Delivery"),
             "Can't log in": ("The password reset email never arrives and I am locked out.", "Account Access"),
             "Hello": ("Lorem ipsum dolor sit amet.", "General")}
    for i, (subject, (text, queue_name)) in enumerate(cases.items()):
        message = make_inbound(address, sender=f"demo{i}@example.com", subject=subject, text=text)
        runner.run_flow(message.conversation_id)
        db.session.commit()
        queue = db.session.get(Queue, message.conversation.queue_id)
        assert queue.name == queue_name, (subject, message.conversation.intent, message.conversation.intent_confidence)
    assert message.conversation.assignee is not None  # the agent or the supervisor, least loaded
