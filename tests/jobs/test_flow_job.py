"""jobs.flows.run_flow in a real `flask worker`: routes the conversation and hands its automatic mail to the send queue."""
from __future__ import annotations

import subprocess

from app.models.inbox import Conversation, Message
from app.queues import enqueue, get_queue
from tests.factories import make_queue, make_user
from tests.flow_factories import make_address, make_flow, make_inbound, make_response
from tests.subprocess_env import flask_cmd, flask_env


def test_the_flows_worker_runs_the_flow_and_enqueues_the_automatic_reply_after_commit(app, db, tmp_path):
    ann = make_user(name="Ann")
    queue = make_queue("Billing", members=[ann])
    response = make_response("Refunds", "<p>Refunds take five days, {{ customer_name }}.</p>")
    flow = make_flow([{"name": "Refunds", "conditions": [{"type": "subject", "op": "contains", "value": "refund"}],
                       "actions": [{"type": "set_queue", "queue_id": queue.id},
                                   {"type": "assign", "mode": "least_loaded"},
                                   {"type": "auto_reply", "response_id": response.id}]}])
    message = make_inbound(make_address(flow=flow), subject="Refund for order 7", text="Please refund me.")
    conversation_id = message.conversation_id
    with app.app_context():
        job = enqueue("flows", "jobs.flows.run_flow", conversation_id, job_id=f"run-flow-{message.id}")
    run = subprocess.run(flask_cmd("worker", "flows", "--burst"), env=flask_env(app, tmp_path),
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    job.refresh()
    assert job.get_status() == "finished", run.stderr
    assert job.return_value()["outcome"] == "ran" and job.return_value()["matched"][0]["name"] == "Refunds"

    db.session.expire_all()
    conversation = db.session.get(Conversation, conversation_id)
    assert conversation.queue_id == queue.id and conversation.assignee_id == ann.id
    reply = db.session.query(Message).filter_by(conversation_id=conversation_id, direction="out").one()
    assert reply.automatic == "auto_reply" and reply.delivery_status == "queued"
    with app.app_context():
        assert get_queue("send").job_ids == [f"send-message-{reply.id}"]
