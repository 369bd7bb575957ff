"""The scheduler's tick: enqueue whatever periodic work is due.

`flask cron` calls `tick()` every few seconds. Each periodic task enqueues jobs
with deterministic ids, so two cron processes (or a slow worker) never cause the
same work twice. The inbound issue registers mailbox polling here.
"""
from __future__ import annotations

from collections.abc import Callable

from app.ops.services import record_cron_tick
from app.queues import redis_connection

#: Functions called on every tick; each decides itself what is due.
PERIODIC: list[Callable[[], None]] = []


def _inbound_tasks() -> list[Callable[[], None]]:
    from app.runtime.poll import requeue_stale_pending, schedule_due_polls

    return [schedule_due_polls, requeue_stale_pending]


PERIODIC.extend(_inbound_tasks())


def tick() -> None:
    for task in PERIODIC:
        task()
    record_cron_tick(redis_connection())


# Outbound mail: send what is due (retries, jobs lost with Redis, leases of dead workers).
def _enqueue_due_messages() -> None:
    from app.runtime.outbound import enqueue_due_messages

    enqueue_due_messages()


PERIODIC.append(_enqueue_due_messages)
