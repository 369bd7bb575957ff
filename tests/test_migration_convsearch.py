"""Migrations 0041 (convsearch) and 0042 (preview) index and preview the conversations already there, and go down
and up again."""
from __future__ import annotations

from tests.subprocess_env import run_migration_script

# One process (Alembic configures logging globally, so not in the test process).
SCRIPT = """
import json
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, text
from app import create_app
from app.extensions import db

MATCH = "SELECT rowid FROM conversations_fts WHERE conversations_fts MATCH :q ORDER BY rowid DESC"
app = create_app()
with app.app_context():
    upgrade(revision="0040_browserzone")
    with db.engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA foreign_keys=OFF")  # rows of these tables alone (no address, no contact)
        for cid in (1, 2):
            conn.execute(text("INSERT INTO conversations (id, address_id, contact_id, token, subject, status, priority, tags, created_at, "
                              "last_message_at) VALUES (:id, 1, 1, :t, 'Case', 'open', 0, '[]', '2026-01-01 10:00:00', "
                              "'2026-01-01 10:00:00')"), {"id": cid, "t": f"tok{cid}"})
        for mid, cid, body in ((1, 1, "My kettle broke"), (2, 2, "An umbrella question"), (3, 1, "Send a voucher")):
            conn.execute(text("INSERT INTO messages (id, conversation_id, direction, message_id, from_addr, to_addrs, "
                              "cc_addrs, bcc_addrs, reply_to, subject, text, html, created_at, no_auto_reply) VALUES "
                              "(:id, :c, 'in', :mid, 'ann@example.com', 'help@example.com', '', '', '', 'Case', :b, '', "
                              "'2026-01-01 10:00:00', 0)"), {"id": mid, "c": cid, "mid": f"<{mid}@x>", "b": body})
        conn.execute(text("INSERT INTO attachments (message_id, filename, content_type, size, inline, sha256) "
                          "VALUES (2, 'Warranty-Card.pdf', 'application/pdf', 3, 0, 'x')"))
    upgrade()
    with db.engine.connect() as conn:
        found = {q: [r[0] for r in conn.execute(text(MATCH), {"q": q})]
                 for q in ("kettle voucher", "umbrella", "warranty", "case")}
        previews = [list(r) for r in conn.execute(text("SELECT id, preview FROM conversations ORDER BY id"))]
    downgrade(revision="0040_browserzone")
    tables_down = sorted(t for t in inspect(db.engine).get_table_names() if t.endswith("_fts"))
    with db.engine.connect() as conn:
        old = [r[0] for r in conn.execute(text("SELECT rowid FROM messages_fts WHERE messages_fts MATCH 'umbrella'"))]
    upgrade()
    with db.engine.connect() as conn:
        again = [r[0] for r in conn.execute(text(MATCH), {"q": "case"})]
print(json.dumps({"found": found, "previews": previews, "tables_down": tables_down, "old": old, "again": again}))
"""


def test_0041_and_0042_index_and_preview_existing_conversations_and_go_down_and_up(app, tmp_path):
    out = run_migration_script(app, tmp_path, SCRIPT)
    # One document per conversation, keyed by its newest message: words of two messages find it together.
    assert out["found"] == {"kettle voucher": [3], "umbrella": [2], "warranty": [2], "case": [3, 2]}
    assert out["previews"] == [[1, "Send a voucher"], [2, "An umbrella question"]]
    assert out["tables_down"] == ["messages_fts"] and out["old"] == [2]
    assert out["again"] == [3, 2]
