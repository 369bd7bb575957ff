"""Migration 0040 (browserzone): users still on the old default UTC who never changed their zone in the
Profile (no audited change of it) become "not chosen" and follow their browser; one who changed it and
came back to UTC, and every other zone, stay chosen. It goes down (UTC again) and up."""
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
    upgrade(revision="0039_search2")
    with db.engine.begin() as conn:
        for uid, zone in ((1, "UTC"), (2, "UTC"), (3, "UTC"), (4, "Europe/Paris")):
            conn.execute(text("INSERT INTO users (id, email, name, password_hash, role, active, email_capacity, "
                              "created_at, time_zone) VALUES (:id, :email, 'U', 'x', 'agent', true, 5, "
                              "'2026-01-01 09:00:00.000000', :zone)"), {"id": uid, "email": f"u{uid}@example.test", "zone": zone})
        # 2 went to Tokyo and back to UTC; 3 only renamed themselves; 1 never saved the profile.
        for uid, fields in ((2, ["time_zone"]), (2, ["name", "time_zone"]), (3, ["name"]), (4, ["time_zone"])):
            conn.execute(text("INSERT INTO audit_entries (created_at, actor_id, action, target_user_id, details) "
                              "VALUES ('2026-01-02 09:00:00.000000', :id, 'profile_edit', :id, :details)"),
                         {"id": uid, "details": json.dumps({"fields": fields})})
    upgrade()
    zones = lambda: [list(r) for r in db.session.execute(text("SELECT id, time_zone FROM users ORDER BY id"))]
    up = zones()
    columns = {c["name"]: c["nullable"] for c in inspect(db.engine).get_columns("users")}
    db.session.execute(text("UPDATE users SET browser_time_zone = 'Asia/Tokyo' WHERE id = 1"))
    db.session.commit()
    db.session.remove()
    downgrade(revision="0039_search2")
    down = zones()
    down_columns = sorted(c["name"] for c in inspect(db.engine).get_columns("users") if "zone" in c["name"])
    db.session.remove()
    upgrade()
print(json.dumps({"up": up, "nullable": columns["time_zone"], "browser": "browser_time_zone" in columns,
                  "down": down, "down_columns": down_columns}))
"""


def test_0040_leaves_users_who_never_chose_utc_unchosen_keeps_the_rest_and_goes_down_and_up(app, tmp_path):
    out = run_migration_script(app, tmp_path, SCRIPT)
    assert out["up"] == [[1, None], [2, "UTC"], [3, None], [4, "Europe/Paris"]]
    assert out["nullable"] is True and out["browser"] is True
    assert out["down"] == [[1, "UTC"], [2, "UTC"], [3, "UTC"], [4, "Europe/Paris"]]
    assert out["down_columns"] == ["time_zone"]
