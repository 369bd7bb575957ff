"""`/metrics` in Prometheus's text format, and the timing of every web request.

Two kinds of figures:

- counted by the processes themselves (`app.runtime.metrics`: ingest and send outcomes and
  latencies, jobs done and failed, HTTP request durations), summed over every process by
  prometheus-client's multiprocess mode when `PROMETHEUS_MULTIPROC_DIR` is set;
- read at scrape time from Redis and the database by `StateCollector` (queue depth and oldest job
  age, failed and started jobs, live workers, mailboxes by state, IDLE sessions by mode, messages
  waiting, the cron heartbeat, SLA breaches: conversations past a due time now, and the breaches the
  reports' facts record), so they agree with the database whichever process answers.

`registries()` is what a scrape exposes; Ops › Metrics (`app.ops.figures`) renders the same families
as tables, for people without Prometheus.

Access: with `METRICS_TOKEN` set, a request must carry `Authorization: Bearer <token>`; unset,
`/metrics` answers only to loopback clients. Either way it needs no session.
"""
from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import time

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import REGISTRY
from rq.registry import FailedJobRegistry, StartedJobRegistry
from sqlalchemy import func, select

from app.extensions import db
from app.models.channels import MailboxState
from app.models.inbound import InboundRaw, InboundStatus
from app.models._types import utcnow
from app.models.inbox import Conversation, Message
from app.models.reports import ConversationFacts
from app.ops.services import CRON_HEARTBEAT_KEY
from app.queues import QUEUE_NAMES, get_queue, live_workers, redis_connection
from app.runtime import metrics
from app.runtime.idle import idle_statuses
from app.runtime.live import published_addresses
from app.runtime.outbound.states import IN_PROGRESS
from app.runtime.poll import pollable
from app.runtime.sla import TARGETS, breached_now

log = logging.getLogger(__name__)

bp = Blueprint("metrics", __name__)


def init_app(app: Flask) -> None:
    """Time every request into `pigeonhole_http_request_duration_seconds` and serve `/metrics`."""
    app.before_request(_start_timer)
    app.teardown_request(_observe_request)
    app.register_blueprint(bp)


def _start_timer() -> None:
    g._metrics_started = time.perf_counter()


def _observe_request(_exc) -> None:
    started = g.pop("_metrics_started", None)
    if started is None:
        return
    endpoint = request.url_rule.endpoint if request.url_rule is not None else "none"
    metrics.http_request_duration.labels(endpoint, request.method if request.method in _METHODS else "other") \
        .observe(time.perf_counter() - started)


_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}


def allowed() -> bool:
    """A bearer token that matches `METRICS_TOKEN`; without that setting, a loopback client."""
    token = current_app.config.get("METRICS_TOKEN") or ""
    if token:
        given = request.headers.get("Authorization", "")
        return given.startswith("Bearer ") and hmac.compare_digest(given[7:].encode(), token.encode())
    try:
        return ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        return False


@bp.route("/metrics")
def scrape():
    if not allowed():
        return Response("Forbidden: /metrics needs METRICS_TOKEN as a bearer token, or a loopback client.\n",
                        status=403, mimetype="text/plain")
    body = b"".join(generate_latest(registry) for registry in registries())
    response = Response(body, mimetype=CONTENT_TYPE_LATEST)
    response.headers["Cache-Control"] = "no-store"
    return response


def registries() -> list[CollectorRegistry]:
    """What a scrape exposes, in its order: the figures the processes counted (summed over every process
    in multiprocess mode, else this process's own) and the figures read now (`StateCollector`)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        counted = CollectorRegistry()
        MultiProcessCollector(counted)
    else:
        counted = REGISTRY
    state = CollectorRegistry()
    state.register(StateCollector())
    return [counted, state]


class StateCollector:
    """The figures read at scrape time. A part that cannot answer (Redis down) leaves its figures out
    and sets `pigeonhole_up{part}` to 0, so one outage does not hide the rest."""

    def collect(self):
        up = GaugeMetricFamily("pigeonhole_up", "Whether the part answered this scrape (1) or not (0).",
                               labels=["part"])
        try:
            yield from self._redis_figures()
            up.add_metric(["redis"], 1)
        except Exception as exc:  # noqa: BLE001 - reported as down, not raised
            log.warning("metrics: Redis did not answer: %s", exc.__class__.__name__)
            up.add_metric(["redis"], 0)
        try:
            yield from self._database_figures()
            up.add_metric(["database"], 1)
        except Exception as exc:  # noqa: BLE001
            db.session.rollback()
            log.warning("metrics: the database did not answer: %s", exc.__class__.__name__)
            up.add_metric(["database"], 0)
        yield up

    def _redis_figures(self):
        conn = redis_connection(timeout=current_app.config["REDIS_HEALTH_TIMEOUT"])
        depth = GaugeMetricFamily("pigeonhole_queue_jobs", "Jobs waiting in each queue.", labels=["queue"])
        oldest = GaugeMetricFamily("pigeonhole_queue_oldest_job_age_seconds",
                                   "Age of the oldest job waiting in each queue (0 when none waits).",
                                   labels=["queue"])
        started = GaugeMetricFamily("pigeonhole_queue_started_jobs", "Jobs running now, per queue.",
                                    labels=["queue"])
        failed = GaugeMetricFamily("pigeonhole_queue_failed_jobs",
                                   "Jobs in each queue's failed registry (Ops › Jobs requeues them).",
                                   labels=["queue"])
        workers = GaugeMetricFamily("pigeonhole_workers", "Workers with a fresh heartbeat listening to each queue.",
                                    labels=["queue"])
        listening = {name: 0 for name in QUEUE_NAMES}
        for worker in live_workers(conn):
            for name in worker.queue_names():
                if name in listening:
                    listening[name] += 1
        now = time.time()
        for name in QUEUE_NAMES:
            queue = get_queue(name, connection=conn)
            depth.add_metric([name], queue.count)
            first = queue.get_job_ids(0, 1)
            age = 0.0
            if first:
                job = queue.fetch_job(first[0])
                if job is not None and job.enqueued_at is not None:
                    age = max(0.0, now - job.enqueued_at.timestamp())
            oldest.add_metric([name], age)
            started.add_metric([name], StartedJobRegistry(queue=queue).count)
            failed.add_metric([name], FailedJobRegistry(queue=queue).count)
            workers.add_metric([name], listening[name])
        yield from (depth, oldest, started, failed, workers)
        last = conn.get(CRON_HEARTBEAT_KEY)
        if last:
            yield GaugeMetricFamily("pigeonhole_cron_last_tick_timestamp_seconds",
                                    "When the cron loop last ticked (Unix time).", value=float(last))
        idle = GaugeMetricFamily("pigeonhole_idle_sessions", "IMAP mailboxes by push (IDLE) mode.", labels=["mode"])
        imap_ids = [a.id for a in published_addresses("custom") if pollable(a) and a.incoming_protocol == "imap"]
        counts: dict[str, int] = {}
        for status in idle_statuses(conn, imap_ids).values():
            counts[status.mode] = counts.get(status.mode, 0) + 1
        for mode in ("idle", "connecting", "polling only", "not held"):
            idle.add_metric([mode.replace(" ", "_")], counts.get(mode, 0))
        yield idle

    def _database_figures(self):
        mailboxes = GaugeMetricFamily("pigeonhole_mailboxes", "Polled mailboxes by state: ok, failing or never polled.",
                                      labels=["state"])
        live = [a.id for a in published_addresses("custom") if pollable(a)]
        states = {s.address_id: s for s in db.session.scalars(select(MailboxState)
                                                               .where(MailboxState.address_id.in_(live)))} if live else {}
        counts = {"ok": 0, "failing": 0, "never_polled": 0}
        for address_id in live:
            state = states.get(address_id)
            if state is None or state.last_poll_at is None:
                counts["never_polled"] += 1
            elif state.error_count:
                counts["failing"] += 1
            else:
                counts["ok"] += 1
        for name, value in counts.items():
            mailboxes.add_metric([name], value)
        yield mailboxes
        yield GaugeMetricFamily(
            "pigeonhole_inbound_pending_messages", "Accepted mail not ingested yet (InboundRaw rows pending).",
            value=db.session.scalar(select(func.count()).select_from(InboundRaw)
                                    .where(InboundRaw.status == InboundStatus.PENDING.value)) or 0)
        waiting = GaugeMetricFamily("pigeonhole_outgoing_messages", "Outgoing messages not final yet, by state.",
                                    labels=["state"])
        rows = dict(db.session.execute(select(Message.delivery_status, func.count())
                                       .where(Message.delivery_status.in_(IN_PROGRESS))
                                       .group_by(Message.delivery_status)).all())
        for state in IN_PROGRESS:
            waiting.add_metric([state], rows.get(state, 0))
        yield waiting
        yield from self._sla_figures()

    def _sla_figures(self):
        """Per SLA target (`app.runtime.sla.TARGETS`): open or pending conversations past that target's due
        time now, and the breaches recorded in the reports' facts."""
        now = utcnow()
        breached = GaugeMetricFamily(
            "pigeonhole_sla_breached_conversations",
            "Open or pending conversations past their due time for each SLA target now.", labels=["target"])
        recorded = CounterMetricFamily(
            "pigeonhole_sla_breaches",
            "Conversations with a breach recorded for each SLA target (the reports' facts: one per conversation "
            "and target, however often it was missed). A merged or deleted conversation's facts are removed, "
            "so the figure can drop.", labels=["target"])
        for target, _label in TARGETS:
            due = getattr(Conversation, f"{target}_due_at")
            breached.add_metric([target], db.session.scalar(
                select(func.count()).select_from(Conversation).where(breached_now(now), due <= now)) or 0)
            recorded.add_metric([target], db.session.scalar(
                select(func.count()).select_from(ConversationFacts)
                .where(getattr(ConversationFacts, f"{target}_breached").is_(True))) or 0)
        yield breached
        yield recorded
