"""Migration 0038 (webperf) copies each tagged conversation's sort keys onto its tags, its triggers keep them
equal afterwards, and it goes down and up again."""
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
    upgrade(revision="0037_slafin")
    with db.engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA foreign_keys = OFF")  # (no address needed for what this test reads)
        conn.execute(text("INSERT INTO contacts (id, email, name, created_at) VALUES (1, 'c@example.com', 'C', "
                          "'2026-01-01 09:00:00')"))
        for cid, priority, when in ((1, 2, "2026-01-02 10:00:00.000000"), (2, -1, "2026-01-03 10:00:00.000000")):
            conn.execute(text("INSERT INTO conversations (id, address_id, contact_id, token, subject, status, priority, "
                              "tags, created_at, last_message_at) VALUES (:id, 1, 1, :token, 's', 'open', :p, "
                              "'[]', :w, :w)"), {"id": cid, "token": f"t{cid}", "p": priority, "w": when})
            conn.execute(text("INSERT INTO conversation_tags (conversation_id, tag) VALUES (:id, 'vip')"), {"id": cid})
    upgrade()
    rows = lambda: [list(r) for r in db.session.execute(text(
        "SELECT conversation_id, sort_priority, sort_last_at FROM conversation_tags ORDER BY conversation_id"))]
    copied = rows()
    db.session.execute(text("UPDATE conversations SET priority = 1, last_message_at = '2026-01-04 10:00:00.000000' "
                            "WHERE id = 2"))
    db.session.execute(text("INSERT INTO conversation_tags (conversation_id, tag) VALUES (1, 'late')"))
    db.session.commit()
    followed = rows()
    db.session.remove()
    downgrade(revision="0037_slafin")
    down = sorted(c["name"] for c in inspect(db.engine).get_columns("conversation_tags"))
    upgrade()
print(json.dumps({"copied": copied, "followed": followed, "down": down}))
"""


def test_0038_copies_the_sort_keys_onto_existing_tags_and_goes_down_and_up(app, tmp_path):
    out = run_migration_script(app, tmp_path, SCRIPT)
    assert out["copied"] == [[1, 2, "2026-01-02 10:00:00.000000"], [2, -1, "2026-01-03 10:00:00.000000"]]
    assert out["followed"] == [[1, 2, "2026-01-02 10:00:00.000000"], [1, 2, "2026-01-02 10:00:00.000000"],
                               [2, 1, "2026-01-04 10:00:00.000000"]]
    assert out["down"] == ["conversation_id", "tag"]
