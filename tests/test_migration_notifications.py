"""Migration 0037 (slafin) moves the SLA's agent notices and the timers' and alerts' user notices into
`notifications` with their kinds, drops the two tables, and goes down and up again."""
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
ROWS = "SELECT user_id, conversation_id, kind, text, read_at IS NOT NULL FROM notifications ORDER BY kind, text"
with app.app_context():
    upgrade(revision="0036_facts")
    with db.engine.begin() as conn:
        conn.execute(text("PRAGMA foreign_keys = OFF"))  # a conversation without its address and domain
        conn.execute(text("INSERT INTO users (id, email, password_hash, role, name, active, email_capacity, "
                          "created_at) VALUES (7, 'ann@example.test', 'x', 'agent', 'Ann', 1, 5, "
                          "'2026-03-01 09:00:00')"))
        conn.execute(text("INSERT INTO contacts (id, email, name, created_at) VALUES (3, 'c@example.com', 'C', "
                          "'2026-03-01 09:00:00')"))
        conn.execute(text("INSERT INTO conversations (id, address_id, contact_id, token, subject, status, "
                          "priority, tags, created_at, last_message_at) VALUES (9, 1, 3, 'tok', 'Parcel', 'open', "
                          "1, '[]', '2026-03-02 09:00:00', '2026-03-02 09:00:00')"))
        conn.execute(text("INSERT INTO notifications (user_id, conversation_id, kind, text, created_at) "
                          "VALUES (7, 9, 'mention', 'Bea mentioned you', '2026-03-02 09:00:00')"))
        conn.execute(text("INSERT INTO agent_notices (user_id, conversation_id, kind, text, created_at, read_at) "
                          "VALUES (7, 9, 'overdue', 'First response overdue: Parcel', '2026-03-02 10:00:00', "
                          "'2026-03-02 10:05:00'), (7, 9, 'at_risk', 'First response due in 10 min: Parcel', "
                          "'2026-03-02 09:50:00', NULL)"))
        conn.execute(text("INSERT INTO user_notices (user_id, conversation_id, text, created_at, dismissed_at) "
                          "VALUES (7, 9, 'Agent Inactivity: back to Support', '2026-03-02 11:00:00', NULL), "
                          "(7, NULL, 'Alert: Backlog of Support is 12', '2026-03-02 12:00:00', "
                          "'2026-03-02 12:30:00')"))
    upgrade()
    with db.engine.connect() as conn:
        up = [list(r) for r in conn.execute(text(ROWS))]
    tables_up = sorted(inspect(db.engine).get_table_names())
    downgrade(revision="0036_facts")
    with db.engine.connect() as conn:
        down = {"notifications": [list(r) for r in conn.execute(text(ROWS))],
                "agent_notices": [list(r) for r in conn.execute(text(
                    "SELECT kind, text, read_at IS NOT NULL FROM agent_notices ORDER BY kind"))],
                "user_notices": [list(r) for r in conn.execute(text(
                    "SELECT conversation_id, text, dismissed_at IS NOT NULL FROM user_notices ORDER BY text"))]}
    upgrade()
print(json.dumps({"up": up, "tables_up": tables_up, "down": down}))
"""


def test_0037_moves_every_notice_into_notifications_and_goes_down_and_up(app, tmp_path):
    out = run_migration_script(app, tmp_path, SCRIPT)
    assert out["up"] == [
        [7, None, "alert", "Alert: Backlog of Support is 12", 1],
        [7, 9, "at_risk", "First response due in 10 min: Parcel", 0],
        [7, 9, "mention", "Bea mentioned you", 0],
        [7, 9, "overdue", "First response overdue: Parcel", 1],
        [7, 9, "timer", "Agent Inactivity: back to Support", 0],
    ]
    assert "agent_notices" not in out["tables_up"] and "user_notices" not in out["tables_up"]
    assert out["down"]["notifications"] == [[7, 9, "mention", "Bea mentioned you", 0]]
    assert out["down"]["agent_notices"] == [["at_risk", "First response due in 10 min: Parcel", 0],
                                            ["overdue", "First response overdue: Parcel", 1]]
    assert out["down"]["user_notices"] == [[9, "Agent Inactivity: back to Support", 0],
                                           [None, "Alert: Backlog of Support is 12", 1]]
