"""Each agent's event stream (`GET /inbox/events`, server-sent events): the changes they may see.

A workspace page opens one `EventSource` on the stream. The stream subscribes to the changes
announced on Redis (`app.runtime.changes`) and passes on those of conversations the agent may see
(`app.inbox.access`: supervisors and admins all, an agent those of their queues and those assigned to
them, before or after the change) as

    event: change
    data: {"id": 42, "kind": "status", "at": 1733450000.1}

and nothing else: the page then asks for the fragments that changed (`static/inbox.js`), with the
same access checks as any request. A comment line every `LIVE_HEARTBEAT_SECONDS` keeps proxies
from closing a quiet connection; at each, the stream checks that its sign-in still exists and the
user is still active (the queues they are a member of are read again), and ends when not: signing out,
"Sign out everywhere" or deactivation close it within a heartbeat. After `LIVE_MAX_AGE_SECONDS` the
stream ends by itself and the browser opens a new one (`retry:`), so connections recycle across
deployments and workers. A stream holds a thread of its server (scripts/run: gunicorn gthread).
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterator

from flask import Flask, session
from redis.client import PubSub
from redis.exceptions import RedisError
from sqlalchemy import select

from app.extensions import db
from app.inbox.access import member_queue_ids
from app.models.auth import Role, User, UserSession
from app.models._types import utcnow
from app.queues import redis_connection
from app.runtime.changes import CHANNEL, may_hear, parse

log = logging.getLogger(__name__)

#: Milliseconds the browser waits before opening the stream again after it ended.
RETRY_MS = 1000
#: Where Flask-Login's session keeps the sign-in's key (`app.auth.sessions.SESSION_KEY`).
_SESSION_KEY = "_sid"


class SignedOut(Exception):
    """The stream's sign-in no longer exists, or its user was deactivated."""


def sign_in_of_request() -> str | None:
    """The hash of this request's sign-in key, as `user_sessions.key_hash` holds it (None: none)."""
    key = session.get(_SESSION_KEY)
    return hashlib.sha256(key.encode()).hexdigest() if key else None


def audience(user_id: int, key_hash: str | None) -> frozenset[int] | None:
    """The queues whose changes the user may hear (None: all of them, a supervisor or admin).
    Raises `SignedOut` when the sign-in is gone or expired, or the user inactive."""
    user = db.session.get(User, user_id)
    if user is None or not user.active:
        raise SignedOut()
    if key_hash is not None and db.session.scalar(select(UserSession.id).where(
            UserSession.key_hash == key_hash, UserSession.expires_at > utcnow())) is None:
        raise SignedOut()
    if user.has_role(Role.SUPERVISOR):
        return None
    return frozenset(db.session.scalars(member_queue_ids(user)))


def subscribe() -> PubSub:
    """A subscription to the announced changes, confirmed by Redis: every change announced from now on is
    heard (raises `redis.RedisError` when Redis is down or does not confirm within a second)."""
    pubsub = redis_connection().pubsub()
    try:
        pubsub.subscribe(CHANNEL)
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            message = pubsub.get_message(timeout=max(0.0, deadline - time.monotonic()))
            if message is not None and message.get("type") == "subscribe":
                return pubsub
        raise RedisError("the subscription was not confirmed")
    except BaseException:
        pubsub.close()
        raise


def event_stream(app: Flask, pubsub: PubSub, user_id: int, key_hash: str | None,
                 queues: frozenset[int] | None) -> Iterator[str]:
    """The stream's text, chunk by chunk, until its age is up, its user signs out, Redis goes, or the client
    goes (the server's next write fails and closes this generator). Closes `pubsub` at the end."""
    heartbeat = float(app.config["LIVE_HEARTBEAT_SECONDS"])
    start = time.monotonic()
    next_beat, end = start + heartbeat, start + float(app.config["LIVE_MAX_AGE_SECONDS"])
    try:
        yield f"retry: {RETRY_MS}\n: connected\n\n"
        while True:
            now = time.monotonic()
            if now >= end:
                return
            if now >= next_beat:
                with app.app_context():
                    try:
                        queues = audience(user_id, key_hash)
                    except SignedOut:
                        yield "event: signed-out\ndata: {}\n\n"
                        return
                    except Exception:  # noqa: BLE001 - the database is away: end; the browser comes back
                        log.exception("event stream of user %s ended: its sign-in could not be checked", user_id)
                        return
                    finally:
                        db.session.remove()
                yield ": heartbeat\n\n"
                next_beat = now + heartbeat
                continue
            try:
                message = pubsub.get_message(timeout=max(0.0, min(next_beat, end) - now))
            except RedisError:
                return  # Redis went away: the browser opens the stream again (and polls meanwhile)
            if message is None or message.get("type") != "message":
                continue
            event = parse(message["data"])
            if event is not None and may_hear(event, user_id, queues):
                data = {"id": event["id"], "kind": event.get("kind", "change"), "at": event.get("at")}
                yield f"event: change\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
    finally:
        pubsub.close()
