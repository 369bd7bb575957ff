"""A burst's jobs: arrivals ingested in batches (drained past the job's own rows), flow steps run in batches,
each message in its own savepoint, nothing lost and nothing done twice."""
from __future__ import annotations

import subprocess

import pytest

from rq import SimpleWorker
from rq.serializers import JSONSerializer
from sqlalchemy import func, select

import jobs
from app.flows import intents
from app.models.flows import FlowRun
from app.models.inbound import InboundRaw
from app.models.inbox import Conversation, Message
from app.queues import enqueue_jobs, get_queue, redis_connection
from app.runtime.ingest import ingest_pending_many
from app.runtime.ingest_jobs import BATCH_MAX, flow_jobs, ingest_jobs, stale_flow_steps
from app.runtime.ingress import Arrival, store_group
from jobs.flows import run_flows
from tests.mail.conftest import make_address, message
from tests.subprocess_env import flask_cmd, flask_env

DEMO = "support@mail.pigeonhole.test"


def arrive(app, address_id: int, subjects: list[str]) -> list[int]:
    """Arrivals stored as the ingress stores them (staged raw bytes, pending rows, one commit); their row ids."""
    ids = store_group(app, [Arrival("carla@example.com", [address_id], message(subject=s, sender=f"c{i}@example.com"))
                            for i, s in enumerate(subjects)])
    return [row_ids[0] for row_ids in ids]


def work(app, queue: str) -> None:
    jobs.use_app(app)
    SimpleWorker([get_queue(queue)], connection=redis_connection(), serializer=JSONSerializer).work(burst=True)


def count(db, model) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model))


def test_the_job_ids_of_a_batch_are_deterministic_and_one_row_keeps_its_own():
    assert ingest_jobs([7]) == [("jobs.ingest.ingest_raw", (7,), "ingest-raw-7")]
    many = ingest_jobs(list(range(1, BATCH_MAX + 3)))
    assert [job_id for _f, _a, job_id in many] == [f"ingest-raws-1-{BATCH_MAX}", f"ingest-raws-{BATCH_MAX + 1}-{BATCH_MAX + 2}"]
    assert many[0][1] == (list(range(1, BATCH_MAX + 1)),)
    assert flow_jobs([(3, 9)]) == [("jobs.flows.run_flow", (3, 9), "flow-message-9")]
    assert flow_jobs([(3, 9), (4, 10)]) == [("jobs.flows.run_flows", ([[3, 9], [4, 10]],), "flow-messages-9-10")]


def test_a_burst_is_ingested_and_routed_in_batches_by_a_real_worker_once_each(app, db, dns, tmp_path):
    address = make_address(DEMO)
    first = arrive(app, address.id, [f"Parcel {i}" for i in range(3)])
    later = arrive(app, address.id, [f"Refund {i}" for i in range(4)])  # its own job waits behind the first
    with app.app_context():
        enqueue_jobs("ingest", ingest_jobs(first) + ingest_jobs(later))
        assert get_queue("ingest").job_ids == [f"ingest-raws-{first[0]}-{first[-1]}",
                                                f"ingest-raws-{later[0]}-{later[-1]}"]
    run = subprocess.run(flask_cmd("worker", "ingest", "flows", "--burst"), env=flask_env(app, tmp_path),
                         capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr
    db.session.expire_all()
    assert [r.status for r in db.session.scalars(select(InboundRaw).order_by(InboundRaw.id))] == ["created"] * 7
    assert count(db, Conversation) == 7 and count(db, Message) == 7
    # The first job drained the later arrivals too: one batch of flow steps, and each message ran once.
    assert "flow-messages-" in run.stderr and "jobs.flows.run_flow(" not in run.stderr
    runs = db.session.scalars(select(FlowRun.message_id)).all()
    assert sorted(runs) == sorted(db.session.scalars(select(Message.id))) and len(runs) == 7
    assert all(c.queue_id is not None for c in db.session.scalars(select(Conversation)))


def test_draining_takes_the_arrivals_after_its_own_never_the_ones_before(app, db, dns):
    address = make_address(DEMO)
    ids = arrive(app, address.id, [f"Message {i}" for i in range(6)])
    results = ingest_pending_many([ids[2]], drain=3)
    assert [r.raw_id for r in results] == ids[2:5]
    db.session.expire_all()
    statuses = [r.status for r in db.session.scalars(select(InboundRaw).order_by(InboundRaw.id))]
    assert statuses == ["pending", "pending", "created", "created", "created", "pending"]
    assert ingest_pending_many(ids[2:5]) == []  # done rows are skipped: run again, nothing happens twice
    assert count(db, Message) == 3


def test_a_message_that_cannot_be_read_is_kept_with_its_error_and_the_batch_goes_on(app, db, dns):
    address = make_address(DEMO)
    ids = arrive(app, address.id, ["First", "Second", "Third"])
    lost = db.session.get(InboundRaw, ids[1])
    lost.raw_sha256 = "0" * 64  # its bytes are nowhere
    db.session.commit()
    with app.app_context():
        enqueue_jobs("ingest", ingest_jobs(ids))
    work(app, "ingest")
    db.session.expire_all()
    rows = db.session.scalars(select(InboundRaw).order_by(InboundRaw.id)).all()
    assert [r.status for r in rows] == ["created", "stored_with_error", "created"]
    assert "raw message unreadable" in rows[1].error
    assert sorted(db.session.scalars(select(Conversation.subject))) == ["First", "Third"]


def test_a_flow_that_fails_is_rolled_back_alone_and_left_to_the_sweep(app, db, dns, monkeypatch):
    address = make_address(DEMO)
    ids = arrive(app, address.id, ["Parcel late", "Broken one", "Refund please"])
    ingest_pending_many(ids)
    steps = [[m.conversation_id, m.id] for m in db.session.scalars(select(Message).order_by(Message.id))]
    broken = steps[1][1]
    real = intents.classify

    def classify(subject, body):
        if subject == "Broken one":
            raise RuntimeError("the classifier fell over")
        return real(subject, body)

    monkeypatch.setattr(intents, "classify", classify)
    jobs.use_app(app)  # the job's app context on this test's app (as `flask worker` hands its app over)
    assert run_flows(steps) == {"ran": 2, "failed": 1, "drained": 0}
    db.session.expire_all()
    assert sorted(db.session.scalars(select(FlowRun.message_id))) == [steps[0][1], steps[2][1]]
    assert db.session.get(Conversation, steps[1][0]).queue_id is None  # nothing of its run was kept
    assert [m for _c, m in stale_flow_steps(0, 24)] == [broken]  # cron's sweep queues it again on its own
    monkeypatch.setattr(intents, "classify", real)
    assert run_flows(steps) == {"ran": 3, "failed": 0, "drained": 0}  # the others return their earlier run: nothing twice
    assert count(db, FlowRun) == 3


def test_a_batch_that_runs_out_of_time_before_the_lock_leaves_the_rest_to_jobs_of_their_own(app, db, dns, monkeypatch):
    """A slow DNS must not make a batch outlast RQ's job timeout (and fail every time cron runs it again)."""
    from app.runtime import ingest as ingest_module

    monkeypatch.setattr(ingest_module, "PREPARE_SECONDS", -1.0)  # the budget is spent after the first row
    address = make_address(DEMO)
    ids = arrive(app, address.id, ["One", "Two", "Three", "Four"])
    assert [r.raw_id for r in ingest_pending_many(ids[:3], drain=4)] == [ids[0]]
    with app.app_context():  # its own rows not reached: one job; the drained fourth has its own job already
        # (and, first, the job that the lock's holder queues for the address's pending rows once it let go)
        assert get_queue("ingest").job_ids == [f"ingest-raws-{ids[1]}-{ids[3]}", f"ingest-raws-{ids[1]}-{ids[2]}"]
    monkeypatch.setattr(ingest_module, "PREPARE_SECONDS", 30.0)
    work(app, "ingest")  # that job drains the fourth too
    db.session.expire_all()
    assert [r.status for r in db.session.scalars(select(InboundRaw).order_by(InboundRaw.id))] == ["created"] * 4
    assert count(db, Message) == 4


def test_a_flow_job_drains_the_steps_queued_behind_it(app, db, dns):
    """Under a steady trickle each ingest job queues a flow job of its own; the first to run takes the later
    steps into its commit, and their own jobs find them done (before: one flow job, one commit per message)."""
    from jobs.flows import run_flow

    address = make_address(DEMO)
    ingest_pending_many(arrive(app, address.id, ["Parcel late", "Broken kettle", "Refund please"]))
    steps = [[m.conversation_id, m.id] for m in db.session.scalars(select(Message).order_by(Message.id))]
    jobs.use_app(app)
    first = run_flow(*steps[0])
    assert first is not None and first["outcome"] == "no_flow"  # no flow published here: still its step, done
    db.session.expire_all()
    assert sorted(db.session.scalars(select(FlowRun.message_id))) == [m for _c, m in steps]
    assert stale_flow_steps(0, 24) == []
    assert run_flows(steps[1:]) == {"ran": 2, "failed": 0, "drained": 0}  # their own job: done already
    assert count(db, FlowRun) == 3


@pytest.mark.postgres
def test_a_step_another_flow_job_holds_is_left_to_it_not_waited_for(app, db, dns):
    """PostgreSQL: flow jobs running at the same moment take different steps (`FOR UPDATE SKIP LOCKED`): a step
    whose message another transaction holds is neither drained nor waited for, even when it is the job's own."""
    address = make_address(DEMO)
    ingest_pending_many(arrive(app, address.id, ["One", "Two", "Three", "Four"]))
    steps = [[m.conversation_id, m.id] for m in db.session.scalars(select(Message).order_by(Message.id))]
    db.session.commit()
    jobs.use_app(app)
    other = db.engine.connect()  # another flow job's transaction, holding the second and third steps
    try:
        other.execute(select(Message.id).where(Message.id.in_([steps[1][1], steps[2][1]])).with_for_update())
        assert run_flows(steps[:2]) == {"ran": 1, "failed": 0, "drained": 1}  # the first, and the fourth drained
        db.session.expire_all()
        assert sorted(db.session.scalars(select(FlowRun.message_id))) == [steps[0][1], steps[3][1]]
    finally:
        other.rollback()
        other.close()
    assert run_flows(steps[1:3]) == {"ran": 2, "failed": 0, "drained": 0}  # once free, they run
    assert count(db, FlowRun) == 4


def test_rows_whose_address_lock_is_taken_are_left_to_its_holder_not_waited_for(app, db, dns):
    """A second worker's ingest job does not wait for the address's lock (before: it waited, up to
    INGEST_LOCK_WAIT_SECONDS, instead of running flow steps); the holder queues a job for the rows left."""
    from jobs.ingest import ingest_raw

    app.config["INGEST_LOCK_WAIT_SECONDS"] = 30
    address = make_address(DEMO)
    first, second = arrive(app, address.id, ["Left to the holder", "The holder's own"])
    get_queue("ingest").empty()  # the ingress's own jobs: this test plays them by hand
    connection = redis_connection()
    connection.set(f"pigeonhole:ingest-address:{address.id}", "another worker", ex=60)
    jobs.use_app(app)
    assert ingest_raw(first) is None
    db.session.expire_all()
    assert db.session.get(InboundRaw, first).status == "pending"
    assert connection.get(f"pigeonhole:ingest-address:{address.id}") == b"another worker"
    connection.delete(f"pigeonhole:ingest-address:{address.id}")  # the holder lets it go, then ...
    assert [r.status for r in ingest_pending_many([second])] == ["created"]
    assert get_queue("ingest").job_ids == [f"ingest-raw-{first}"]  # ... queues a job for the row left to it
    work(app, "ingest")
    db.session.expire_all()
    assert db.session.get(InboundRaw, first).status == "created"
    assert sorted(db.session.scalars(select(Conversation.subject))) == ["Left to the holder", "The holder's own"]


def test_rows_left_by_a_job_still_finishing_get_a_job_of_their_own(app, db, dns):
    """The job that left the rows may still be running (RQ's bookkeeping after it) when the holder lets the
    lock go: a job of the same id then exists but has looked already, so one more is queued (before: the
    duplicate id was taken for the job, and the rows waited for cron's sweep)."""
    from rq.job import Job

    address = make_address(DEMO)
    first, second = arrive(app, address.id, ["Left while its job was finishing", "The holder's own"])
    queue = get_queue("ingest")
    queue.empty()
    running = queue.enqueue("jobs.ingest.ingest_raw", first, job_id=f"ingest-raw-{first}")
    queue.remove(running)
    Job.fetch(running.id, connection=redis_connection(), serializer=JSONSerializer).set_status("started")
    assert [r.status for r in ingest_pending_many([second])] == ["created"]
    assert [job_id.startswith(f"ingest-raw-{first}-after-") for job_id in queue.job_ids] == [True]
    work(app, "ingest")
    db.session.expire_all()
    assert db.session.get(InboundRaw, first).status == "created"
