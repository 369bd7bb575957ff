"""Factories as callables with unique sequences: `make_user(role="admin")`."""
from __future__ import annotations

import itertools

from app.auth.services import create_user
from app.extensions import db
from app.models.auth import Queue

_seq = itertools.count(1)
PASSWORD = "correct horse battery staple"


def make_user(role: str = "agent", email: str | None = None, password: str = PASSWORD, name: str = ""):
    n = next(_seq)
    user = create_user(email or f"user{n}@example.test", password, role, name or f"User {n}")
    db.session.commit()
    return user


def make_queue(name: str | None = None, members=()):
    queue = Queue(name=name or f"Queue {next(_seq)}", members=list(members))
    db.session.add(queue)
    db.session.commit()
    return queue
