"""sla: service-level policies per queue, each conversation's due times and breaches, agents' in-app notices.

Revision ID: 0034_sla
Revises: 0033_contacts
"""
from alembic import op
import sqlalchemy as sa


revision = "0034_sla"
down_revision = "0033_contacts"
branch_labels = None
depends_on = None

_TIMES = ("sla_waiting_since", "first_response_at", "resolved_at", "first_response_due_at", "next_response_due_at",
          "resolution_due_at", "sla_due_at", "sla_warn_at", "first_response_breached_at",
          "next_response_breached_at", "resolution_breached_at", "sla_warned_for", "sla_overdue_for")


def upgrade():
    op.create_table(
        "sla_policies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("queue_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=True),
        sa.Column("tag", sa.String(length=50), nullable=True),
        sa.Column("first_response_minutes", sa.Integer(), nullable=True),
        sa.Column("next_response_minutes", sa.Integer(), nullable=True),
        sa.Column("resolution_minutes", sa.Integer(), nullable=True),
        sa.Column("warning_minutes", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["queue_id"], ["queues.id"], name=op.f("fk_sla_policies_queue_id_queues"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sla_policies")),
    )
    op.create_index("ix_sla_policies_queue", "sla_policies", ["queue_id"])
    op.create_table(
        "agent_notices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_agent_notices_user_id_users"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"],
                                name=op.f("fk_agent_notices_conversation_id_conversations"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_notices")),
    )
    op.create_index("ix_agent_notices_user", "agent_notices", ["user_id", "created_at"])
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("sla_policy_id", sa.Integer(), nullable=True))
        for name in _TIMES:
            batch.add_column(sa.Column(name, sa.DateTime(timezone=True), nullable=True))
        batch.create_foreign_key(op.f("fk_conversations_sla_policy_id_sla_policies"), "sla_policies",
                                 ["sla_policy_id"], ["id"], ondelete="SET NULL")
        batch.create_index("ix_conversations_sla_due", ["sla_due_at"])


def downgrade():
    with op.batch_alter_table("conversations") as batch:
        batch.drop_index("ix_conversations_sla_due")
        batch.drop_constraint(op.f("fk_conversations_sla_policy_id_sla_policies"), type_="foreignkey")
        for name in reversed(_TIMES):
            batch.drop_column(name)
        batch.drop_column("sla_policy_id")
    op.drop_index("ix_agent_notices_user", table_name="agent_notices")
    op.drop_table("agent_notices")
    op.drop_index("ix_sla_policies_queue", table_name="sla_policies")
    op.drop_table("sla_policies")
