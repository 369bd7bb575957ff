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
"""
from __future__ import annotations

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

# Delete leases (and their heartbeats) that are still ours.
_RELEASE = """
local n = #KEYS / 2
for i = 1, n do
  if redis.call('GET', KEYS[i]) == ARGV[1] then
    redis.call('DEL', KEYS[i], KEYS[n + i])
  end
end
return 0
"""


def lease_name(address_id: int) -> str:
    return f"pigeonhole:idle-lease:{address_id}"


def unsupported_name(address_id: int) -> str:
    return f"pigeonhole:idle-unsupported:{address_id}"


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

    def renew(self, held: list[int], healthy: set[int]) -> set[int]:
        """Extend the leases of `held` and the heartbeats of `healthy`; returns the ids lost to another owner."""
        if not held:
            return set()
        kept = self._renew(keys=[lease_name(i) for i in held], args=[self.owner, self.lease_ms])
        lost = {address_id for address_id, ok in zip(held, kept) if not ok}
        pipe = self.redis.pipeline(transaction=False)
        for address_id in held:
            if address_id in healthy and address_id not in lost:
                pipe.set(idle_heartbeat_name(address_id), self.owner, px=self.lease_ms)
            elif address_id not in lost:
                pipe.delete(idle_heartbeat_name(address_id))
        pipe.execute()
        return lost

    def release(self, address_ids: list[int]) -> None:
        """Give leases back (and drop their heartbeats) at once, so another process may take them."""
        if address_ids:
            self._release(keys=[lease_name(i) for i in address_ids] + [idle_heartbeat_name(i) for i in address_ids],
                          args=[self.owner])

    def mark_unsupported(self, address_id: int, fingerprint: str, seconds: int) -> None:
        self.redis.set(unsupported_name(address_id), fingerprint, ex=max(int(seconds), 1))

    def unsupported(self, address_ids: list[int]) -> dict[int, str]:
        """The "no IDLE" marks of `address_ids`: id -> the settings fingerprint it was found with."""
        if not address_ids:
            return {}
        values = self.redis.mget([unsupported_name(i) for i in address_ids])
        return {address_id: value.decode() for address_id, value in zip(address_ids, values) if value is not None}
