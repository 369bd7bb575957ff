"""Enqueueing reuses one Redis client per process: no socket left open per job (RQ caches scripts per client)."""
from __future__ import annotations

import os

from app.queues import enqueue, redis_connection


def test_unique_enqueues_do_not_leak_connections(app):
    with app.app_context():
        enqueue("poll", "jobs.ops.ping", job_id="poll-mailbox-0")
        before = len(os.listdir("/proc/self/fd"))
        for i in range(1, 101):
            enqueue("poll", "jobs.ops.ping", job_id=f"poll-mailbox-{i}")
        assert len(os.listdir("/proc/self/fd")) <= before + 2
        assert redis_connection() is redis_connection()
        assert redis_connection(timeout=1.0) is not redis_connection()
