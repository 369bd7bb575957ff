"""Migration 0039 (search2) copies each tagged conversation's status, queue and assignee onto its tags, its
triggers keep them (and the sort keys) equal afterwards, and it goes down (0038's triggers still working) and up."""
from __future__ import annotations

from tests.subprocess_env import run_migration_script

# One process (Alembic configures logging globally, so not in the test process).
SCRIPT = """
import json
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, text
from app import create_app
from app.extensions import db

app = create_app()
with app.app_context():
    upgrade(revision="0038_webperf")
    with db.engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA foreign_keys = OFF")  # (no address, queue or user needed for what this reads)
        conn.execute(text("INSERT INTO contacts (id, email, name, created_at) VALUES (1, 'c@example.com', 'C', "
                          "'2026-01-01 09:00:00')"))
        for cid, status, queue in ((1, "open", 3), (2, "pending", None)):
            conn.execute(text("INSERT INTO conversations (id, address_id, contact_id, token, subject, status, priority, "
                              "queue_id, tags, created_at, last_message_at) VALUES (:id, 1, 1, :token, 's', :s, 0, :q, "
                              "'[]', '2026-01-02 10:00:00.000000', '2026-01-02 10:00:00.000000')"),
                         {"id": cid, "token": f"t{cid}", "s": status, "q": queue})
            conn.execute(text("INSERT INTO conversation_tags (conversation_id, tag) VALUES (:id, 'vip')"), {"id": cid})
    upgrade()
    rows = lambda: [list(r) for r in db.session.execute(text(
        "SELECT conversation_id, sort_priority, sort_status, sort_queue_id, sort_assignee_id FROM conversation_tags "
        "ORDER BY conversation_id, tag"))]
    copied = rows()
    db.session.execute(text("UPDATE conversations SET status = 'resolved', queue_id = 4, assignee_id = 7 WHERE id = 2"))
    db.session.execute(text("UPDATE conversations SET priority = 2 WHERE id = 1"))
    db.session.execute(text("INSERT INTO conversation_tags (conversation_id, tag) VALUES (1, 'late')"))
    db.session.commit()
    followed = rows()
    db.session.remove()
    downgrade(revision="0038_webperf")
    down = sorted(c["name"] for c in inspect(db.engine).get_columns("conversation_tags"))
    db.session.execute(text("UPDATE conversations SET priority = 1 WHERE id = 2"))
    db.session.execute(text("INSERT INTO conversation_tags (conversation_id, tag) VALUES (2, 'late')"))
    db.session.commit()
    down_follows = [list(r) for r in db.session.execute(text(
        "SELECT conversation_id, tag, sort_priority FROM conversation_tags WHERE conversation_id = 2 ORDER BY tag"))]
    db.session.remove()
    upgrade()
print(json.dumps({"copied": copied, "followed": followed, "down": down, "down_follows": down_follows}))
"""


def test_0039_copies_status_queue_and_assignee_onto_existing_tags_and_goes_down_and_up(app, tmp_path):
    out = run_migration_script(app, tmp_path, SCRIPT)
    assert out["copied"] == [[1, 0, "open", 3, None], [2, 0, "pending", None, None]]
    assert out["followed"] == [[1, 2, "open", 3, None], [1, 2, "open", 3, None], [2, 0, "resolved", 4, 7]]
    assert out["down"] == ["conversation_id", "sort_last_at", "sort_priority", "tag"]
    assert out["down_follows"] == [[2, "late", 1], [2, "vip", 1]]
