"""Scale-out on PostgreSQL: ingest and send throughput with 1, 2 and 4 workers.

    python bench/scale.py [--messages 1000] [--replies 1000] [--addresses 4] [--workers 1,2,4]

For each worker count, on a fresh throwaway PostgreSQL cluster (`initdb`, fsync on) and Redis, with the
run command's processes (`bench/pipeline.py`'s `Pipeline`: SMTP ingress, cron, the SMTP sink):

* **ingest**: N customer mails are pushed over SMTP (four connections) to `--addresses` published
  addresses, round robin, while no worker runs; then W `flask worker --simple ingest` start, and the
  time runs from the first worker's registration until every arrival is stored (created). Ingest of
  one address is serialised by its lock (threading must see the previous message), so the addresses
  are what several workers share;
* **send**: R agents' replies are queued as the workspace queues them (`bench/send.py`'s
  `queue_replies`: rendered, committed, enqueued) while no worker runs; then W `flask worker --simple
  send` start, timed the same way until every reply is `sent` to the sink.

The last lines are the curve (msg/s per worker count), each count's ratio to one worker, and the load
average. This machine has 2 cores, shared by the workers, PostgreSQL, Redis, the ingress and the
benchmark itself (and often by other people's test runs): beyond 2 workers nothing can be gained
here, and the figures say what one core's worth of worker does; a larger machine gets about that
per core it gives the workers, until PostgreSQL's own commits (one per batch) are the limit.
"""
from __future__ import annotations

import argparse
import os
import smtplib
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import pipeline as assembled  # noqa: E402  (bench/pipeline.py)

DOMAIN = assembled.DOMAIN


def addresses(count: int) -> list[str]:
    return [assembled.RCPT] + [f"support{i}@{DOMAIN}" for i in range(1, count)]


def app_for(pipe: assembled.Pipeline):
    """An app on the pipeline's database and Redis, in this process (for the untimed setup)."""
    os.environ.update(pipe.env)
    from app import create_app

    return create_app()


def push(port: int, mails: list[bytes], recipients: list[str], connections: int = 4) -> None:
    def send(part: list[tuple[bytes, str]]) -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
            for raw, rcpt in part:
                smtp.sendmail("customer@example.com", [rcpt], raw)

    work = [(raw, recipients[i % len(recipients)]) for i, raw in enumerate(mails)]
    threads = [threading.Thread(target=send, args=(work[i::connections],)) for i in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def timed_workers(pipe: assembled.Pipeline, workers: int, queue: str, done, timeout: float) -> float:
    """Start `workers` workers on `queue`; seconds from the first one's registration until `done()`."""
    from redis import Redis

    client = Redis.from_url(pipe.redis.url)
    pipe.start_workers(workers, ("--simple", queue))
    deadline = time.monotonic() + timeout
    while not client.scard("rq:workers"):
        if time.monotonic() > deadline:
            raise SystemExit("no worker registered; see " + str(pipe.work))
        time.sleep(0.01)
    started = time.monotonic()
    while not done():
        if time.monotonic() > deadline:
            raise SystemExit(f"{queue} did not finish in {timeout:.0f} s with {workers} worker(s)")
        time.sleep(0.05)
    return time.monotonic() - started


def count(pipe: assembled.Pipeline, sql: str) -> int:
    from sqlalchemy import text

    with pipe.engine.connect() as con:
        return con.execute(text(sql)).scalar_one()


def ingest_rate(root: Path, workers: int, n: int, address_count: int, timeout: float) -> float:
    pipe = assembled.Pipeline(root / f"ingest-{workers}", 0, "postgresql")
    try:
        app = app_for(pipe)
        from tests.mail.conftest import make_address

        names = addresses(address_count)
        with app.app_context():
            for name in names[1:]:
                make_address(name)
        push(pipe.port, assembled.generate(n, seed=workers), names)
        assert count(pipe, "SELECT count(*) FROM inbound_raws") == n
        seconds = timed_workers(pipe, workers, "ingest", lambda: count(
            pipe, "SELECT count(*) FROM inbound_raws WHERE status = 'pending'") == 0, timeout)
        created = count(pipe, "SELECT count(*) FROM inbound_raws WHERE status = 'created'")
        if created != n:
            raise SystemExit(f"only {created} of {n} arrivals were stored as new conversations")
        return n / seconds
    finally:
        pipe.stop()


def send_rate(root: Path, workers: int, n: int, timeout: float) -> float:
    import send as send_bench  # bench/send.py

    pipe = assembled.Pipeline(root / f"send-{workers}", 0, "postgresql")
    try:
        app = app_for(pipe)
        with app.app_context():
            agent_id, conversation_ids = send_bench.prepare(n)
            message_ids, _seconds = send_bench.queue_replies(agent_id, conversation_ids)
        ids = ",".join(map(str, message_ids))
        seconds = timed_workers(pipe, workers, "send", lambda: count(
            pipe, f"SELECT count(*) FROM messages WHERE id IN ({ids}) AND delivery_status = 'sent'") == n, timeout)
        return n / seconds
    finally:
        pipe.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=1000, help="mails ingested per run (default 1000)")
    parser.add_argument("--replies", type=int, default=1000, help="replies sent per run (default 1000)")
    parser.add_argument("--addresses", type=int, default=4, help="published addresses the mail goes to (default 4)")
    parser.add_argument("--workers", default="1,2,4", help="worker counts (default 1,2,4)")
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args()
    if not assembled.postgres_available():
        raise SystemExit("PostgreSQL is not installed here (no initdb under /usr/lib/postgresql): "
                         "bench/scale.py measures PostgreSQL only")
    counts = [int(x) for x in args.workers.split(",")]
    ingest: dict[int, float] = {}
    sends: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="pigeonhole-scale-") as tmp:
        root = Path(tmp)
        for workers in counts:  # one worker count after the other, ingest then send: back to back
            ingest[workers] = ingest_rate(root, workers, args.messages, args.addresses, args.timeout)
            print(f"{workers} worker(s): ingest {ingest[workers]:.1f} msg/s "
                  f"({args.messages} mails to {args.addresses} addresses)", flush=True)
            sends[workers] = send_rate(root, workers, args.replies, args.timeout)
            print(f"{workers} worker(s): send {sends[workers]:.1f} msg/s ({args.replies} replies)", flush=True)
    print()
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores "
          f"(workers, PostgreSQL, Redis, the ingress and this benchmark share them)")
    for name, curve in (("ingest", ingest), ("send", sends)):
        base = curve[counts[0]]
        print(f"{name} on PostgreSQL: " + ", ".join(
            f"{w} worker(s) {rate:.1f} msg/s ({rate / base:.2f} x)" for w, rate in curve.items()))


if __name__ == "__main__":
    main()
