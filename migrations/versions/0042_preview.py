"""preview: each conversation keeps the start of its newest message's text for the lists' rows.

`conversations.preview`: the first 300 characters of the newest message that is neither an internal
note nor an automatic reply (by time, then id), filled here for the conversations already there and
kept by triggers on `messages` (SQLite triggers; a PostgreSQL trigger function). The inbox rows read
it instead of looking up each row's newest message. The same objects as `app.models.inbox`
(`PREVIEW_DDL`; migrations never import app code).

Revision ID: 0042_preview
Revises: 0041_convsearch
"""
from alembic import op
import sqlalchemy as sa


revision = "0042_preview"
down_revision = "0041_convsearch"
branch_labels = None
depends_on = None

PREVIEW = ("(SELECT substr(m.text, 1, 300) FROM messages m WHERE m.conversation_id = conversations.id "
           "AND m.direction <> 'note' AND coalesce(m.classification, '') <> 'auto_reply' "
           "ORDER BY m.created_at DESC, m.id DESC LIMIT 1)")
COLUMNS = "text, direction, classification, created_at, conversation_id"


def _preview_of(conversation):
    return f"UPDATE conversations SET preview = {PREVIEW} WHERE id = {conversation};"


DDL = {
    "sqlite": [
        f"CREATE TRIGGER IF NOT EXISTS messages_preview_ai AFTER INSERT ON messages BEGIN "
        f"{_preview_of('new.conversation_id')} END",
        f"CREATE TRIGGER IF NOT EXISTS messages_preview_au AFTER UPDATE OF {COLUMNS} ON messages BEGIN "
        f"{_preview_of('old.conversation_id')} {_preview_of('new.conversation_id')} END",
        f"CREATE TRIGGER IF NOT EXISTS messages_preview_ad AFTER DELETE ON messages BEGIN "
        f"{_preview_of('old.conversation_id')} END",
    ],
    "postgresql": [
        "CREATE OR REPLACE FUNCTION messages_preview() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"IF TG_OP <> 'INSERT' THEN {_preview_of('OLD.conversation_id')} END IF; "
        "IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.conversation_id IS DISTINCT FROM OLD.conversation_id) "
        f"THEN {_preview_of('NEW.conversation_id')} END IF; RETURN NULL; END $$",
        "DROP TRIGGER IF EXISTS messages_preview_aiud ON messages",
        f"CREATE TRIGGER messages_preview_aiud AFTER INSERT OR DELETE OR UPDATE OF {COLUMNS} ON messages "
        "FOR EACH ROW EXECUTE FUNCTION messages_preview()",
    ],
}
DROP = {
    "sqlite": ["DROP TRIGGER IF EXISTS messages_preview_ai", "DROP TRIGGER IF EXISTS messages_preview_au",
               "DROP TRIGGER IF EXISTS messages_preview_ad"],
    "postgresql": ["DROP TRIGGER IF EXISTS messages_preview_aiud ON messages",
                   "DROP FUNCTION IF EXISTS messages_preview()"],
}


def _run(statements):
    for statement in statements.get(op.get_bind().dialect.name, []):
        op.execute(statement)


def upgrade():
    op.add_column("conversations", sa.Column("preview", sa.Text(), nullable=True))
    op.execute(f"UPDATE conversations SET preview = {PREVIEW}")
    _run(DDL)


def downgrade():
    _run(DROP)
    # SQLite drops the column in place (3.35+): a batch rebuild of `conversations` would drop the triggers
    # on it and break those on `conversation_tags` that read it (0038, 0039).
    op.execute("ALTER TABLE conversations DROP COLUMN preview")
