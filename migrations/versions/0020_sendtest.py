"""sendtest: test emails sent from an address ("Send test email", `flask mail send-test`).

`send_tests` holds each test message outside conversations: the address, who asked, the
recipient, the rendered bytes, and the same delivery columns as `messages`.

Revision ID: 0020_sendtest
Revises: 0019_msapp
"""
from alembic import op
import sqlalchemy as sa


revision = "0020_sendtest"
down_revision = "0019_msapp"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "send_tests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("address_id", sa.Integer(), nullable=False),
        sa.Column("requested_by_id", sa.Integer(), nullable=True),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("from_addr", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("message_id", sa.String(length=998), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivery_status", sa.String(length=20), nullable=False),
        sa.Column("delivery_attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claim_token", sa.String(length=40), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("smtp_code", sa.Integer(), nullable=True),
        sa.Column("smtp_reply", sa.Text(), nullable=True),
        sa.Column("delivery_error", sa.Text(), nullable=True),
        sa.Column("dkim_signature", sa.Text(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["address_id"], ["email_addresses.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["requested_by_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_send_tests_address_id", "send_tests", ["address_id"])
    op.create_index("ix_send_tests_requested_by_created", "send_tests", ["requested_by_id", "created_at"])
    op.create_index("ix_send_tests_delivery_due", "send_tests", ["delivery_status", "next_attempt_at"])


def downgrade():
    op.drop_index("ix_send_tests_delivery_due", table_name="send_tests")
    op.drop_index("ix_send_tests_requested_by_created", table_name="send_tests")
    op.drop_index("ix_send_tests_address_id", table_name="send_tests")
    op.drop_table("send_tests")
