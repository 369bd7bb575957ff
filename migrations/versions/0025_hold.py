"""hold: what a disabled address does with new mail ("hold" it for later, or "refuse" it with 550).

`email_addresses.when_disabled` is a draft column like the others (published through the
snapshot); existing addresses get "hold", the default, in their draft. Their published
snapshots say nothing until the next Publish, and the runtime reads that as "refuse", what
they did when published. Held mail is an `inbound_raws` row with status "held" (no schema change).

Revision ID: 0025_hold
Revises: 0024_wscollide
"""
from alembic import op
import sqlalchemy as sa


revision = "0025_hold"
down_revision = "0024_wscollide"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("email_addresses") as batch:
        batch.add_column(sa.Column("when_disabled", sa.String(length=10), nullable=False, server_default="hold"))


def downgrade():
    with op.batch_alter_table("email_addresses") as batch:
        batch.drop_column("when_disabled")
