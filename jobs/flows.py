"""Flow jobs (queue `flows`): run a conversation's flow after its new inbound message is stored."""
import logging

from sqlalchemy.exc import IntegrityError, OperationalError

from app.extensions import begin_nested, begin_writing, db
from app.flows import runner
from app.runtime.ingest_jobs import BATCH_MAX, flow_steps_after, free_flow_steps
from app.transactions import retry_when_locked
from jobs import app_context

log = logging.getLogger(__name__)


def run_flow(conversation_id: int, message_id: int | None = None) -> dict | None:
    """Intent, automation and routing for the conversation's newest inbound message.

    Enqueued by ingest after it commits the message (job id ``flow-message-<message id>``,
    `app.runtime.ingest_jobs.flow_jobs`). Automatic mail it queues is enqueued on the `send` queue
    after this commit. Safe to run twice: a message runs through a flow once. With `message_id`, the
    flow steps still owed for later messages are drained after it, as `run_flows` does.
    """
    with app_context():
        if message_id is None:
            run = retry_when_locked(_run_and_commit, conversation_id, message_id)
        else:
            run = retry_when_locked(_run_many_and_commit, [[conversation_id, message_id]])["runs"][0]
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

    After its own steps the job drains, up to `BATCH_MAX` steps in all, the steps still owed for
    later messages (`flow_steps_after`): under a steady trickle each ingest job queues a flow job of
    one or two steps, and the one that runs first takes those queued behind it into its commit
    (their jobs find them done). Returns how many of its own steps ran (or had run before) and
    failed, and how many it drained.
    """
    with app_context():
        outcome = retry_when_locked(_run_many_and_commit, steps)
        return {"ran": outcome["ran"], "failed": outcome["failed"], "drained": outcome["drained"]}


def _run_and_commit(conversation_id: int, message_id: int | None):
    begin_writing()
    run = runner.run_flow(conversation_id, message_id)
    db.session.commit()
    return run


def _run_many_and_commit(steps: list[list[int]]) -> dict:
    """Run `steps`, then drain the steps owed after them, each in a savepoint; one commit. The runs of
    `steps` (None where a step failed, had nothing to run, or is another job's at the moment) and the
    counts."""
    begin_writing()
    free = {message_id for _conversation_id, message_id in free_flow_steps(steps)}
    runs = [_run_step(conversation_id, message_id) if message_id in free else (None, "taken")
            for conversation_id, message_id in steps]
    last = max(message_id for _conversation_id, message_id in steps)
    drained = [_run_step(conversation_id, message_id)
               for conversation_id, message_id in flow_steps_after(last, BATCH_MAX - len(steps))]
    db.session.commit()
    return {"runs": [run for run, _outcome in runs], "ran": sum(1 for _run, outcome in runs if outcome == "ran"),
            "failed": sum(1 for _run, outcome in runs if outcome == "failed"),
            "drained": sum(1 for _run, outcome in drained if outcome == "ran")}


def _run_step(conversation_id: int, message_id: int):
    """One message's flow in its own savepoint: its run (or None) and "ran" (or had run before), "taken"
    (another worker stored its run a moment ago) or "failed" (rolled back alone and logged; the step
    stays owed, for cron's sweep)."""
    savepoint = begin_nested()
    try:
        run = runner.run_flow(conversation_id, message_id)
        savepoint.commit()
        return run, "ran"
    except OperationalError:
        raise  # the database itself (locked, gone): the whole batch is retried or fails
    except IntegrityError:
        savepoint.rollback()
        return None, "taken"
    except Exception:  # noqa: BLE001 - one message's failure must not cost the others their run
        savepoint.rollback()
        log.exception("flow of message %s (conversation %s) failed; cron's sweep queues it again",
                      message_id, conversation_id)
        return None, "failed"
