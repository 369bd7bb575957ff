"""Flow jobs (queue `flows`): run a conversation's flow after its new inbound message is stored."""
from app.extensions import db
from app.flows import runner
from app.transactions import retry_when_locked
from jobs import app_context


def run_flow(conversation_id: int, message_id: int | None = None) -> dict | None:
    """Intent, automation and routing for the conversation's newest inbound message.

    Enqueued by ingest after it commits the message (job id ``run-flow-<message id>``
    recommended). Automatic mail it queues is enqueued on the `send` queue after this
    commit. Safe to run twice: a message runs through a flow once.
    """
    with app_context():
        run = retry_when_locked(_run_and_commit, conversation_id, message_id)
        if run is None:
            return None
        return {"run": run.id, "outcome": run.outcome, "intent": run.intent, "matched": run.matched}


def _run_and_commit(conversation_id: int, message_id: int | None):
    run = runner.run_flow(conversation_id, message_id)
    db.session.commit()
    return run
