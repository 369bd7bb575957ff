"""facts: `conversation_facts`, one row per conversation for the reports and the live dashboard.

Also an index of the messages by time (the Dashboard's last hour). Filled as things happen (app.runtime.facts); `flask reports backfill` fills it for the
conversations that existed before this migration.

Revision ID: 0036_facts
Revises: 0035_escalation
"""
from alembic import op
import sqlalchemy as sa


revision = "0036_facts"
down_revision = "0035_escalation"
branch_labels = None
depends_on = None


def upgrade():
    when = sa.DateTime(timezone=True)
    op.create_table(
        "conversation_facts",
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("created_at", when, nullable=False),
        sa.Column("queue_id", sa.Integer(), nullable=True),
        sa.Column("address_id", sa.Integer(), nullable=True),
        sa.Column("intent", sa.String(length=100), nullable=True),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("first_customer_message_at", when, nullable=True),
        sa.Column("last_customer_message_at", when, nullable=True),
        sa.Column("first_response_at", when, nullable=True),
        sa.Column("last_response_at", when, nullable=True),
        sa.Column("resolved_at", when, nullable=True),
        sa.Column("first_response_seconds", sa.Integer(), nullable=True),
        sa.Column("resolution_seconds", sa.Integer(), nullable=True),
        sa.Column("reopened_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("reply_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("messages_in", sa.Integer(), server_default="0", nullable=False),
        sa.Column("first_response_breached", sa.Boolean(), nullable=True),
        sa.Column("next_response_breached", sa.Boolean(), nullable=True),
        sa.Column("resolution_breached", sa.Boolean(), nullable=True),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"],
                                name=op.f("fk_conversation_facts_conversation_id_conversations"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["queue_id"], ["queues.id"], name=op.f("fk_conversation_facts_queue_id_queues"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["address_id"], ["email_addresses.id"],
                                name=op.f("fk_conversation_facts_address_id_email_addresses"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["agent_id"], ["users.id"], name=op.f("fk_conversation_facts_agent_id_users"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("conversation_id", name=op.f("pk_conversation_facts")),
    )
    # Covering: a report reads a period's rows from the index alone.
    breakdown = ["queue_id", "agent_id", "address_id", "intent"]
    op.create_index("ix_conversation_facts_created", "conversation_facts", ["created_at", *breakdown])
    op.create_index("ix_conversation_facts_first_response", "conversation_facts",
                    ["first_response_at", "first_response_seconds", *breakdown])
    op.create_index("ix_conversation_facts_resolved", "conversation_facts",
                    ["resolved_at", "resolution_seconds", *breakdown])
    op.create_index("ix_conversation_facts_queue_status", "conversation_facts", ["queue_id", "status"])
    # The Dashboard's last hour and replies today read a time range of the messages.
    op.create_index("ix_messages_created", "messages", ["created_at", "direction"])


def downgrade():
    op.drop_index("ix_messages_created", table_name="messages")
    for name in ("ix_conversation_facts_queue_status", "ix_conversation_facts_resolved",
                 "ix_conversation_facts_first_response", "ix_conversation_facts_created"):
        op.drop_index(name, table_name="conversation_facts")
    op.drop_table("conversation_facts")
