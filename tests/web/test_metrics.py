"""`/metrics` (issue 18): who may scrape it, and figures that agree with the database, Redis and the
processes that did the work (a real forking `flask worker` summed by the multiprocess mode)."""
from __future__ import annotations

import re
import subprocess
from datetime import timedelta
from html.parser import HTMLParser

from sqlalchemy import func, select

from app.blobs import blob_store
from app.inbox import merging
from app.models.inbound import InboundRaw
from app.models._types import utcnow
from app.models.inbox import Conversation
from app.models.reports import ConversationFacts
from app.queues import enqueue, get_queue
from app.runtime.ingest import RawItem, ingest
from app.runtime import sla
from app.runtime.outbound import deliver_message, send_reply
from tests.factories import make_conversation, make_queue, make_sending_address, make_sending_conversation, make_user
from tests.mail.conftest import make_address, message
from tests.subprocess_env import flask_cmd, flask_env
from tests.web.test_sla import desk  # noqa: F401 - the fixture: a queue with an SLA policy (60/120/480 min)
from tests.web.test_sla_facts import MONDAY, _agent, _customer, _resolve


def value(text: str, name: str, **labels) -> float | None:
    """The sample `name{labels}` of an exposition, or None when absent."""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        match = re.match(r"([a-zA-Z_:][\w:]*)(\{(.*)\})? (\S+)$", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(3) or ""))
        if found == {k: str(v) for k, v in labels.items()}:
            return float(match.group(4))
    return None


def run_pid(run) -> int:
    """The pid `rq` logs for the worker ("Worker ...: started with PID 123")."""
    return int(re.search(r"started with PID (\d+)", run.stderr + run.stdout).group(1))


def scrape(client, **kw) -> str:
    response = client.get("/metrics", **kw)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/plain"
    return response.get_data(as_text=True)


def test_only_loopback_or_the_bearer_token_may_scrape(app, client):
    remote = {"REMOTE_ADDR": "203.0.113.9"}
    assert client.get("/metrics", environ_base=remote).status_code == 403
    assert "pigeonhole_queue_jobs" in scrape(client)  # loopback, no session needed

    app.config["METRICS_TOKEN"] = "s3cret-token"
    assert client.get("/metrics").status_code == 403  # a token is set: loopback alone no longer does
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
    assert client.get("/metrics", headers={"Authorization": "s3cret-token"}).status_code == 403
    ok = client.get("/metrics", headers={"Authorization": "Bearer s3cret-token"}, environ_base=remote)
    assert ok.status_code == 200 and b"pigeonhole_up" in ok.data
    assert b"s3cret-token" not in ok.data


def test_queue_depth_pending_mail_and_outcomes_agree_with_redis_and_the_database(app, db, client):
    support = make_address("support@mail.pigeonhole.test")
    before = scrape(client)
    created_before = value(before, "pigeonhole_ingest_messages_total", outcome="created") or 0.0
    latency_before = value(before, "pigeonhole_ingest_latency_seconds_count") or 0.0

    raw = message()
    result = ingest(support.id, [RawItem(blob_store().put(raw), len(raw), "cli", "test", raw=raw)])[0]
    assert result.status == "created"
    again = ingest(support.id, [RawItem(blob_store().put(raw), len(raw), "cli", "test", raw=raw)])[0]
    assert again.status == "duplicate"
    with app.app_context():
        enqueue("poll", "jobs.ops.ping")
        enqueue("poll", "jobs.ops.ping")
    db.session.add(InboundRaw(address_id=support.id, source="smtp", raw_sha256="0" * 64, size=1))
    db.session.commit()

    after = scrape(client)
    assert value(after, "pigeonhole_ingest_messages_total", outcome="created") == created_before + 1
    assert value(after, "pigeonhole_ingest_messages_total", outcome="duplicate") >= 1
    assert value(after, "pigeonhole_ingest_latency_seconds_count") == latency_before + 2
    with app.app_context():
        assert value(after, "pigeonhole_queue_jobs", queue="poll") == get_queue("poll").count == 2
        assert value(after, "pigeonhole_queue_jobs", queue="flows") == get_queue("flows").count
    assert value(after, "pigeonhole_queue_oldest_job_age_seconds", queue="poll") >= 0
    assert value(after, "pigeonhole_inbound_pending_messages") == db.session.scalar(
        select(func.count()).select_from(InboundRaw).where(InboundRaw.status == "pending")) == 1
    assert value(after, "pigeonhole_workers", queue="poll") == 0
    assert value(after, "pigeonhole_up", part="redis") == 1 and value(after, "pigeonhole_up", part="database") == 1
    # Every request is timed by endpoint: the scrape before this one is in the histogram.
    assert value(after, "pigeonhole_http_request_duration_seconds_count", endpoint="metrics.scrape", method="GET") >= 1


def test_a_sent_reply_counts_with_its_delivery_latency(app, db, client, relay):
    address = make_sending_address()
    conversation = make_sending_conversation(address)
    agent = make_user("agent")
    before = scrape(client)
    sent_before = value(before, "pigeonhole_send_messages_total", outcome="sent") or 0.0
    reply = send_reply(conversation.id, agent.id, "<p>It ships today.</p>")
    db.session.commit()
    waiting = scrape(client)
    assert value(waiting, "pigeonhole_outgoing_messages", state="queued") == 1
    assert deliver_message(reply.id)["sent"] == 1
    after = scrape(client)
    assert value(after, "pigeonhole_send_messages_total", outcome="sent") == sent_before + 1
    assert value(after, "pigeonhole_outgoing_messages", state="queued") == 0
    assert len(relay.messages) == 1


def test_a_forking_worker_s_jobs_are_summed_from_its_files_without_a_file_per_job(app, db, client, tmp_path,
                                                                                monkeypatch):
    """Multiprocess mode: the work horses of `flask worker` write to their worker's files (one set per
    worker, not per job), and `/metrics` in another process adds them up."""
    folder = tmp_path / "metrics"
    folder.mkdir()
    make_user("agent")
    with app.app_context():
        for _ in range(3):
            enqueue("flows", "jobs.ops.ping")
        enqueue("flows", "jobs.no_such_module.nothing")
    env = flask_env(app, tmp_path) | {"PROMETHEUS_MULTIPROC_DIR": str(folder)}
    run = subprocess.run(flask_cmd("worker", "flows", "--burst"), env=env, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    files = sorted(p.name for p in folder.iterdir())
    # The worker's own files and one set for all its horses: 4 jobs did not make 4 sets.
    assert {re.fullmatch(r"[a-z]+_(\d+)(-horse)?\.db", name).group(1) for name in files} == {str(run_pid(run))}
    assert any(name.endswith("-horse.db") for name in files) and len(files) <= 4, files

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))
    text = scrape(client)
    assert value(text, "pigeonhole_jobs_total", queue="flows", outcome="done") == 3
    assert value(text, "pigeonhole_queue_failed_jobs", queue="flows") == 1


def _breaches_in_the_database(db) -> tuple[dict, dict]:
    """Per SLA target: open or pending conversations past its due time now, and the facts' recorded breaches."""
    now = utcnow()
    db.session.expire_all()
    past, recorded = {}, {}
    for target in ("first_response", "next_response", "resolution"):
        due = getattr(Conversation, f"{target}_due_at")
        past[target] = db.session.scalar(select(func.count()).select_from(Conversation).where(
            Conversation.status.in_(("open", "pending")), due.is_not(None), due <= now))
        recorded[target] = db.session.scalar(select(func.count()).select_from(ConversationFacts).where(
            getattr(ConversationFacts, f"{target}_breached").is_(True)))
    return past, recorded


def _scraped_breaches(text: str) -> tuple[dict, dict]:
    targets = ("first_response", "next_response", "resolution")
    return ({t: value(text, "pigeonhole_sla_breached_conversations", target=t) for t in targets},
            {t: value(text, "pigeonhole_sla_breaches_total", target=t) for t in targets})


def test_sla_breaches_agree_with_the_conversations_and_the_reports_facts(app, db, client, desk):
    """Conversations of a queue with a policy, on a Monday long past: one nobody answered, one answered late
    that waits again (both recorded breached by the cron's sweep), one answered in time and resolved two days
    late, one of a queue without a policy. After a merge the merged one's facts leave the count."""
    agent = make_user("agent")
    admin = make_user("admin")
    conversations = {}
    for name in ("unanswered", "waits_again", "resolved_late"):
        conversations[name] = make_conversation(queue=desk["queue"], address=desk["address"], when=MONDAY,
                                                contact_email="carol@example.com")
        _customer(conversations[name], MONDAY)
    _agent(conversations["resolved_late"], agent, MONDAY + timedelta(minutes=30))
    free = make_conversation(queue=make_queue("Returns"), address=desk["address"], when=MONDAY)
    _customer(free, MONDAY)
    db.session.commit()
    assert sla.notify_due(MONDAY + timedelta(minutes=61)) >= 2  # the sweep records the two first responses late
    conversations = {name: db.session.get(Conversation, c.id) for name, c in conversations.items()}
    _agent(conversations["waits_again"], agent, MONDAY + timedelta(minutes=90))
    _customer(conversations["waits_again"], MONDAY + timedelta(hours=2))
    _resolve(conversations["resolved_late"], MONDAY + timedelta(days=2))
    db.session.commit()

    past, recorded = _breaches_in_the_database(db)
    assert past == {"first_response": 1, "next_response": 1, "resolution": 2}
    assert recorded == {"first_response": 2, "next_response": 0, "resolution": 1}
    text = scrape(client)
    assert _scraped_breaches(text) == (past, recorded)
    assert "# TYPE pigeonhole_sla_breaches_total counter" in text
    assert "# TYPE pigeonhole_sla_breached_conversations gauge" in text

    # Merged: the waiting one into the unanswered one; its facts go, the target's judgements combine.
    merging.merge(admin, conversations["waits_again"].id, conversations["unanswered"].id)
    db.session.commit()
    past, recorded = _breaches_in_the_database(db)
    assert recorded["first_response"] == 1 and past["resolution"] == 1
    assert _scraped_breaches(scrape(client)) == (past, recorded)


class _Tables(HTMLParser):
    """The page's tables by id: each row's cell texts (header rows included)."""

    def __init__(self):
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.captions: dict[str, str] = {}
        self._table = self._cell = None
        self._in_caption = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and attrs.get("id"):
            self._table = attrs["id"]
            self.tables[self._table], self.captions[self._table] = [], ""
        elif tag == "caption" and self._table:
            self._in_caption = True
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table:
            self._cell = ""

    def handle_endtag(self, tag):
        if tag == "table":
            self._table = None
        elif tag == "caption":
            self._in_caption = False
        elif tag in ("td", "th") and self._table and self._cell is not None:
            self.tables[self._table][-1].append(" ".join(self._cell.split()))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data
        elif self._in_caption:
            self.captions[self._table] += data


def page_tables(html: str) -> _Tables:
    parser = _Tables()
    parser.feed(html)
    return parser


def test_ops_metrics_shows_every_family_of_the_scrape_as_tables(app, db, client, login_as):
    support = make_address("support@mail.pigeonhole.test")
    raw = message()
    assert ingest(support.id, [RawItem(blob_store().put(raw), len(raw), "cli", "test", raw=raw)])[0].status == "created"
    with app.app_context():
        for _ in range(3):
            enqueue("poll", "jobs.ops.ping")
    login_as("admin")

    response = client.get("/ops/metrics/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    text = scrape(client)
    page = page_tables(html)
    # Every family of the scrape has its table, captioned with its HELP text. (Without the multiprocess mode the
    # text format writes each counter's and histogram's creation time as a `_created` gauge of its own: a
    # sample of that family, not a figure, which the page leaves out.)
    families = {name for name in re.findall(r"^# HELP (\S+) ", text, re.M) if not name.endswith("_created")}
    assert families and {f"metric-{name}" for name in families} == set(page.tables)
    assert "Inbound messages ingested, by outcome." in page.captions["metric-pigeonhole_ingest_messages_total"]

    ingested = page.tables["metric-pigeonhole_ingest_messages_total"]
    assert ingested[0] == ["outcome", "Value"]
    assert ["created", str(int(value(text, "pigeonhole_ingest_messages_total", outcome="created")))] in ingested
    assert ["poll", "3"] in page.tables["metric-pigeonhole_queue_jobs"]
    assert ["database", "1"] in page.tables["metric-pigeonhole_up"]
    # A histogram: count, sum, average and p50/p95 from the buckets (the upper bound of the one holding each).
    latency = page.tables["metric-pigeonhole_ingest_latency_seconds"]
    assert latency[0] == ["Count", "Sum", "Average", "p50", "p95"]
    count = value(text, "pigeonhole_ingest_latency_seconds_count")
    assert count >= 1 and latency[1][0] == str(int(count))
    assert latency[1][1].endswith(" s") and latency[1][3].startswith(("≤ ", "over "))
    requests = page.tables["metric-pigeonhole_http_request_duration_seconds"]
    assert requests[0][:2] == ["endpoint", "method"]
    assert any(row[:2] == ["auth.login", "POST"] and int(row[2]) >= 1 for row in requests)
    # Linked from the Ops page; HTMX refreshes the tables alone.
    assert 'href="/ops/metrics/"' in client.get("/ops/").get_data(as_text=True)
    fragment = client.get("/ops/metrics/", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert 'id="metric-pigeonhole_queue_jobs"' in fragment and "<h1>" not in fragment


def test_the_metrics_page_is_not_for_agents(app, db, client, login_as):
    login_as("agent")
    assert client.get("/ops/metrics/").status_code == 403


def test_the_metrics_page_says_which_part_did_not_answer(app, db, client, login_as):
    login_as("admin")
    assert "did not answer" not in client.get("/ops/metrics/").get_data(as_text=True)
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"  # nothing listens there
    down = client.get("/ops/metrics/")
    html = down.get_data(as_text=True)
    assert down.status_code == 200 and "Redis did not answer: its figures are missing below." in html
    tables = page_tables(html).tables
    assert ["redis", "0"] in tables["metric-pigeonhole_up"] and ["database", "1"] in tables["metric-pigeonhole_up"]
    assert "metric-pigeonhole_queue_jobs" not in tables and "metric-pigeonhole_mailboxes" in tables
