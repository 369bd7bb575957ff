"""The search index's merge (SQLite): cron enqueues it once per SEARCH_MERGE_SECONDS, a real worker runs it,
and the index's segments end as one while every search answers as before; PostgreSQL has nothing to merge."""
from __future__ import annotations

import subprocess

from sqlalchemy import text

from app.inbox.lists import list_inbox
from app.inbox.search import MERGE_KEY, enqueue_index_merge, merge_index
from app.queues import redis_connection
from tests.factories import make_address, make_conversation, make_message, make_queue, make_user
from tests.subprocess_env import flask_cmd, flask_env

WORDS = ["parcel", "refund", "invoice", "kettle", "umbrella"]


def _segments(db) -> int:
    """The FTS5 index's segments (b-trees): each has rows of its own in the `_idx` shadow table."""
    return db.session.scalar(text("SELECT count(DISTINCT segid) FROM conversations_fts_idx"))


def _mail(db):
    """Forty conversations with a message each and a second on every fourth (one updates the document),
    each committed on its own, as ingest writes them: every commit adds a segment to the index."""
    agent = make_user("agent")
    queue = make_queue("Support", members=[agent])
    address = make_address("help@mail.pigeonhole.test", queues=[queue])
    for i in range(40):
        conversation = make_conversation(queue=queue, address=address, subject=f"Case {i}")
        make_message(conversation, text=f"My {WORDS[i % 5]} number {i}")
        if i % 4 == 0:
            make_message(conversation, text=f"Also the {WORDS[(i + 1) % 5]}")
    return agent


def _answers(agent) -> dict[str, list[int]]:
    return {q: [r.conversation.id for r in list_inbox(agent, q=q, status=None).rows]
            for q in WORDS + ["umbrel", "refund invoice", "number"]}


def test_merge_leaves_one_segment_and_the_same_answers(app, db):
    agent = _mail(db)
    if db.engine.dialect.name != "sqlite":
        assert merge_index() == 0 and enqueue_index_merge() is False  # GIN's pending list: autovacuum's
        return
    before, segments = _answers(agent), _segments(db)
    assert segments > 1 and len(before["number"]) == 40 and len(before["refund invoice"]) == 2
    assert merge_index(pages=1) >= 1  # in steps of its own transaction each, until nothing is left
    assert _segments(db) == 1 and _answers(agent) == before
    assert merge_index() == 0  # nothing left to merge
    make_message(make_conversation(subject="Late"), text="An umbrella again")  # writes go on as before
    assert _segments(db) == 2 and len(_answers(agent)["umbrella"]) == len(before["umbrella"])


def test_cron_enqueues_the_merge_once_per_period_and_a_worker_runs_it(app, db, tmp_path):
    if db.engine.dialect.name != "sqlite":
        assert enqueue_index_merge() is False
        return
    agent = _mail(db)
    before = _answers(agent)
    app.config["SEARCH_MERGE_SECONDS"] = 3600
    connection = redis_connection()
    connection.delete(MERGE_KEY)
    assert enqueue_index_merge() is True
    assert enqueue_index_merge() is False  # within the period: not again, whichever cron process ticks
    assert 0 < connection.ttl(MERGE_KEY) <= 3600
    run = subprocess.run(flask_cmd("worker", "poll", "--burst"), env=flask_env(app, tmp_path),
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    db.session.expire_all()
    assert _segments(db) == 1 and _answers(agent) == before
