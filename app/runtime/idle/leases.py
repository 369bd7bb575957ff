"""Who holds which mailbox's IDLE connection: Redis leases, heartbeats and "no IDLE here" marks.

Every `flask mail idle` process has an owner token. A mailbox is held by the process
whose token is in `pigeonhole:idle-lease:{id}`; the key expires `IDLE_LEASE_SECONDS`
after the holder last renewed it, so the mailboxes of a killed process are taken
over by another within that time, and a process that stops cleanly gives its
mailboxes back at once. Renewal is one script call for all of a process's mailboxes.

While a held mailbox's IDLE connection is healthy, the holder keeps
`idle_heartbeat_name(id)` alive (same lifetime): cron then polls that mailbox only as
a safety net (`app.runtime.poll.schedule_due_polls`).

A server without the IDLE capability leaves `pigeonhole:idle-unsupported:{id}` (the
mailbox's settings fingerprint) for `IDLE_RECHECK_SECONDS`, so no process asks it
again until then, or until the admin publishes other server settings.

With each renewal the holder also writes what its watcher is doing to
`pigeonhole:idle-state:{id}` (a hash with the same lifetime: since when the connection
idles, the last EXISTS, the last re-issue of IDLE, the last error). `idle_statuses()`
reads leases, heartbeats, marks and these hashes for Ops › Inbound mail.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from redis import Redis

from app.runtime.poll import idle_heartbeat_name

# Keep the lease if it is ours, or take it back if it is gone (Redis restarted); 0 when another holds it.
_RENEW = """
local out = {}
for i, key in ipairs(KEYS) do
  local holder = redis.call('GET', key)
  if holder == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[2])
    out[i] = 1
  elseif not holder then
    redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
"""

# Delete leases (and their heartbeats and state hashes) that are still ours.
_RELEASE = """
local n = #KEYS / 3
for i = 1, n do
  if redis.call('GET', KEYS[i]) == ARGV[1] then
    redis.call('DEL', KEYS[i], KEYS[n + i], KEYS[2 * n + i])
  end
end
return 0
"""


def lease_name(address_id: int) -> str:
    return f"pigeonhole:idle-lease:{address_id}"


def unsupported_name(address_id: int) -> str:
    return f"pigeonhole:idle-unsupported:{address_id}"


def state_name(address_id: int) -> str:
    return f"pigeonhole:idle-state:{address_id}"


class Leases:
    """The leases of one owner (one `flask mail idle` process) on one Redis."""

    def __init__(self, redis: Redis, owner: str, lease_seconds: float) -> None:
        self.redis = redis
        self.owner = owner
        self.lease_ms = max(int(lease_seconds * 1000), 1000)
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    def acquire(self, address_ids: list[int]) -> list[int]:
        """Take the free leases among `address_ids`; returns the ids now held."""
        if not address_ids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for address_id in address_ids:
            pipe.set(lease_name(address_id), self.owner, nx=True, px=self.lease_ms)
        return [address_id for address_id, ok in zip(address_ids, pipe.execute()) if ok]

    def renew(self, held: list[int], healthy: set[int], states: dict[int, dict[str, str]] | None = None) -> set[int]:
        """Extend the leases of `held` and the heartbeats of `healthy`, and write the `states` of the watchers
        (field -> text, see `idle_statuses`); returns the ids lost to another owner."""
        if not held:
            return set()
        kept = self._renew(keys=[lease_name(i) for i in held], args=[self.owner, self.lease_ms])
        lost = {address_id for address_id, ok in zip(held, kept) if not ok}
        pipe = self.redis.pipeline(transaction=False)
        for address_id in held:
            if address_id in lost:
                continue
            if address_id in healthy:
                pipe.set(idle_heartbeat_name(address_id), self.owner, px=self.lease_ms)
            else:
                pipe.delete(idle_heartbeat_name(address_id))
            if states and address_id in states:
                key = state_name(address_id)
                pipe.delete(key)
                pipe.hset(key, mapping={"owner": self.owner, **states[address_id]})
                pipe.pexpire(key, self.lease_ms)
        pipe.execute()
        return lost

    def release(self, address_ids: list[int]) -> None:
        """Give leases back (and drop their heartbeats) at once, so another process may take them."""
        if address_ids:
            self._release(keys=[lease_name(i) for i in address_ids] + [idle_heartbeat_name(i) for i in address_ids]
                          + [state_name(i) for i in address_ids], args=[self.owner])

    def mark_unsupported(self, address_id: int, fingerprint: str, seconds: int) -> None:
        self.redis.set(unsupported_name(address_id), fingerprint, ex=max(int(seconds), 1))

    def unsupported(self, address_ids: list[int]) -> dict[int, str]:
        """The "no IDLE" marks of `address_ids`: id -> the settings fingerprint it was found with."""
        if not address_ids:
            return {}
        values = self.redis.mget([unsupported_name(i) for i in address_ids])
        return {address_id: value.decode() for address_id, value in zip(address_ids, values) if value is not None}


# --- reading, for Ops › Inbound mail ------------------------------------------------------------

@dataclass(frozen=True)
class IdleStatus:
    """What `flask mail idle` does with one IMAP mailbox now.

    `mode`: "idle" (held, the connection idles: push works), "connecting" (held, not idling
    yet or reconnecting after `last_error`), "polling only" (the server offers no IDLE),
    or "not held" (no `flask mail idle` holds it: polling alone).
    """

    mode: str
    holder: str | None = None
    host: str | None = None
    pid: int | None = None
    since: datetime | None = None
    last_exists: datetime | None = None
    last_reissue: datetime | None = None
    last_error: str | None = None


def _moment(value: bytes | None) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(value), timezone.utc) if value else None
    except ValueError:
        return None


def _host_and_pid(owner: str) -> tuple[str | None, int | None]:
    """An owner token is "host:pid:random" (`IdleSupervisor`); anything else shows as it is."""
    parts = owner.rsplit(":", 2)
    if len(parts) == 3 and parts[1].isdigit():
        return parts[0], int(parts[1])
    return owner, None


def idle_statuses(redis: Redis, address_ids: list[int]) -> dict[int, IdleStatus]:
    """The `IdleStatus` of each of `address_ids`, read in one round trip (leases, heartbeats, marks, states)."""
    if not address_ids:
        return {}
    pipe = redis.pipeline(transaction=False)
    for address_id in address_ids:
        pipe.get(lease_name(address_id))
        pipe.exists(idle_heartbeat_name(address_id))
        pipe.exists(unsupported_name(address_id))
        pipe.hgetall(state_name(address_id))
    answers = pipe.execute()
    statuses = {}
    for n, address_id in enumerate(address_ids):
        lease, beating, unsupported, state = answers[4 * n:4 * n + 4]
        if lease is None:
            statuses[address_id] = IdleStatus("polling only" if unsupported else "not held")
            continue
        holder = lease.decode()
        host, pid = _host_and_pid(holder)
        state = state if state.get(b"owner", b"").decode() == holder else {}  # a previous holder's words: not these
        error = state.get(b"last_error")
        statuses[address_id] = IdleStatus(
            "idle" if beating else "connecting", holder, host, pid, since=_moment(state.get(b"since")),
            last_exists=_moment(state.get(b"last_exists")), last_reissue=_moment(state.get(b"last_reissue")),
            last_error=error.decode() if error else None)
    return statuses
