"""organize: the conversations' audit trail, tags in their own indexed table, snooze and merge.

`conversation_events` holds one line per change (assignment, transfer, status, priority, tags,
snooze, merge, split, automation's actions); `conversation_tags` the tags, copied from
`conversations.tags` (which keeps them for display); `conversations.snoozed_until`/`snoozed_by_id`
("Pending until …") and `merged_into_id`; indexes for the inbox's new filters.

Revision ID: 0031_organize
Revises: 0030_smtpauth
"""
import json

from alembic import op
import sqlalchemy as sa


revision = "0031_organize"
down_revision = "0030_smtpauth"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "conversation_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["actor_id"], ["users.id"], name=op.f("fk_conversation_events_actor_id_users"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"],
                                name=op.f("fk_conversation_events_conversation_id_conversations"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversation_events")),
    )
    op.create_index("ix_conversation_events_conversation", "conversation_events", ["conversation_id", "created_at"])
    op.create_index("ix_conversation_events_created", "conversation_events", ["created_at"])
    op.create_table(
        "conversation_tags",
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(length=50), nullable=False),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"],
                                name=op.f("fk_conversation_tags_conversation_id_conversations"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("conversation_id", "tag", name=op.f("pk_conversation_tags")),
    )
    op.create_index("ix_conversation_tags_tag", "conversation_tags", ["tag", "conversation_id"])
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("snoozed_until", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("snoozed_by_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("merged_into_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(op.f("fk_conversations_snoozed_by_id_users"), "users", ["snoozed_by_id"], ["id"],
                                 ondelete="SET NULL")
        batch.create_foreign_key(op.f("fk_conversations_merged_into_id_conversations"), "conversations",
                                 ["merged_into_id"], ["id"], ondelete="SET NULL")
        batch.create_index("ix_conversations_priority_last", ["priority", "last_message_at", "id"])
        batch.create_index("ix_conversations_address_last", ["address_id", "last_message_at"])
        batch.create_index("ix_conversations_snoozed", ["snoozed_until"])
    # Tags that flows set before: the same tags, now filterable.
    conn = op.get_bind()
    tags = sa.table("conversation_tags", sa.column("conversation_id", sa.Integer), sa.column("tag", sa.String))
    rows = []
    for cid, value in conn.execute(sa.text("SELECT id, tags FROM conversations WHERE tags IS NOT NULL")):
        values = json.loads(value) if isinstance(value, str) else value
        seen = set()
        for tag in values or []:
            tag = " ".join(str(tag).split()).lower()[:50]
            if tag and tag not in seen:
                seen.add(tag)
                rows.append({"conversation_id": cid, "tag": tag})
    if rows:
        op.bulk_insert(tags, rows)


def downgrade():
    with op.batch_alter_table("conversations") as batch:
        batch.drop_index("ix_conversations_snoozed")
        batch.drop_index("ix_conversations_address_last")
        batch.drop_index("ix_conversations_priority_last")
        batch.drop_constraint(op.f("fk_conversations_merged_into_id_conversations"), type_="foreignkey")
        batch.drop_constraint(op.f("fk_conversations_snoozed_by_id_users"), type_="foreignkey")
        batch.drop_column("merged_into_id")
        batch.drop_column("snoozed_by_id")
        batch.drop_column("snoozed_until")
    op.drop_index("ix_conversation_tags_tag", table_name="conversation_tags")
    op.drop_table("conversation_tags")
    op.drop_index("ix_conversation_events_created", table_name="conversation_events")
    op.drop_index("ix_conversation_events_conversation", table_name="conversation_events")
    op.drop_table("conversation_events")
