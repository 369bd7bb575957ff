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
* service levels: at-risk and overdue notices to the assigned agent, once each (`app.runtime.sla`).
* the queues' timed rules and alert rules: one job each under a fixed id (`jobs.escalation`); each
  step is claimed in the database (`app.flows.timers`, `app.flows.alerts`);
* SQLite: the search index's segments merged into one, hourly (`app.inbox.search.merge_index`).
"""
from __future__ import annotations

from collections.abc import Callable

from app.inbox.search import enqueue_index_merge
from app.ops.services import record_cron_tick
from app.queues import enqueue, redis_connection
from app.runtime.dkim import enqueue_dkim_rechecks
from app.runtime.outbound import enqueue_due_messages, enqueue_due_send_tests
from app.runtime.poll import requeue_stale_flows, requeue_stale_pending, schedule_due_polls
from app.runtime.sla import notify_due
from app.runtime.snooze import wake_due_snoozes


def enqueue_escalations() -> None:
    """The timed rules and the alert rules, one job each at a time (docs/escalation.md)."""
    enqueue("flows", "jobs.escalation.run_timers", job_id="escalation-timers")
    enqueue("flows", "jobs.escalation.run_alerts", job_id="escalation-alerts")


#: Functions called on every tick; each decides itself what is due.
PERIODIC: list[Callable[[], object]] = [schedule_due_polls, requeue_stale_pending, requeue_stale_flows,
                                        enqueue_due_messages, enqueue_due_send_tests, enqueue_dkim_rechecks,
                                        wake_due_snoozes, notify_due, enqueue_escalations, enqueue_index_merge]


def tick() -> None:
    for task in PERIODIC:
        task()
    record_cron_tick(redis_connection())
