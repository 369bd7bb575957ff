"""Migration 0004 (outbound delivery columns) goes down and up again cleanly."""
from __future__ import annotations

from tests.subprocess_env import run_migration_script

COLUMNS = {"delivery_attempts", "next_attempt_at", "last_attempt_at", "claim_token", "claimed_until", "smtp_code",
           "smtp_reply"}

# One process (Alembic configures logging globally, so not in the test process): up, down to 0003, up.
SCRIPT = """
import json
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect
from app import create_app
from app.extensions import db

def shape():
    insp = inspect(db.engine)
    return [sorted(c["name"] for c in insp.get_columns("messages")),
            sorted(i["name"] for i in insp.get_indexes("messages"))]

app = create_app()
with app.app_context():
    steps = []
    upgrade(); steps.append(shape())
    downgrade(revision="0003"); steps.append(shape())
    upgrade(); steps.append(shape())
print(json.dumps(steps))
"""


def test_0004_downgrade_and_upgrade(app, tmp_path):
    steps = run_migration_script(app, tmp_path, SCRIPT)
    for (columns, indexes), present in zip(steps, (True, False, True)):
        assert (COLUMNS <= set(columns)) is present and bool(COLUMNS & set(columns)) is present
        assert ("ix_messages_delivery_due" in indexes) is present and "delivery_status" in columns
