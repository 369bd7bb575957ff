"""Counters and histograms of what moves mail, for `/metrics` (Prometheus's text format).

The figures a process observes itself live here: ingest outcomes and latency, send outcomes and
delivery latency, jobs done and failed, HTTP request durations. Figures read from the database or
Redis at scrape time (queue depth, mailbox states, the cron heartbeat) are collected by
`app.ops.metrics`, so they are right whichever process answers the scrape.

Several processes (gunicorn workers, RQ workers and their work horses, the ingress) are summed by
prometheus-client's multiprocess mode: when `PROMETHEUS_MULTIPROC_DIR` is set in the environment
(`scripts/run` sets it and empties the folder at start), each process writes its values to
memory-mapped files there and `/metrics` adds them up. Without it, `/metrics` shows the answering
process alone (good enough for one process and for tests).

A forked RQ work horse would leave a file set per job (one per process id); it writes to its
worker's files instead (`act_for_worker`), which is safe because a worker runs one horse at a time.

Names follow Prometheus's conventions (`_total` counters, `_seconds` units, base units) and every
label has a bounded set of values: outcomes are fixed words, queues are `app.queues.QUEUE_NAMES`,
endpoints are Flask endpoint names.
"""
from __future__ import annotations

import os

from prometheus_client import Counter, Histogram, values

_identity: dict = {"worker": None, "pid": None, "name": None}


def _process_identifier() -> str:
    pid = os.getpid()
    return _identity["name"] if _identity["pid"] == pid else str(pid)


def mark_worker() -> None:
    """`flask worker`, before it forks work horses: they will write to this worker's files."""
    _identity["worker"] = os.getpid()


def enter_job() -> None:
    """At the start of a job: in a work horse forked by a marked worker, act for that worker (module doc)."""
    worker, pid = _identity["worker"], os.getpid()
    if worker is not None and worker != pid and _identity["pid"] != pid:
        _identity.update(pid=pid, name=f"{worker}-horse")


if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    values.ValueClass = values.MultiProcessValue(_process_identifier)

#: Seconds: from a fraction of a second (one message) to minutes (a backlog).
_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600)

INGEST_OUTCOMES = ("created", "threaded", "duplicate", "bounce", "stored_with_error", "pending")
SEND_OUTCOMES = ("sent", "retrying", "failed")

ingest_messages = Counter(
    "pigeonhole_ingest_messages_total", "Inbound messages ingested, by outcome.", ["outcome"])
ingest_latency = Histogram(
    "pigeonhole_ingest_latency_seconds",
    "From the message's acceptance (ingress 250, or its fetch from a mailbox) to its ingest commit.",
    buckets=_LATENCY_BUCKETS)
send_messages = Counter(
    "pigeonhole_send_messages_total", "Outgoing delivery attempts, by outcome.", ["outcome"])
delivery_latency = Histogram(
    "pigeonhole_delivery_latency_seconds", "From a reply's queueing to the relay's acceptance.",
    buckets=_LATENCY_BUCKETS)
jobs = Counter(
    "pigeonhole_jobs_total", "RQ jobs run by Pigeonhole's workers, by queue and outcome (done or failed).",
    ["queue", "outcome"])
http_request_duration = Histogram(
    "pigeonhole_http_request_duration_seconds", "Web requests, by Flask endpoint and method.",
    ["endpoint", "method"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))


def observe_ingest(outcome: str, latency_seconds: float | None) -> None:
    ingest_messages.labels(outcome if outcome in INGEST_OUTCOMES else "other").inc()
    if latency_seconds is not None:
        ingest_latency.observe(max(latency_seconds, 0.0))


def observe_send(outcome: str, latency_seconds: float | None = None) -> None:
    send_messages.labels(outcome if outcome in SEND_OUTCOMES else "other").inc()
    if latency_seconds is not None:
        delivery_latency.observe(max(latency_seconds, 0.0))


def observe_job(queue: str | None, failed: bool) -> None:
    jobs.labels(queue or "none", "failed" if failed else "done").inc()
