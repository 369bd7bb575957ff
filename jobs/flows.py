"""Flow jobs (queue `flows`): run a conversation's flow after its new inbound message is stored."""
import logging

from sqlalchemy.exc import IntegrityError, OperationalError

from app.extensions import begin_nested, begin_writing, db
from app.flows import runner
from app.transactions import retry_when_locked
from jobs import app_context

log = logging.getLogger(__name__)


def run_flow(conversation_id: int, message_id: int | None = None) -> dict | None:
    """Intent, automation and routing for the conversation's newest inbound message.

    Enqueued by ingest after it commits the message (job id ``flow-message-<message id>``,
    `app.runtime.ingest_jobs.flow_jobs`). Automatic mail it queues is enqueued on the `send` queue
    after this commit. Safe to run twice: a message runs through a flow once.
    """
    with app_context():
        run = retry_when_locked(_run_and_commit, conversation_id, message_id)
        if run is None:
            return None
        return {"run": run.id, "outcome": run.outcome, "intent": run.intent, "matched": run.matched}


def run_flows(steps: list[list[int]]) -> dict:
    """The flow step of several messages that one ingest stored (`[conversation id, message id]` each).

    Each message runs in its own savepoint and the batch commits once: a message whose flow
    fails is rolled back alone and logged, and stays without a `FlowRun`, so cron's sweep
    (`requeue_stale_flows`) queues it again on its own; one that another worker ran at the
    same moment (the unique run per message) is left to that run. Automatic mail leaves after
    the commit, as with `run_flow`.
    """
    with app_context():
        return retry_when_locked(_run_many_and_commit, steps)


def _run_and_commit(conversation_id: int, message_id: int | None):
    begin_writing()
    run = runner.run_flow(conversation_id, message_id)
    db.session.commit()
    return run


def _run_many_and_commit(steps: list[list[int]]) -> dict:
    ran = failed = 0
    begin_writing()
    for conversation_id, message_id in steps:
        savepoint = begin_nested()
        try:
            runner.run_flow(conversation_id, message_id)
            savepoint.commit()
            ran += 1
        except OperationalError:
            raise  # the database itself (locked, gone): the whole batch is retried or fails
        except IntegrityError:
            savepoint.rollback()  # another worker stored this message's run a moment ago
        except Exception:  # noqa: BLE001 - one message's failure must not cost the others their run
            savepoint.rollback()
            failed += 1
            log.exception("flow of message %s (conversation %s) failed; cron's sweep queues it again",
                          message_id, conversation_id)
    db.session.commit()
    return {"ran": ran, "failed": failed}
