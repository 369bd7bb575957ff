"""versions: each Publish is a numbered version with a snapshot; Publish approvals.

`publish_records` gains `number` (versions counted from 1; existing records are numbered in
the order they were made), `snapshot` (the whole published configuration after that Publish;
none for records made before this) and `approved_by_id`. `publish_settings` holds the
"Publish approvals" switch; `publish_requests` the Publish requests waiting for a second admin.

Revision ID: 0027_versions
Revises: 0025_hold
"""
from alembic import op
import sqlalchemy as sa


revision = "0027_versions"
down_revision = "0025_hold"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("publish_records") as batch:
        batch.add_column(sa.Column("number", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("snapshot", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("approved_by_id", sa.Integer(), nullable=True))
        batch.create_unique_constraint(op.f("uq_publish_records_number"), ["number"])
        batch.create_foreign_key(op.f("fk_publish_records_approved_by_id_users"), "users", ["approved_by_id"], ["id"])
    records = sa.table("publish_records", sa.column("id", sa.Integer()), sa.column("number", sa.Integer()),
                       sa.column("created_at", sa.DateTime(timezone=True)))
    conn = op.get_bind()
    ids = conn.execute(sa.select(records.c.id).order_by(records.c.created_at, records.c.id)).scalars().all()
    for number, record_id in enumerate(ids, start=1):
        conn.execute(records.update().where(records.c.id == record_id).values(number=number))

    op.create_table(
        "publish_settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("approvals_required", sa.Boolean(), nullable=False),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["updated_by_id"], ["users.id"], name=op.f("fk_publish_settings_updated_by_id_users"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_publish_settings")),
    )
    op.create_table(
        "publish_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("requester_id", sa.Integer(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("expected", sa.JSON(), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("record_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["requester_id"], ["users.id"], name=op.f("fk_publish_requests_requester_id_users"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["decided_by_id"], ["users.id"], name=op.f("fk_publish_requests_decided_by_id_users"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["record_id"], ["publish_records.id"],
                                name=op.f("fk_publish_requests_record_id_publish_records"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_publish_requests")),
    )
    op.create_index(op.f("ix_publish_requests_status"), "publish_requests", ["status"])


def downgrade():
    op.drop_index(op.f("ix_publish_requests_status"), table_name="publish_requests")
    op.drop_table("publish_requests")
    op.drop_table("publish_settings")
    with op.batch_alter_table("publish_records") as batch:
        batch.drop_constraint(op.f("fk_publish_records_approved_by_id_users"), type_="foreignkey")
        batch.drop_constraint(op.f("uq_publish_records_number"), type_="unique")
        batch.drop_column("approved_by_id")
        batch.drop_column("snapshot")
        batch.drop_column("number")
