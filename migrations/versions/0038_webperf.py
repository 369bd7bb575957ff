"""webperf: the conversations' sort keys copied onto their tags, for the inbox's tag filter.

`conversation_tags.sort_priority` and `sort_last_at` (the conversation's priority and last
activity) with two indexes, so a tag's page reads the tag's index in the page's order and stops
at the page's end; triggers keep the copies equal to the conversation's. The same objects as
`app.models.organize.TAG_SORT_DDL` (migrations never import app code).

Revision ID: 0038_webperf
Revises: 0037_slafin
"""
from alembic import op
import sqlalchemy as sa


revision = "0038_webperf"
down_revision = "0037_slafin"
branch_labels = None
depends_on = None

TRIGGERS = {
    "sqlite": [
        "CREATE TRIGGER IF NOT EXISTS conversation_tags_sort_ai AFTER INSERT ON conversation_tags BEGIN "
        "UPDATE conversation_tags SET (sort_priority, sort_last_at) = "
        "(SELECT priority, last_message_at FROM conversations WHERE id = new.conversation_id) "
        "WHERE conversation_id = new.conversation_id AND tag = new.tag; END",
        "CREATE TRIGGER IF NOT EXISTS conversations_tags_sort_au AFTER UPDATE OF priority, last_message_at "
        "ON conversations BEGIN UPDATE conversation_tags SET sort_priority = new.priority, "
        "sort_last_at = new.last_message_at WHERE conversation_id = new.id; END",
    ],
    "postgresql": [
        "CREATE OR REPLACE FUNCTION conversation_tags_sort() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "SELECT priority, last_message_at INTO NEW.sort_priority, NEW.sort_last_at FROM conversations "
        "WHERE id = NEW.conversation_id; RETURN NEW; END $$",
        "CREATE TRIGGER conversation_tags_sort_bi BEFORE INSERT ON conversation_tags "
        "FOR EACH ROW EXECUTE FUNCTION conversation_tags_sort()",
        "CREATE OR REPLACE FUNCTION conversations_tags_sort() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "UPDATE conversation_tags SET sort_priority = NEW.priority, sort_last_at = NEW.last_message_at "
        "WHERE conversation_id = NEW.id; RETURN NEW; END $$",
        "CREATE TRIGGER conversations_tags_sort_au AFTER UPDATE OF priority, last_message_at ON conversations "
        "FOR EACH ROW WHEN (NEW.priority IS DISTINCT FROM OLD.priority "
        "OR NEW.last_message_at IS DISTINCT FROM OLD.last_message_at) EXECUTE FUNCTION conversations_tags_sort()",
    ],
}
DROP_TRIGGERS = {
    "sqlite": ["DROP TRIGGER IF EXISTS conversation_tags_sort_ai", "DROP TRIGGER IF EXISTS conversations_tags_sort_au"],
    "postgresql": ["DROP TRIGGER IF EXISTS conversations_tags_sort_au ON conversations",
                   "DROP FUNCTION IF EXISTS conversations_tags_sort()",
                   "DROP TRIGGER IF EXISTS conversation_tags_sort_bi ON conversation_tags",
                   "DROP FUNCTION IF EXISTS conversation_tags_sort()"],
}


def upgrade():
    op.add_column("conversation_tags", sa.Column("sort_priority", sa.Integer(), server_default="0", nullable=False))
    op.add_column("conversation_tags", sa.Column("sort_last_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE conversation_tags SET "
               "sort_priority = (SELECT priority FROM conversations c WHERE c.id = conversation_tags.conversation_id), "
               "sort_last_at = (SELECT last_message_at FROM conversations c WHERE c.id = conversation_tags.conversation_id)")
    op.create_index("ix_conversation_tags_last", "conversation_tags", ["tag", "sort_last_at", "conversation_id"])
    op.create_index("ix_conversation_tags_priority", "conversation_tags",
                    ["tag", "sort_priority", "sort_last_at", "conversation_id"])
    for statement in TRIGGERS.get(op.get_bind().dialect.name, []):
        op.execute(statement)


def downgrade():
    for statement in DROP_TRIGGERS.get(op.get_bind().dialect.name, []):
        op.execute(statement)
    op.drop_index("ix_conversation_tags_priority", table_name="conversation_tags")
    op.drop_index("ix_conversation_tags_last", table_name="conversation_tags")
    with op.batch_alter_table("conversation_tags") as batch:
        batch.drop_column("sort_last_at")
        batch.drop_column("sort_priority")
