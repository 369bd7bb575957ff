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


#: HGETALL of every key given, in one command; answers [index, entries, ...] for the non-empty ones
#: only (an inbox page asks for 50 conversations, and usually nobody is in any of them).
_PRESENT_IN = """
local out = {}
for i, key in ipairs(KEYS) do
  local entries = redis.call('HGETALL', key)
  if #entries > 0 then
    out[#out + 1] = i
    out[#out + 1] = entries
  end
end
return out
"""
_scripts: dict = {}  # Redis client -> its registered script (EVALSHA, loaded again if Redis forgot it)


def present_in(conversation_ids: list[int], user_id: int) -> dict[int, list[dict]]:
    """`others()` for many conversations in one round trip and one command (the inbox rows);
    only non-empty ones."""
    if not conversation_ids:
        return {}
    try:
        r = redis_connection(timeout=1.0)
        script = _scripts.get(r)
        if script is None:
            script = _scripts[r] = r.register_script(_PRESENT_IN)
        reply = script(keys=[_key(cid) for cid in conversation_ids])
    except RedisError as exc:
        log.warning("presence not read: %s", exc)
        return {}
    out = {}
    for index, flat in zip(reply[::2], reply[1::2]):
        entries = dict(zip(flat[::2], flat[1::2]))
        people = _fresh(entries, user_id)
        if people:
            out[conversation_ids[index - 1]] = people
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
