"""Thin RQ entry points: take ids, open a fresh app context, call one service, commit.

Workers run `flask worker`, which hands its app to `use_app` before forking, so a
job costs one app context, not one app. A job run outside `flask worker` (tests,
`rq worker` started by hand) builds the app on first use.
"""
from __future__ import annotations

import os
from contextlib import contextmanager

_app = None
_pid = None


def use_app(app) -> None:
    global _app, _pid
    _app, _pid = app, os.getpid()


@contextmanager
def app_context():
    """A fresh app context for one job; the DB session is removed afterwards."""
    global _app, _pid
    if _app is None:
        from app import create_app

        use_app(create_app())
    from app.extensions import db

    with _app.app_context():
        if _pid != os.getpid():
            # A forked work horse must not share the parent's pooled connections.
            db.engine.dispose(close=False)
            _pid = os.getpid()
        try:
            yield _app
        finally:
            db.session.remove()
