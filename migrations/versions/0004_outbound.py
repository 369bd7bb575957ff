"""outbound: delivery state of outgoing messages (attempts, backoff, claim lease, server reply)

Revision ID: 0004
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("delivery_attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("claim_token", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("smtp_code", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("smtp_reply", sa.Text(), nullable=True))
        batch.create_index("ix_messages_delivery_due", ["delivery_status", "next_attempt_at"], unique=False)


def downgrade():
    with op.batch_alter_table("messages") as batch:
        batch.drop_index("ix_messages_delivery_due")
        for name in ("smtp_reply", "smtp_code", "claimed_until", "claim_token", "last_attempt_at",
                     "next_attempt_at", "delivery_attempts"):
            batch.drop_column(name)
