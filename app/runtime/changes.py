"""Live updates of the workspace: "conversation N changed", published on Redis after the commit.

Whoever commits a change that an agent's open page shows (assignment, status, transfer, a new
inbound message, a reply or note, routing by a flow; tags or priority) calls
`publish_change(conversation_id, kind)` before committing. The announcement leaves after the
COMMIT (`app.transactions.on_commit`), never for a rollback, on one Redis pub/sub channel
(`CHANNEL`). Each agent's event stream (`app.inbox.live`) listens there and passes on only what
that agent may see: the announcement names its audience, the conversation's queue and
assignee as they are after the change, plus those it had before (`queue_ids`, `user_ids`:
an agent whose conversation was transferred away hears that it left).

Live updates are a courtesy on top of the pages' polling: when Redis is down the change is
committed all the same, the announcement is logged as lost, and the pages catch up at their
next poll.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable

from redis.exceptions import RedisError

from app.extensions import db
from app.models.inbox import Conversation
from app.queues import redis_connection
from app.transactions import on_commit

log = logging.getLogger(__name__)

#: The Redis pub/sub channel of every announcement (one message: one conversation's change).
CHANNEL = "pigeonhole:changes"
#: What changed, as the pages read it: "message" brings new tiles and moves the row to the top;
#: the others refresh the conversation's panels and its row in place.
KINDS = ("assign", "status", "transfer", "message", "note", "routed", "priority", "tags", "snooze", "merge",
         "change")


def publish_change(conversation_id: int, kind: str = "change", *, queue_ids: Iterable[int | None] = (),
                   user_ids: Iterable[int | None] = ()) -> None:
    """Announce after the current transaction commits that the conversation changed (`kind`, one of
    `KINDS`). The audience is the conversation's queue and assignee as they are now (read when this
    is called, so call it after the change) and the `queue_ids` / `user_ids` it had before."""
    conversation = db.session.get(Conversation, conversation_id)
    queues = {q for q in queue_ids if q is not None}
    users = {u for u in user_ids if u is not None}
    if conversation is not None:
        if conversation.queue_id is not None:
            queues.add(conversation.queue_id)
        if conversation.assignee_id is not None:
            users.add(conversation.assignee_id)
    on_commit(_publish, {"id": conversation_id, "kind": kind if kind in KINDS else "change",
                         "queues": sorted(queues), "users": sorted(users)})


#: Whether the last announcement failed. An outage is logged once, at debug level: `/healthz`, Ops and ingest
#: say Redis is down already, and pages fall back to polling.
_outage = {"down": False}


def _publish(event: dict) -> None:
    event["at"] = time.time()  # when it left, for the bench's delivery times
    try:
        redis_connection(timeout=1.0).publish(CHANNEL, json.dumps(event, separators=(",", ":")))
    except RedisError as exc:
        if not _outage["down"]:
            log.debug("live updates are not announced while Redis is unavailable (%s); pages poll meanwhile", exc)
        _outage["down"] = True
    else:
        _outage["down"] = False


def may_hear(event: dict, user_id: int, queue_ids: frozenset[int] | None) -> bool:
    """Whether a user may hear of `event`: `queue_ids` None means every conversation (supervisors,
    admins); else the queues the user is a member of (`app.inbox.access` says the same in SQL)."""
    if queue_ids is None:
        return True
    return user_id in event.get("users", ()) or any(q in queue_ids for q in event.get("queues", ()))


def parse(data: bytes | str) -> dict | None:
    """An announcement read from `CHANNEL`, or None when it is not one."""
    try:
        event = json.loads(data)
    except (TypeError, ValueError):
        return None
    if not isinstance(event, dict) or not isinstance(event.get("id"), int):
        return None
    return event
