"""The scheduler's tick: enqueue whatever periodic work is due.

`flask cron` calls `tick()` every few seconds. Each periodic task is a sweep that
reads committed rows and enqueues jobs with deterministic ids, so two cron processes
(or a slow worker) never cause the same work twice, and a job lost with Redis is
enqueued again:

* mailbox polls that are due, and raw arrivals whose ingest job was lost (inbound);
* outgoing messages that are due: retries, jobs lost with Redis, leases of dead workers;
  the same for test emails ("Send test email");
* DKIM keys whose record is not found yet (Pending, Temporary Failure): checked again in a job;
* snoozed conversations whose time has come: open again (`app.runtime.snooze`, a quick UPDATE, no job);
* the queues' timed rules (`app.flows.timers`: each step once per conversation episode, claimed by a
  unique row) and alert rules (`app.flows.alerts`: once per breach, once on recovery).
"""
from __future__ import annotations

from collections.abc import Callable

from app.flows.alerts import evaluate_alerts
from app.flows.timers import run_due_timers
from app.ops.services import record_cron_tick
from app.queues import redis_connection
from app.runtime.dkim import enqueue_dkim_rechecks
from app.runtime.outbound import enqueue_due_messages, enqueue_due_send_tests
from app.runtime.poll import requeue_stale_flows, requeue_stale_pending, schedule_due_polls
from app.runtime.snooze import wake_due_snoozes

#: Functions called on every tick; each decides itself what is due.
PERIODIC: list[Callable[[], object]] = [schedule_due_polls, requeue_stale_pending, requeue_stale_flows,
                                        enqueue_due_messages, enqueue_due_send_tests, enqueue_dkim_rechecks,
                                        wake_due_snoozes, run_due_timers, evaluate_alerts]


def tick() -> None:
    for task in PERIODIC:
        task()
    record_cron_tick(redis_connection())
