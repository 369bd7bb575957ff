"""search2: the conversation's status, queue and assignee copied onto its tags, beside the sort keys.

`conversation_tags.sort_status`, `sort_queue_id` and `sort_assignee_id` (the conversation's own,
kept equal by the triggers of 0038, which now copy them too), at the end of the two indexes of a
tag's page: the page tells the conversations of another status or that the agent may not see from
the tag's index alone, and looks up in `conversations` only those it may list. The same objects as
`app.models.organize.TAG_SORT_DDL` (migrations never import app code).

Revision ID: 0039_search2
Revises: 0038_webperf
"""
from alembic import op
import sqlalchemy as sa


revision = "0039_search2"
down_revision = "0038_webperf"
branch_labels = None
depends_on = None

COPIES = ("sort_priority", "sort_last_at", "sort_status", "sort_queue_id", "sort_assignee_id")
SOURCES = ("priority", "last_message_at", "status", "queue_id", "assignee_id")
INDEXES = {"ix_conversation_tags_last": ["tag", "sort_last_at", "conversation_id"],
           "ix_conversation_tags_priority": ["tag", "sort_priority", "sort_last_at", "conversation_id"]}
FILTERS = ["sort_status", "sort_queue_id", "sort_assignee_id"]


def _triggers(copies, sources):
    """0038's triggers, copying `sources` of the conversation into `copies` of its tags."""
    targets, values = ", ".join(copies), ", ".join(sources)
    assign = ", ".join(f"{c} = NEW.{s}" for c, s in zip(copies, sources))
    changed = " OR ".join(f"NEW.{s} IS DISTINCT FROM OLD.{s}" for s in sources)
    return {
        "sqlite": [
            "CREATE TRIGGER IF NOT EXISTS conversation_tags_sort_ai AFTER INSERT ON conversation_tags BEGIN "
            f"UPDATE conversation_tags SET ({targets}) = (SELECT {values} FROM conversations WHERE id = new.conversation_id) "
            "WHERE conversation_id = new.conversation_id AND tag = new.tag; END",
            f"CREATE TRIGGER IF NOT EXISTS conversations_tags_sort_au AFTER UPDATE OF {values} "
            f"ON conversations BEGIN UPDATE conversation_tags SET {assign.replace('NEW.', 'new.')} "
            "WHERE conversation_id = new.id; END",
        ],
        "postgresql": [
            "CREATE OR REPLACE FUNCTION conversation_tags_sort() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"SELECT {values} INTO {', '.join('NEW.' + c for c in copies)} FROM conversations "
            "WHERE id = NEW.conversation_id; RETURN NEW; END $$",
            "CREATE TRIGGER conversation_tags_sort_bi BEFORE INSERT ON conversation_tags "
            "FOR EACH ROW EXECUTE FUNCTION conversation_tags_sort()",
            "CREATE OR REPLACE FUNCTION conversations_tags_sort() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"UPDATE conversation_tags SET {assign} WHERE conversation_id = NEW.id; RETURN NEW; END $$",
            f"CREATE TRIGGER conversations_tags_sort_au AFTER UPDATE OF {values} ON conversations "
            f"FOR EACH ROW WHEN ({changed}) EXECUTE FUNCTION conversations_tags_sort()",
        ],
    }


DROP_TRIGGERS = {
    "sqlite": ["DROP TRIGGER IF EXISTS conversation_tags_sort_ai", "DROP TRIGGER IF EXISTS conversations_tags_sort_au"],
    "postgresql": ["DROP TRIGGER IF EXISTS conversations_tags_sort_au ON conversations",
                   "DROP TRIGGER IF EXISTS conversation_tags_sort_bi ON conversation_tags"],
}


def _run(statements):
    for statement in statements.get(op.get_bind().dialect.name, []):
        op.execute(statement)


def upgrade():
    _run(DROP_TRIGGERS)
    op.add_column("conversation_tags", sa.Column("sort_status", sa.String(20), nullable=True))
    op.add_column("conversation_tags", sa.Column("sort_queue_id", sa.Integer(), nullable=True))
    op.add_column("conversation_tags", sa.Column("sort_assignee_id", sa.Integer(), nullable=True))
    op.execute("UPDATE conversation_tags SET " + ", ".join(
        f"{c} = (SELECT {s} FROM conversations c WHERE c.id = conversation_tags.conversation_id)"
        for c, s in zip(FILTERS, SOURCES[2:])))
    for name, columns in INDEXES.items():
        op.drop_index(name, table_name="conversation_tags")
        op.create_index(name, "conversation_tags", columns + FILTERS)
    _run(_triggers(COPIES, SOURCES))


def downgrade():
    _run(DROP_TRIGGERS)
    for name in INDEXES:
        op.drop_index(name, table_name="conversation_tags")
    with op.batch_alter_table("conversation_tags") as batch:
        for column in reversed(FILTERS):
            batch.drop_column(column)
    for name, columns in INDEXES.items():
        op.create_index(name, "conversation_tags", columns)
    _run(_triggers(COPIES[:2], SOURCES[:2]))
