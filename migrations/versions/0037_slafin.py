"""slafin: one table of in-app notifications. `agent_notices` (the SLA's at-risk and overdue notices) and
`user_notices` (timers' and alerts' notices) move into `notifications` with their kind, and go. And the
reports' index by the day received covers the SLA's judgements (SLA attainment reads it alone).

`notifications.conversation_id` may be empty (a queue's alert is about no conversation). A user notice
with a conversation becomes kind "timer", one without "alert"; dismissed becomes read. Down moves them
back by kind (the mentions stay).

Revision ID: 0037_slafin
Revises: 0036_facts
"""
from alembic import op
import sqlalchemy as sa


revision = "0037_slafin"
down_revision = "0036_facts"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
BREAKDOWN = ["queue_id", "agent_id", "address_id", "intent"]


def upgrade():
    with op.batch_alter_table("notifications") as batch:
        batch.alter_column("conversation_id", existing_type=sa.Integer(), nullable=True)
    op.execute("INSERT INTO notifications (user_id, conversation_id, kind, text, created_at, read_at) "
               "SELECT user_id, conversation_id, kind, text, created_at, read_at FROM agent_notices ORDER BY id")
    op.execute("INSERT INTO notifications (user_id, conversation_id, kind, text, created_at, read_at) "
               "SELECT user_id, conversation_id, CASE WHEN conversation_id IS NULL THEN 'alert' ELSE 'timer' END, "
               "text, created_at, dismissed_at FROM user_notices ORDER BY id")
    op.drop_index("ix_agent_notices_user", table_name="agent_notices")
    op.drop_table("agent_notices")
    op.drop_index("ix_user_notices_user", table_name="user_notices")
    op.drop_table("user_notices")
    op.drop_index("ix_conversation_facts_created", table_name="conversation_facts")
    op.create_index("ix_conversation_facts_created", "conversation_facts",
                    ["created_at", *BREAKDOWN, "first_response_breached", "resolution_breached"])


def downgrade():
    op.drop_index("ix_conversation_facts_created", table_name="conversation_facts")
    op.create_index("ix_conversation_facts_created", "conversation_facts", ["created_at", *BREAKDOWN])
    op.create_table(
        "agent_notices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("read_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_agent_notices_user_id_users"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"],
                                name=op.f("fk_agent_notices_conversation_id_conversations"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_notices")),
    )
    op.create_index("ix_agent_notices_user", "agent_notices", ["user_id", "created_at"])
    op.create_table(
        "user_notices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("dismissed_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_user_notices_user_id_users"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"],
                                name=op.f("fk_user_notices_conversation_id_conversations"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_notices")),
    )
    op.create_index("ix_user_notices_user", "user_notices", ["user_id", "dismissed_at"])
    op.execute("INSERT INTO agent_notices (user_id, conversation_id, kind, text, created_at, read_at) "
               "SELECT user_id, conversation_id, kind, text, created_at, read_at FROM notifications "
               "WHERE kind IN ('at_risk', 'overdue') ORDER BY id")
    op.execute("INSERT INTO user_notices (user_id, conversation_id, text, created_at, dismissed_at) "
               "SELECT user_id, conversation_id, text, created_at, read_at FROM notifications "
               "WHERE kind IN ('timer', 'alert') ORDER BY id")
    op.execute("DELETE FROM notifications WHERE kind IN ('at_risk', 'overdue', 'timer', 'alert')")
    with op.batch_alter_table("notifications") as batch:
        batch.alter_column("conversation_id", existing_type=sa.Integer(), nullable=False)
