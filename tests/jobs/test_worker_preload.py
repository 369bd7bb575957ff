"""`flask worker` loads the intent classifier once per process, and `--processes N` runs N workers."""
from __future__ import annotations

import subprocess

from app.demo.flows import DEMO_INTENTS
from app.flows import intents
from app.models.flows import Intent
from app.models.inbox import Conversation
from app.queues import enqueue
from tests.flow_factories import make_address, make_inbound
from tests.subprocess_env import flask_cmd, flask_env


def _trained_model(db) -> None:
    for name, (description, examples) in DEMO_INTENTS.items():
        db.session.add(Intent(name=name, description=description, examples=list(examples)))
    db.session.flush()
    assert intents.train_and_store(None).trained
    db.session.commit()


def _two_flow_jobs(app, db) -> list:
    address = make_address()
    messages = [make_inbound(address, sender=f"c{i}@example.com", subject="Refund",
                             text="Please refund the payment you took twice from my card") for i in range(2)]
    with app.app_context():
        return [enqueue("flows", "jobs.flows.run_flow", m.conversation_id, m.id, job_id=f"run-flow-{m.id}")
                for m in messages]


def test_two_flow_jobs_in_one_forking_worker_load_the_model_once(app, db, tmp_path):
    """Before: each forked work horse imported numpy and scikit-learn and loaded the model itself."""
    _trained_model(db)
    jobs = _two_flow_jobs(app, db)
    run = subprocess.run(flask_cmd("worker", "flows", "--burst", "--without-scheduler"),
                         env=flask_env(app, tmp_path), capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    for job in jobs:
        job.refresh()
        assert job.get_status() == "finished", run.stderr[-3000:]
    assert run.stderr.count("intent model") == 1 and "loaded in process" in run.stderr, run.stderr[-3000:]
    db.session.expire_all()
    assert {c.intent for c in db.session.query(Conversation)} == {"billing"}


def test_worker_processes_share_the_queues_and_each_loads_nothing_again(app, db, tmp_path):
    _trained_model(db)
    jobs = _two_flow_jobs(app, db)
    run = subprocess.run(flask_cmd("worker", "flows", "--burst", "--simple", "--without-scheduler",
                                   "--processes", "2"),
                         env=flask_env(app, tmp_path), capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    for job in jobs:
        job.refresh()
        assert job.get_status() == "finished", run.stderr[-3000:]
    assert run.stderr.count("loaded in process") == 1, run.stderr[-3000:]
    assert run.stderr.count("Worker rq:worker:") >= 2 or run.stderr.count("Listening on flows") == 2, \
        run.stderr[-3000:]
