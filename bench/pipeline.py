"""The assembled pipeline: SMTP ingress -> ingest worker -> flow worker, as the run command starts it.

    python bench/pipeline.py [--messages 2000] [--steady-seconds 15] [--skip-parts] [--database sqlite|postgresql|both]

Starts, in a temporary folder, what `scripts/run` starts (Redis, the SMTP sink for automatic
replies, `flask ingress`, `flask worker --simple` per worker, `flask cron`) on SQLite, and on a
throwaway PostgreSQL cluster (`initdb`, fsync on, as `scripts/test` starts one) when it is installed,
with the demo seed (its published address, flow and trained intent model). Mail is pushed once every
worker has registered and the seed's own jobs are done, so start-up is not measured. It prints:

* the accept rate of N mails pushed over SMTP from four connections at once (a burst);
* arrival -> conversation and arrival -> routed (a flow run stored): rates and p50/p95 latencies,
  from the database's own timestamps (`inbound_raws.received_at`, `messages.created_at`,
  `flow_runs.created_at`);
* the same burst with 2 workers;
* how many of the machine's cores were busy during each burst (from /proc/stat: every process, the
  pipeline's, the database's and anyone else's), which says whether a second worker had a core to use;
* p95 arrival -> routed at a steady 20 msg/s with one worker;
* the slowest part measured alone in the same run, on the same database (`bench/ingest.py` IMAP poll ->
  conversations and `bench/flows.py` end-to-end flow runs, small sizes; on PostgreSQL in empty
  databases of a throwaway cluster), unless `--skip-parts`. One worker runs both parts in turn, so
  with one worker the ratio cannot pass about 0.55 (the two parts' rates combined); with two it can.

The ratios and their goals are the last lines (SQLite's, then PostgreSQL's): routed rate >= 0.5 x the
slowest part (with 1 worker and with 2), p95 at 20 msg/s < 2 s, 2 workers >= 1.6 x one. Runtime requirements only (plus the
repository's `tests/servers.py` Redis and PostgreSQL launchers, as `bench/ingest.py` uses). The
machine's load average is printed with them.
"""
from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PY = sys.executable
DOMAIN = "mail.pigeonhole.test"
RCPT = f"support@{DOMAIN}"
PHRASES = ("I was charged twice for my order, please refund the payment", "Where is my parcel? Tracking shows nothing",
           "I want to return the broken kettle", "I cannot log in to my account, password reset fails",
           "Can I change the delivery address of my order", "Thanks for the quick help last week")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def generate(n: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        msg = EmailMessage()
        msg["From"] = f"Customer {i} <customer{seed}-{i}@example.com>"
        msg["To"] = RCPT
        phrase = rng.choice(PHRASES)
        msg["Subject"] = f"{phrase[:40]} #{i}"
        msg["Message-ID"] = make_msgid(f"p{seed}-{i}", domain="example.com")
        body = "Hello,\n\n" + phrase + ".\n\n" + " ".join(rng.choices(PHRASES, k=rng.randint(3, 30))) + \
               "\n\nRegards,\nCustomer\n\nOn Mon, Support wrote:\n> earlier message\n"
        msg.set_content(body)
        msg.add_alternative("<html><body><p>" + body.replace("\n\n", "</p><p>") + "</p></body></html>",
                            subtype="html")
        out.append(msg.as_bytes())
    return out


class NoSuchDomainDNS:
    """A loopback DNS server that answers every question at once with NXDOMAIN.

    The ingest job checks SPF/DKIM/DMARC of SMTP arrivals; this machine may have no network, where
    every lookup would wait for `DNS_TIMEOUT_SECONDS`. A real resolver answers in milliseconds, and so
    does this one (the mail comes from example.com: "no such record" is a true answer).
    """

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            if len(data) < 12:
                continue
            end = 12
            while end < len(data) and data[end]:
                end += data[end] + 1
            question = data[12:end + 5]
            self.sock.sendto(data[:2] + b"\x81\x83" + b"\x00\x01\x00\x00\x00\x00\x00\x00" + question, peer)

    def stop(self) -> None:
        self.sock.close()


def postgres_available() -> bool:
    try:
        from tests.servers import pg_bin
        pg_bin()
    except AssertionError:
        return False
    return True


class Pipeline:
    """The run command's processes on a fresh database (SQLite, or a throwaway PostgreSQL) and Redis, in `work`.

    `worker_args` are what each `flask worker` gets (default `--simple`: what `scripts/run` starts).
    """

    def __init__(self, work: Path, workers: int, database: str = "sqlite", worker_args: tuple[str, ...] = ("--simple",),
                 ingress: bool = True) -> None:
        from sqlalchemy import create_engine
        from sqlalchemy.pool import NullPool

        from tests.servers import RedisServer, ThrowawayPostgres

        work.mkdir(parents=True)
        self.work = work
        self.redis = RedisServer(work / "redis")
        self.dns = NoSuchDomainDNS()
        self.postgres = None
        if database == "postgresql":
            # Its own folder under /tmp, which the `postgres` user can reach (ours is private to us).
            self.postgres = ThrowawayPostgres(Path(tempfile.mkdtemp(prefix="pigeonhole-pipeline-pg-")),
                                              database="pipeline", fsync=True)
            url = self.postgres.url
        else:
            url = f"sqlite:///{work / 'pipeline.db'}"
        self.engine = create_engine(url, poolclass=NullPool)
        self.port = free_port()
        sink_port = free_port()
        self.env = os.environ | {
            "FLASK_APP": "wsgi", "PIGEONHOLE_INSTANCE": str(work / "instance"), "SECRET_KEY": "bench",
            "DATABASE_URL": url, "REDIS_URL": self.redis.url,
            "BLOB_DIR": str(work / "blobs"), "PLATFORM_MAIL_DOMAIN": DOMAIN,
            "SMTP_RELAY_URL": f"smtp://127.0.0.1:{sink_port}?tls=none", "OUTBOX_DIR": str(work / "outbox"),
            "DNS_RESOLVER": self.dns.address,
        }
        self.env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        self._run("db", "upgrade")
        self._run("demo", "seed")
        self.procs: list[subprocess.Popen] = []
        self._start("smtp-sink", "--port", str(sink_port), "--dir", str(work / "outbox"))
        if ingress:
            self._start("ingress", "--host", "127.0.0.1", "--port", str(self.port))
        self.workers = 0
        self.start_workers(workers, worker_args)
        self._start("cron")
        deadline = time.monotonic() + 60
        while ingress:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("the ingress never listened; see " + str(work / "ingress.log"))
                time.sleep(0.2)
        self.wait_ready()

    def start_workers(self, count: int, worker_args: tuple[str, ...] = ("--simple",)) -> None:
        for _ in range(count):
            self.workers += 1
            self._start("worker", *worker_args, name=f"worker-{self.workers}")

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Until every worker has registered with Redis and the queues are empty (the seed's jobs done).
        Without workers, nothing to wait for."""
        from redis import Redis

        if not self.workers:
            return
        client = Redis.from_url(self.redis.url)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            queued = sum(client.llen(f"rq:queue:{q}") for q in ("send", "ingest", "flows", "poll"))
            busy = sum(client.zcard(f"rq:wip:{q}") for q in ("send", "ingest", "flows", "poll"))
            if client.scard("rq:workers") >= self.workers and not queued and not busy:
                return
            time.sleep(0.2)
        raise SystemExit("the workers never became ready; see " + str(self.work / "worker-1.log"))

    def _run(self, *args: str) -> None:
        subprocess.run([PY, "-m", "flask", *args], env=self.env, cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _start(self, *args: str, name: str | None = None) -> None:
        log = open(self.work / f"{name or args[0]}.log", "ab")
        self.procs.append(subprocess.Popen([PY, "-m", "flask", *args], env=self.env, cwd=ROOT,
                                           stdout=log, stderr=log, start_new_session=True))

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.redis.stop()
        self.dns.stop()
        self.engine.dispose()
        if self.postgres is not None:
            self.postgres.stop()
            shutil.rmtree(self.postgres.data.parent, ignore_errors=True)

    def locked_lines(self) -> int:
        return sum(p.read_text(errors="replace").count("database is locked") for p in self.work.glob("worker-*.log"))

    def push(self, mails: list[bytes], connections: int = 4, rate: float | None = None) -> float:
        """Send every mail (over `connections` SMTP sessions, or one at `rate` per second); seconds taken."""
        started = time.monotonic()
        if rate:
            with smtplib.SMTP("127.0.0.1", self.port, timeout=60) as smtp:
                for i, raw in enumerate(mails):
                    delay = started + i / rate - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    smtp.sendmail("customer@example.com", [RCPT], raw)
            return time.monotonic() - started

        def send(part: list[bytes]) -> None:
            with smtplib.SMTP("127.0.0.1", self.port, timeout=60) as smtp:
                for raw in part:
                    smtp.sendmail("customer@example.com", [RCPT], raw)

        threads = [threading.Thread(target=send, args=(mails[i::connections],)) for i in range(connections)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return time.monotonic() - started

    def timings(self) -> list[tuple[datetime, datetime | None, datetime | None]]:
        """(arrival, conversation, routed) per accepted mail, from the database's timestamps."""
        from sqlalchemy import text

        with self.engine.connect() as con:
            rows = con.execute(text(
                "SELECT r.received_at, m.created_at, (SELECT min(f.created_at) FROM flow_runs f "
                "WHERE f.message_id = m.id) FROM inbound_raws r LEFT JOIN messages m ON m.id = r.message_row_id "
                "WHERE r.source = 'smtp'")).all()
        return [tuple(_when(v) for v in row) for row in rows]

    def wait_routed(self, n: int, timeout: float) -> list:
        deadline = time.monotonic() + timeout
        while True:
            rows = self.timings()
            if len(rows) >= n and all(r[2] is not None for r in rows) or time.monotonic() > deadline:
                return rows
            time.sleep(0.5)


def _when(value) -> datetime | None:
    if value is None:
        return None
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def summary(rows: list, n: int) -> dict:
    first = min(r[0] for r in rows)
    conv = [r for r in rows if r[1] is not None]
    routed = [r for r in rows if r[2] is not None]
    out = {"accepted": len(rows), "n_conversations": len(conv), "n_routed": len(routed)}
    for key, done, idx in (("conversation", conv, 1), ("routed", routed, 2)):
        if done:
            span = (max(r[idx] for r in done) - first).total_seconds() or 1e-9
            lat = [(r[idx] - r[0]).total_seconds() for r in done]
            out[key] = (len(done) / span, pct(lat, 50), pct(lat, 95))
        else:
            out[key] = (0.0, float("nan"), float("nan"))
    return out


def cpu_ticks() -> tuple[int, int]:
    """(busy, all) jiffies of the whole machine so far, from /proc/stat (idle and iowait are not busy)."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    return sum(values) - values[3] - values[4], sum(values)


def burst(root: Path, workers: int, n: int, timeout: float, database: str = "sqlite") -> dict:
    pipe = Pipeline(root / f"burst-{database}-{workers}", workers, database)
    try:
        mails = generate(n, seed=workers)
        busy, total = cpu_ticks()
        seconds = pipe.push(mails)
        result = summary(pipe.wait_routed(n, timeout), n)
        busy_after, total_after = cpu_ticks()
        result["cores_busy"] = (busy_after - busy) / max(1, total_after - total) * (os.cpu_count() or 1)
        result["accept_rate"] = n / seconds
        result["locked"] = pipe.locked_lines()
        return result
    finally:
        pipe.stop()


def steady(root: Path, seconds: float, rate: float, timeout: float, database: str = "sqlite") -> dict:
    pipe = Pipeline(root / f"steady-{database}", 1, database)
    try:
        n = int(seconds * rate)
        pipe.push(generate(n, seed=99), rate=rate)
        return summary(pipe.wait_routed(n, timeout), n)
    finally:
        pipe.stop()


def parts(database: str) -> dict[str, float]:
    """The parts alone, with the repository's own benchmarks at small sizes (same machine, same run), on
    `database`: SQLite, or empty databases of a throwaway PostgreSQL cluster."""
    found: dict[str, float] = {}
    postgres = None
    urls: dict[str, list[str]] = {"flows": [], "ingest": []}
    if database == "postgresql":
        from tests.servers import ThrowawayPostgres

        postgres = ThrowawayPostgres(Path(tempfile.mkdtemp(prefix="pigeonhole-parts-pg-")), database="flows", fsync=True)
        postgres._run("createdb", "-h", "127.0.0.1", "-p", str(postgres.port), "-U", "postgres", "ingest")
        urls = {name: ["--database-url", postgres.url.rsplit("/", 1)[0] + "/" + name] for name in urls}
    try:
        flows = subprocess.run([PY, str(ROOT / "bench" / "flows.py"), "--conversations", "300", "--splits", "1",
                                *urls["flows"]], capture_output=True, text=True, cwd=ROOT)
        m = re.search(r"end to end, runner\.run_flow on \w+ \(commit included\): ([\d,.]+)", flows.stdout)
        if m:
            found["flows alone (bench/flows.py, runner.run_flow + commit)"] = float(m.group(1).replace(",", ""))
        ingest = subprocess.run([PY, str(ROOT / "bench" / "ingest.py"), "-n", "1000", "--skip", "big,smtp",
                                 *urls["ingest"]], capture_output=True, text=True, cwd=ROOT)
        m = re.search(r"Pigeonhole poll -> stored conversations: .*= ([\d.]+) msg/s", ingest.stdout)
        if m:
            found["ingest alone (bench/ingest.py, IMAP poll -> conversations)"] = float(m.group(1))
    finally:
        if postgres is not None:
            postgres.stop()
            shutil.rmtree(postgres.data.parent, ignore_errors=True)
    for name, value in list(found.items()):
        if value <= 0:  # the part could not run here (no Dovecot, say): no ratio against it
            print(f"part: {name} measured nothing; left out", flush=True)
            del found[name]
    return found


def run_database(root: Path, database: str, args) -> dict:
    """The two bursts and the steady run on one database; what the last lines need."""
    n = args.messages
    results = {}
    for workers in (1, 2):
        print(f"burst of {n} mails over SMTP, {workers} worker(s) (flask worker --simple), {database} ...", flush=True)
        r = results[workers] = burst(root, workers, n, args.timeout, database)
        print(f"  accepted {r['accepted']} at {r['accept_rate']:.0f} msg/s; conversations {r['n_conversations']}, "
              f"routed {r['n_routed']}; 'database is locked' retries logged: {r['locked']}")
        print(f"  the machine's cores busy meanwhile (every process, this run's and others'): "
              f"{r['cores_busy']:.2f} of {os.cpu_count()}")
        for key in ("conversation", "routed"):
            rate, p50, p95 = r[key]
            print(f"  arrival -> {key}: {rate:.1f} msg/s, p50 {p50:.2f} s, p95 {p95:.2f} s", flush=True)
    print(f"steady 20 msg/s for {args.steady_seconds:.0f} s, 1 worker, {database} ...", flush=True)
    s = steady(root, args.steady_seconds, 20.0, args.timeout, database)
    _rate, p50, p95 = s["routed"]
    print(f"  routed {s['n_routed']} of {s['accepted']}: p50 {p50:.2f} s, p95 {p95:.2f} s", flush=True)
    return {"one": results[1]["routed"][0], "two": results[2]["routed"][0], "p95": p95}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=2000, help="mails in each burst (default 2000)")
    parser.add_argument("--steady-seconds", type=float, default=15.0, help="seconds of mail at 20 msg/s")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for a burst to be routed")
    parser.add_argument("--skip-parts", action="store_true", help="do not run bench/ingest.py and bench/flows.py")
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both",
                        help="where to run (default both; PostgreSQL only when initdb is installed)")
    args = parser.parse_args()
    databases = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    if "postgresql" in databases and not postgres_available():
        print("PostgreSQL is not installed here (no initdb under /usr/lib/postgresql): SQLite only", flush=True)
        databases.remove("postgresql")
    with tempfile.TemporaryDirectory(prefix="pigeonhole-pipeline-") as tmp:
        root = Path(tmp)
        measured = {database: run_database(root, database, args) for database in databases}
        found = {} if args.skip_parts else {database: parts(database) for database in databases}
        for database, values in found.items():
            for name, value in values.items():
                print(f"part on {database}: {name}: {value:.0f} msg/s")
    print()
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    for database, m in measured.items():
        one, two = m["one"], m["two"]
        if found.get(database):
            slowest_name = min(found[database], key=found[database].get)
            slowest = found[database][slowest_name]
            for workers, rate in (("1 worker", one), ("2 workers", two)):
                print(f"{database}: routed rate with {workers} / slowest part on {database} ({slowest_name}): "
                      f"{rate:.1f} / {slowest:.0f} = {rate / slowest:.2f} (goal >= 0.5)")
        print(f"{database}: p95 arrival -> routed at a steady 20 msg/s: {m['p95']:.2f} s (goal < 2 s)")
        print(f"{database}: 2 workers / 1 worker, routed rate: {two:.1f} / {one:.1f} = "
              f"{two / one if one else float('nan'):.2f} (goal >= 1.6)")


if __name__ == "__main__":
    main()
