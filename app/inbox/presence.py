"""Presence: who else has a conversation open, and who is replying, kept in Redis.

Each open conversation page reports every few seconds (`touch`), saying whether its
agent has a composer open. An entry older than `PRESENCE_SECONDS` no longer counts,
so a closed tab disappears by itself. Presence is a courtesy: when Redis is down the
workspace works on and shows nobody (and logs it).
"""
from __future__ import annotations

import json
import logging
import time

from flask import current_app
from redis.exceptions import RedisError

from app.queues import redis_connection

log = logging.getLogger(__name__)


def _key(conversation_id: int) -> str:
    return f"presence:conversation:{conversation_id}"


def touch(conversation_id: int, user_id: int, name: str, replying: bool) -> None:
    ttl = current_app.config["PRESENCE_SECONDS"]
    try:
        r = redis_connection(timeout=1.0)
        pipe = r.pipeline()
        pipe.hset(_key(conversation_id), str(user_id),
                  json.dumps({"name": name, "replying": bool(replying), "at": time.time()}))
        pipe.expire(_key(conversation_id), ttl * 2)
        pipe.execute()
    except RedisError as exc:
        log.warning("presence not recorded: %s", exc)


def leave(conversation_id: int, user_id: int) -> None:
    try:
        redis_connection(timeout=1.0).hdel(_key(conversation_id), str(user_id))
    except RedisError as exc:
        log.warning("presence not cleared: %s", exc)


def others(conversation_id: int, user_id: int) -> list[dict]:
    """The other users present, [{"name", "replying"}], replying ones first."""
    return present_in([conversation_id], user_id).get(conversation_id, [])


def present_in(conversation_ids: list[int], user_id: int) -> dict[int, list[dict]]:
    """`others()` for many conversations in one round trip (the inbox rows); only non-empty ones."""
    if not conversation_ids:
        return {}
    try:
        pipe = redis_connection(timeout=1.0).pipeline(transaction=False)
        for cid in conversation_ids:
            pipe.hgetall(_key(cid))
        results = pipe.execute()
    except RedisError as exc:
        log.warning("presence not read: %s", exc)
        return {}
    out = {}
    for cid, entries in zip(conversation_ids, results):
        people = _fresh(entries, user_id)
        if people:
            out[cid] = people
    return out


def _fresh(entries: dict, user_id: int) -> list[dict]:
    ttl = current_app.config["PRESENCE_SECONDS"]
    now = time.time()
    out = []
    for uid, raw in entries.items():
        if int(uid) == user_id:
            continue
        try:
            entry = json.loads(raw)
        except ValueError:
            continue
        if now - entry.get("at", 0) <= ttl:
            out.append({"name": entry.get("name", ""), "replying": bool(entry.get("replying"))})
    return sorted(out, key=lambda e: (not e["replying"], e["name"]))
