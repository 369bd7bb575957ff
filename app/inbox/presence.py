"""Presence: who else has a conversation open, and who is replying, kept in Redis.

Each open conversation page reports every few seconds (`touch`), saying whether its
agent has a composer open. An entry older than `PRESENCE_SECONDS` no longer counts,
so a closed tab disappears by itself. Presence is a courtesy: when Redis is down the
workspace works on and shows nobody (and logs it).

The inbox asks about a whole page of conversations on every load and poll, and on almost
every one of them nobody else is there. So besides each conversation's hash, Redis keeps
one sorted set of the conversations touched lately (`ACTIVE_KEY`, scored by time), and each
process keeps a snapshot of it for `SNAPSHOT_SECONDS`: a page whose conversations are not in
the snapshot needs no Redis command at all (a round trip would be a large share of the inbox
page's time). Another process's agent shows up within that second; this process's own
`touch` and `leave` take effect at once. The conversation page's own panel (`others`)
always asks Redis.
"""
from __future__ import annotations

import json
import logging
import time

from flask import current_app
from redis.exceptions import RedisError

from app.queues import redis_connection

log = logging.getLogger(__name__)


#: Sorted set of the conversations touched lately (member: the id, score: the time of the touch).
ACTIVE_KEY = "presence:active"
#: How long a process trusts its copy of `ACTIVE_KEY` (seconds).
SNAPSHOT_SECONDS = 1.0
_snapshot: dict = {}  # Redis client -> (monotonic time read, frozenset of conversation ids)


def _key(conversation_id: int) -> str:
    return f"presence:conversation:{conversation_id}"


def _active(r, ttl: int) -> frozenset[int]:
    """The conversations someone touched in the last `ttl` seconds, as of at most
    `SNAPSHOT_SECONDS` ago."""
    now = time.monotonic()
    held = _snapshot.get(r)
    if held is not None and now - held[0] < SNAPSHOT_SECONDS:
        return held[1]
    ids = frozenset(int(m) for m in r.zrangebyscore(ACTIVE_KEY, time.time() - ttl, "+inf"))
    _snapshot[r] = (now, ids)
    return ids


def touch(conversation_id: int, user_id: int, name: str, replying: bool) -> None:
    ttl = current_app.config["PRESENCE_SECONDS"]
    try:
        r = redis_connection(timeout=1.0)
        pipe = r.pipeline()
        pipe.hset(_key(conversation_id), str(user_id),
                  json.dumps({"name": name, "replying": bool(replying), "at": time.time()}))
        pipe.expire(_key(conversation_id), ttl * 2)
        now = time.time()
        pipe.zadd(ACTIVE_KEY, {str(conversation_id): now})
        pipe.zremrangebyscore(ACTIVE_KEY, "-inf", now - ttl * 2)  # keeps the set as small as the hashes
        pipe.execute()
        _snapshot.pop(r, None)
    except RedisError as exc:
        log.warning("presence not recorded: %s", exc)


def leave(conversation_id: int, user_id: int) -> None:
    try:
        r = redis_connection(timeout=1.0)
        r.hdel(_key(conversation_id), str(user_id))
        _snapshot.pop(r, None)  # the id stays in ACTIVE_KEY until it ages out: its hash is read, and empty
    except RedisError as exc:
        log.warning("presence not cleared: %s", exc)


def others(conversation_id: int, user_id: int) -> list[dict]:
    """The other users present, [{"name", "replying"}], replying ones first (asked of Redis
    now, not of the snapshot)."""
    return present_in([conversation_id], user_id, fresh=True).get(conversation_id, [])


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


def present_in(conversation_ids: list[int], user_id: int, fresh: bool = False) -> dict[int, list[dict]]:
    """`others()` for many conversations (the inbox rows); only non-empty ones. At most one round
    trip and one command, and none when the snapshot of `ACTIVE_KEY` has none of them (unless
    `fresh`)."""
    if not conversation_ids:
        return {}
    try:
        r = redis_connection(timeout=1.0)
        if not fresh:
            active = _active(r, current_app.config["PRESENCE_SECONDS"])
            conversation_ids = [cid for cid in conversation_ids if cid in active]
            if not conversation_ids:
                return {}
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
