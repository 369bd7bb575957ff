"""Thin RQ entry points: take ids, open a fresh app context, call one service, commit.

Workers run `flask worker`, which hands its app over (`app.queues.use_app_for_jobs`)
before forking, so a job costs one app context, not one app. A job run outside
`flask worker` (tests, `rq worker` started by hand) builds the app on first use.
"""
from __future__ import annotations

import os
from contextlib import contextmanager

from rq import get_current_job

from app import create_app
from app.extensions import db
from app.queues import app_for_jobs, use_app_for_jobs
from app.runtime import metrics

_pid = None


def use_app(app) -> None:
    """Run this process's jobs on `app` (what `flask worker` does; tests call it too)."""
    global _pid
    use_app_for_jobs(app)
    _pid = os.getpid()


@contextmanager
def app_context():
    """A fresh app context for one job; the DB session is removed afterwards."""
    global _pid
    if app_for_jobs() is None:
        use_app(create_app())
    app = app_for_jobs()
    with app.app_context():
        if _pid != os.getpid():
            # A forked work horse must not share the parent's pooled connections.
            db.engine.dispose(close=False)
            _pid = os.getpid()
        metrics.enter_job()  # a work horse's figures go to its worker's files, not a file set per job
        job = get_current_job()
        try:
            yield app
        except BaseException:
            metrics.observe_job(job.origin if job else None, failed=True)
            raise
        else:
            metrics.observe_job(job.origin if job else None, failed=False)
        finally:
            db.session.remove()
