"""suppress: the suppression list of recipients whose mail bounced.

One row per lower-cased address: the last bounce's kind, status and reason, first and last
bounce times, the soft bounces within the window, when it was suppressed (NULL: counting soft
bounces only, or cleared), the delivery report and our outgoing message it came from, and who
cleared it.

Revision ID: 0021_suppress
Revises: 0020_sendtest
"""
from alembic import op
import sqlalchemy as sa


revision = "0021_suppress"
down_revision = "0020_sendtest"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "suppressions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("first_bounce_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_bounce_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("soft_bounce_count", sa.Integer(), nullable=False),
        sa.Column("soft_bounce_times", sa.JSON(), nullable=False),
        sa.Column("suppressed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("source_message_id", sa.Integer(), nullable=True),
        sa.Column("outgoing_message_id", sa.Integer(), nullable=True),
        sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cleared_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["source_message_id"], ["messages.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["outgoing_message_id"], ["messages.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["cleared_by_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("email"),
    )
    op.create_index("ix_suppressions_last_bounce_at", "suppressions", ["last_bounce_at"])


def downgrade():
    op.drop_index("ix_suppressions_last_bounce_at", table_name="suppressions")
    op.drop_table("suppressions")
