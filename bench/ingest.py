"""Inbound benchmark: IMAP poll-to-conversation and SMTP ingress against bare baselines.

    python bench/ingest.py [-n 5000] [--smtp 1000] [--big-mb 25] [--skip imap,big,smtp] [--database-url URL]

Needs the runtime requirements only (no pytest). The four ratios, their goals and the load
average are the last lines.

Starts its own Redis, Dovecot and SQLite database in a temporary folder (nothing
else is touched), loads N generated messages (text + HTML alternatives, every
fifth with an attachment, 2-70 KB) into a Dovecot mailbox and prints, in one run:

* raw baseline: imapclient fetch (batches of 500, BODY.PEEK[]) + stdlib parse
  (`policy.default`) + body and attachment extraction, nothing stored;
* Pigeonhole: `poll_address()` from the same mailbox to stored conversations
  (raw blobs fsynced, rows committed), and the ratio to the baseline (goal >= 0.7);
* peak memory of the poll for N/5 and N messages (goal: flat in N);
* one 25 MB message through the ingest service: peak memory over its size (goal < 4x);
* SMTP: accept rate of our ingress against a bare aiosmtpd sink that only writes
  (and fsyncs) files, several client connections at once, in alternating rounds
  (goal >= 0.8).
"""
from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import random
import resource
import shutil
import smtplib
import sys
import tempfile
import threading
import time
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, make_msgid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WORDS = ("order invoice delivery package refund account password shipping thanks hello please regards "
         "customer support question problem urgent update address payment card subscription").split()


def generate(n: int, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        msg = EmailMessage()
        msg["From"] = f"Customer {i % 400} <customer{i % 400}@example.com>"
        msg["To"] = "support@acme.test"
        msg["Subject"] = f"{'Re: ' if i % 3 == 0 else ''}{' '.join(rng.choices(WORDS, k=4))} #{i % 700}"
        msg["Date"] = format_datetime(__import__("datetime").datetime.now(__import__("datetime").timezone.utc))
        msg["Message-ID"] = make_msgid(f"b{i}", domain="example.com")
        target = rng.randint(2_000, 70_000)
        paragraphs = []
        size = 0
        while size < target * (0.45 if i % 5 == 0 else 0.55):
            p = " ".join(rng.choices(WORDS, k=rng.randint(20, 60))).capitalize() + "."
            paragraphs.append(p)
            size += len(p) * 2
        text = "Hello,\n\n" + "\n\n".join(paragraphs) + "\n\nOn Mon, Support wrote:\n> earlier message\n> quoted\n"
        msg.set_content(text)
        msg.add_alternative("<html><body>" + "".join(f"<p>{p}</p>" for p in paragraphs) +
                            "<blockquote>earlier message</blockquote></body></html>", subtype="html")
        if i % 5 == 0:
            blob = rng.randbytes(max(1_000, target // 3))
            msg.add_attachment(blob, maintype="application", subtype="pdf", filename=f"scan-{i}.pdf")
        out.append(msg.as_bytes(policy=policy.SMTP))
    return out


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- environment ----------------------------------------------------------------------------------

class Env:
    def __init__(self, work: Path, dovecot_conf: str = "", database_url: str | None = None) -> None:
        from tests.servers import DovecotServer, RedisServer

        self.work = work
        self.redis = RedisServer(work / "redis")
        self.dovecot = DovecotServer(extra_conf=dovecot_conf)
        self.config = {
            "SECRET_KEY": "bench", "SQLALCHEMY_DATABASE_URI": database_url or f"sqlite:///{work / 'bench.db'}",
            "REDIS_URL": self.redis.url, "BLOB_DIR": str(work / "blobs"), "MAIL_TLS_CA_FILE": str(self.dovecot.cert),
            "MAILBOX_BACKFILL": "7", "PLATFORM_MAIL_DOMAIN": "mail.pigeonhole.test",
            "MAIL_ALLOW_PRIVATE_HOSTS": True,  # its Dovecot listens on 127.0.0.1
        }

    def app(self):
        from app import create_app

        return create_app(dict(self.config))

    def stop(self) -> None:
        self.dovecot.stop()
        self.redis.stop()


def make_address(email: str, kind: str, **fields) -> int:
    """A published address, made the way an admin does it (publish is the one way configuration goes live).

    Written here rather than imported from the test fixtures, so the benchmark runs with the
    runtime requirements alone (no pytest).
    """
    from sqlalchemy import select

    from app.channels.domains import ensure_platform_domain
    from app.crypto import encrypt_secret
    from app.extensions import db
    from app.models.channels import Domain, EmailAddress
    from app.publish.services import publish_addresses

    if kind == "platform":
        domain = ensure_platform_domain()
    else:
        name = email.rpartition("@")[2]
        domain = db.session.scalar(select(Domain).where(Domain.name == name))
        if domain is None:
            domain = Domain(name=name, kind="custom")
            db.session.add(domain)
            db.session.flush()
    password = fields.pop("password", None)
    address = EmailAddress(domain_id=domain.id, address=email.lower(), display_name="Support", **fields)
    if password is not None:
        address.password_encrypted = encrypt_secret(password)
    db.session.add(address)
    db.session.flush()
    publish_addresses([address.id], None, "bench")
    db.session.commit()
    return address.id


def load_mailbox(env: Env, user: str, raws: list[bytes]) -> None:
    from imapclient import IMAPClient

    env.dovecot.add_user(user, "pw")
    time.sleep(1.1)  # Dovecot re-reads its passwd-file by mtime (seconds)
    with IMAPClient("127.0.0.1", port=env.dovecot.imap_port, ssl=False, timeout=300) as imap:
        imap.login(user, "pw")
        for start in range(0, len(raws), 500):
            imap.multiappend("INBOX", raws[start:start + 500])


# --- IMAP: baseline and Pigeonhole --------------------------------------------------------------

def baseline(env: Env, user: str) -> tuple[int, float]:
    from imapclient import IMAPClient

    parser = BytesParser(policy=policy.default)
    start = time.perf_counter()
    n = 0
    with IMAPClient("127.0.0.1", port=env.dovecot.imap_port, ssl=False, timeout=300) as imap:
        imap.login(user, "pw")
        imap.select_folder("INBOX", readonly=True)
        uids = imap.search(["ALL"])
        for i in range(0, len(uids), 500):
            for data in imap.fetch(uids[i:i + 500], ["BODY.PEEK[]"]).values():
                msg = parser.parsebytes(data[b"BODY[]"])
                _ = (msg["From"], msg["To"], msg["Subject"], msg["Message-ID"], msg["Date"])
                for kind in ("plain", "html"):
                    body = msg.get_body(preferencelist=(kind,))
                    if body is not None:
                        body.get_content()
                for att in msg.iter_attachments():
                    att.get_filename()
                    att.get_content()
                n += 1
    return n, time.perf_counter() - start


def _poll_child(env_config: dict, address_id: int, pipe) -> None:
    from app import create_app

    app = create_app(env_config)
    with app.app_context():
        from app.runtime.poll import poll_address

        start = time.perf_counter()
        result = poll_address(address_id)
        elapsed = time.perf_counter() - start
    pipe.send((result.fetched, result.error, elapsed, peak_rss_mb()))


def pigeonhole_poll(env: Env, address_id: int) -> tuple[int, str | None, float, float]:
    parent, child = multiprocessing.Pipe()
    # A fresh interpreter, as for the big message: a forked child would first reuse the free heap
    # the parent left (generating messages), which hides part of the first batch's memory.
    proc = multiprocessing.get_context("spawn").Process(target=_poll_child, args=(env.config, address_id, child))
    proc.start()
    out = parent.recv()
    proc.join()
    return out


def big_raw(mb: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = "big@example.com"
    msg["To"] = "support@mail.pigeonhole.test"
    msg["Subject"] = "A big attachment"
    msg["Message-ID"] = make_msgid("big", domain="example.com")
    msg.set_content("See the attachment.\n")
    payload = os.urandom(int(mb * 1024 * 1024 * 0.74))  # base64 grows it to about `mb`
    msg.add_attachment(payload, maintype="application", subtype="zip", filename="big.zip")
    return msg.as_bytes(policy=policy.SMTP)


def _big_child(env_config: dict, address_id: int, path: str, pipe) -> None:
    """Store the message (streamed from `path`), then ingest it and measure the ingest's own peak.

    The message is built by the parent, not here: building it costs several times its size,
    and that high-water mark (and the free heap it leaves) would otherwise be what the peak shows.
    """
    from app import create_app

    app = create_app(env_config)
    with app.app_context():
        from app.blobs import blob_store
        from app.runtime.ingest import RawItem, ingest

        with open(path, "rb") as fh:
            sha = blob_store().put_file(fh)
        size = os.path.getsize(path)
        item = RawItem(sha, size, "cli", "big")
        import gc

        gc.collect()
        before = _rss_now_mb()
        reset = _reset_peak_rss()
        start = time.perf_counter()
        result = ingest(address_id, [item])[0]
        elapsed = time.perf_counter() - start
        after_peak = _peak_rss_since_reset_mb() if reset else peak_rss_mb()
    pipe.send((size, result.status, elapsed, before, after_peak - before))


def _rss_now_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)


def _reset_peak_rss() -> bool:
    """Linux: set this process's peak RSS (VmHWM) back to its current RSS; False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _peak_rss_since_reset_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return peak_rss_mb()


def big_message(env: Env, address_id: int, mb: int):
    path = env.work / "big.eml"
    path.write_bytes(big_raw(mb))
    parent, child = multiprocessing.Pipe()
    # A fresh interpreter, not a fork: a forked child inherits the free heap that building
    # messages left here, and reusing it would hide what the ingest allocates.
    proc = multiprocessing.get_context("spawn").Process(target=_big_child,
                                                        args=(env.config, address_id, str(path), child))
    proc.start()
    out = parent.recv()
    proc.join()
    path.unlink()
    return out


# --- SMTP ----------------------------------------------------------------------------------------

def send_many(port: int, raws: list[bytes], rcpt: str, connections: int = 4) -> float:
    chunks = [raws[i::connections] for i in range(connections)]
    errors = []

    def client(chunk):
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
                for raw in chunk:
                    smtp.sendmail("sender@example.com", [rcpt], raw)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(c,)) for c in chunks]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    return elapsed


def bare_sink(directory: Path, port: int):
    from aiosmtpd.controller import Controller

    directory.mkdir(parents=True, exist_ok=True)
    counter = iter(range(10 ** 9))

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            path = directory / f"{next(counter)}.eml"
            with open(path, "wb") as fh:
                fh.write(envelope.original_content)
                fh.flush()
                os.fsync(fh.fileno())
            return "250 OK"

    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every command at INFO
    controller = Controller(Handler(), hostname="127.0.0.1", port=port, decode_data=False)
    controller.start()
    return controller


def _goal(ok: bool) -> str:
    return "met" if ok else "NOT MET"


def print_summary(summary: list[str], load_before: tuple[float, float, float]) -> None:
    """The figures last, closed by the load average before and after the run (benchmarks quote it)."""
    load_after = os.getloadavg()
    print()
    summary.append(f"load average (1/5/15 min) before {' '.join(f'{x:.2f}' for x in load_before)}, "
                   f"after {' '.join(f'{x:.2f}' for x in load_after)}; {os.cpu_count()} cores")
    for line in summary:
        print(line)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=5000, help="messages in the mailbox (default 5000)")
    ap.add_argument("--smtp", type=int, default=1000, help="messages sent to each SMTP server (default 1000)")
    ap.add_argument("--big-mb", type=int, default=25, help="size of the big message in MB (default 25)")
    ap.add_argument("--rounds", type=int, default=4, help="SMTP rounds, sink and ingress alternately (default 4)")
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: imap, big, smtp")
    ap.add_argument("--database-url", help="an empty database to run in (default: a new SQLite file)")
    args = ap.parse_args()
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    load_before = os.getloadavg()
    summary: list[str] = []

    work = Path(tempfile.mkdtemp(prefix="pigeonhole-bench-"))
    os.chmod(work, 0o755)
    env = Env(work, database_url=args.database_url)
    try:
        app = env.app()
        with app.app_context():
            from app.extensions import db

            db.create_all()
            small_user, big_user = "small@acme.test", "big@acme.test"
            ids = {}
            for user in (small_user, big_user):
                ids[user] = make_address(user, "custom", usage="inbound", username=user, password="pw",
                                         incoming_protocol="imap", incoming_host="127.0.0.1",
                                         incoming_port=env.dovecot.ports["imaps"], incoming_security="ssl")
            platform_id = make_address("support@mail.pigeonhole.test", "platform")

        print(f"generating {args.n} messages ...", flush=True)
        raws = generate(args.n)
        sizes = sorted(len(r) for r in raws)
        print(f"  sizes {sizes[0] // 1024}-{sizes[-1] // 1024} KB, median {sizes[len(sizes) // 2] // 1024} KB, "
              f"total {sum(sizes) / 1e6:.1f} MB")

        if "imap" not in skip:
            load_mailbox(env, small_user, raws[: args.n // 5])
            load_mailbox(env, big_user, raws)
            n, seconds = baseline(env, big_user)
            base_rate = n / seconds
            print(f"raw baseline (imapclient fetch + policy.default parse + extract): {n} msgs in {seconds:.1f} s = "
                  f"{base_rate:.0f} msg/s", flush=True)
            fetched_s, err_s, secs_s, rss_s = pigeonhole_poll(env, ids[small_user])
            fetched, err, secs, rss = pigeonhole_poll(env, ids[big_user])
            if err or err_s:
                print("poll error:", err or err_s)
            rate = fetched / secs
            print(f"Pigeonhole poll -> stored conversations: {fetched} msgs in {secs:.1f} s = {rate:.0f} msg/s")
            print(f"  peak memory: {rss_s:.0f} MB for {fetched_s} msgs, {rss:.0f} MB for {fetched} msgs", flush=True)
            ratio, mem = rate / base_rate, rss / rss_s
            summary.append(f"poll ratio (Pigeonhole {rate:.0f} / baseline {base_rate:.0f} msg/s, N={args.n}): "
                           f"{ratio:.2f} (goal >= 0.7: {_goal(ratio >= 0.7)})")
            summary.append(f"memory ratio (peak {rss:.0f} MB at N={fetched} / {rss_s:.0f} MB at N/5={fetched_s}): "
                           f"{mem:.2f} (goal <= 1.1: {_goal(mem <= 1.1)})")

        if "big" not in skip:
            size, status, big_secs, base_mb, delta_mb = big_message(env, platform_id, args.big_mb)
            times = delta_mb * 1024 * 1024 / size
            print(f"big message: {size / 1e6:.1f} MB ingested ({status}) in {big_secs:.1f} s, peak memory "
                  f"+{delta_mb:.0f} MB", flush=True)
            summary.append(f"big message peak/size ({size / 1e6:.1f} MB, +{delta_mb:.0f} MB): {times:.1f}x "
                           f"(goal < 4x: {_goal(times < 4)})")

        if "smtp" not in skip:
            from app.runtime.ingress import make_controller
            from tests.servers import free_port

            smtp_raws = [r.replace(b"support@acme.test", b"support@mail.pigeonhole.test") for r in raws[: args.smtp]]

            sink_port, port = free_port(), free_port()
            sink = bare_sink(work / "sink", sink_port)
            ingress = make_controller(env.app(), "127.0.0.1", port)
            ingress.start()
            sink_secs = ours_secs = 0.0
            try:
                # Alternate rounds (sink, ingress, sink, ...), so a burst of load from elsewhere on a
                # shared machine falls on both sides rather than on one.
                for r in range(args.rounds):
                    chunk = smtp_raws[r::args.rounds]
                    sink_secs += send_many(sink_port, chunk, "support@mail.pigeonhole.test")
                    ours_secs += send_many(port, chunk, "support@mail.pigeonhole.test")
            finally:
                sink.stop()
                ingress.stop()
            sink_rate, ours_rate = len(smtp_raws) / sink_secs, len(smtp_raws) / ours_secs
            print(f"SMTP bare aiosmtpd sink (write + fsync a file): {sink_rate:.0f} msg/s")
            print(f"SMTP Pigeonhole ingress (raw + pending row committed before 250, then enqueue): {ours_rate:.0f} msg/s")
            ratio = ours_rate / sink_rate
            summary.append(f"SMTP ratio (ingress {ours_rate:.0f} / bare sink {sink_rate:.0f} msg/s, "
                           f"{len(smtp_raws)} msgs): {ratio:.2f} (goal >= 0.8: {_goal(ratio >= 0.8)})")
    finally:
        env.stop()
        shutil.rmtree(work, ignore_errors=True)
    print_summary(summary, load_before)


if __name__ == "__main__":
    main()
