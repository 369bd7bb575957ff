"""Locks that die with their holder (issue 18): a killed worker's ingest lock is free within its lease."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from redis import Redis

from app.runtime.leases import leased_lock
from tests.subprocess_env import flask_env

HOLDER = """
import sys, time
from wsgi import app
from app.runtime.ingest_redis import address_lock
with app.app_context():
    with address_lock(7):
        print("held", flush=True)
        time.sleep(120)
"""


def test_a_killed_workers_ingest_lock_is_free_within_its_lease(app, tmp_path):
    """Before: the lock lived 300 s after a SIGKILL, and every other worker's ingest of that address waited."""
    env = {**flask_env(app, tmp_path), "INGEST_LOCK_LEASE_SECONDS": "2"}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER], env=env, stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        time.sleep(3)  # longer than the lease: a live holder keeps it by renewing
        assert Redis.from_url(app.config["REDIS_URL"]).exists("pigeonhole:ingest-address:7")
    finally:
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait(30)
        holder.stdout.close()
    app.config.update(INGEST_LOCK_LEASE_SECONDS=2, INGEST_LOCK_WAIT_SECONDS=30)
    from app.runtime.ingest_redis import address_lock

    started = time.monotonic()
    with app.app_context(), address_lock(7):
        waited = time.monotonic() - started
        assert Redis.from_url(app.config["REDIS_URL"]).exists("pigeonhole:ingest-address:7")  # ours now
    assert waited < 3, f"waited {waited:.1f} s for a dead worker's lock"


def test_a_held_lease_is_renewed_and_refuses_others_until_released(redis_server):
    connection = Redis.from_url(redis_server.url)
    with leased_lock(connection, "pigeonhole:test-lease", lease=1, wait=1) as held:
        assert held is not None
        time.sleep(2.5)  # over two leases
        with leased_lock(Redis.from_url(redis_server.url), "pigeonhole:test-lease", lease=1, wait=0.2) as other:
            assert other is None
        assert held.lost is False
    with leased_lock(connection, "pigeonhole:test-lease", lease=1, wait=0.2) as again:
        assert again is not None


def test_a_lease_lost_to_redis_is_reported(redis_server):
    connection = Redis.from_url(redis_server.url)
    with leased_lock(connection, "pigeonhole:test-lost", lease=0.6, wait=1) as held:
        connection.delete("pigeonhole:test-lost")  # what an expired lease looks like to its holder
        deadline = time.monotonic() + 3
        while not held.lost:
            assert time.monotonic() < deadline, "the loss was never noticed"
            time.sleep(0.05)
