"""escalation: timed rules per queue (Agent Inactivity, Customer Idle, Auto Expire, On Close), their steps
per conversation episode, alert rules per queue, and in-app notices to users.

Revision ID: 0035_escalation
Revises: 0034_sla
"""
from alembic import op
import sqlalchemy as sa


revision = "0035_escalation"
down_revision = "0034_sla"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade():
    op.create_table(
        "queue_timers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("queue_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("response_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["queue_id"], ["queues.id"], name=op.f("fk_queue_timers_queue_id_queues"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["response_id"], ["standard_responses.id"],
                                name=op.f("fk_queue_timers_response_id_standard_responses"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_timers")),
        sa.UniqueConstraint("queue_id", "kind", name="uq_queue_timers_queue_kind"),
    )
    op.create_table(
        "timer_steps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("episode", sa.Integer(), nullable=False),
        sa.Column("done_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"],
                                name=op.f("fk_timer_steps_conversation_id_conversations"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_timer_steps")),
        sa.UniqueConstraint("conversation_id", "kind", "episode", name="uq_timer_steps_step"),
    )
    op.create_table(
        "queue_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("queue_id", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(length=30), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("target_minutes", sa.Integer(), nullable=False),
        sa.Column("window_minutes", sa.Integer(), nullable=False),
        sa.Column("emails", sa.Text(), nullable=False),
        sa.Column("in_breach", sa.Boolean(), nullable=False),
        sa.Column("changed_at", TS, nullable=True),
        sa.Column("last_value", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["queue_id"], ["queues.id"], name=op.f("fk_queue_alerts_queue_id_queues"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_alerts")),
    )
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


def downgrade():
    op.drop_index("ix_user_notices_user", table_name="user_notices")
    op.drop_table("user_notices")
    op.drop_table("queue_alerts")
    op.drop_table("timer_steps")
    op.drop_table("queue_timers")
