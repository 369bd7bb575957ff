"""wscollide: who last assigned a conversation and set its status, and when.

`conversations.assigned_by_id` / `assigned_at` and `status_by_id` / `status_at` let the workspace
name a colleague's change before an agent overwrites it ("Bea Agent took this 20 s ago").

Revision ID: 0024_wscollide
Revises: 0023_published
"""
from alembic import op
import sqlalchemy as sa


revision = "0024_wscollide"
down_revision = "0023_published"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("assigned_by_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("status_by_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("status_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_foreign_key(op.f("fk_conversations_assigned_by_id_users"), "users", ["assigned_by_id"], ["id"])
        batch.create_foreign_key(op.f("fk_conversations_status_by_id_users"), "users", ["status_by_id"], ["id"])


def downgrade():
    with op.batch_alter_table("conversations") as batch:
        batch.drop_constraint(op.f("fk_conversations_status_by_id_users"), type_="foreignkey")
        batch.drop_constraint(op.f("fk_conversations_assigned_by_id_users"), type_="foreignkey")
        batch.drop_column("status_at")
        batch.drop_column("status_by_id")
        batch.drop_column("assigned_at")
        batch.drop_column("assigned_by_id")
