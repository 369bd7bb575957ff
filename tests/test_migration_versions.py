"""Migration 0027 (versions) numbers the publish records made before it, in order, and goes down and up again."""
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
    upgrade(revision="0025_hold")
    with db.engine.begin() as conn:
        for when, comment in (("2026-01-02 10:00:00", "second"), ("2026-01-01 10:00:00", "first"),
                              ("2026-01-03 10:00:00", "third")):
            conn.execute(text("INSERT INTO publish_records (comment, changes, created_at) VALUES (:c, '[]', :w)"),
                         {"c": comment, "w": when})
    upgrade()
    with db.engine.connect() as conn:
        numbered = [list(r) for r in conn.execute(text("SELECT comment, number, snapshot FROM publish_records "
                                                       "ORDER BY number"))]
    downgrade(revision="0025_hold")
    down = sorted(c["name"] for c in inspect(db.engine).get_columns("publish_records"))
    tables_down = sorted(inspect(db.engine).get_table_names())
    upgrade()
print(json.dumps({"numbered": numbered, "down": down, "tables_down": tables_down}))
"""


def test_0027_numbers_existing_records_and_goes_down_and_up(app, tmp_path):
    out = run_migration_script(app, tmp_path, SCRIPT)
    assert out["numbered"] == [["first", 1, None], ["second", 2, None], ["third", 3, None]]
    assert "number" not in out["down"] and "snapshot" not in out["down"]
    assert "publish_requests" not in out["tables_down"] and "publish_settings" not in out["tables_down"]
