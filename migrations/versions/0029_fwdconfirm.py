"""fwdconfirm: forwarding guidance for platform addresses.

`inbound_raws.forwarded_for`: the contact-center address an arrival was forwarded from (its
headers), for the Forwarding status of an address. `forwarding_confirmations`: a provider's
"confirm forwarding" mail (Gmail's), kept for the admins with its link and code, not a conversation.

Revision ID: 0029_fwdconfirm
Revises: 0028_editorimages
"""
from alembic import op
import sqlalchemy as sa


revision = "0029_fwdconfirm"
down_revision = "0028_editorimages"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("inbound_raws") as batch:
        batch.add_column(sa.Column("forwarded_for", sa.String(length=320), nullable=True))
    op.create_table(
        "forwarding_confirmations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("address_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("requested_by", sa.String(length=320), nullable=True),
        sa.Column("link", sa.Text(), nullable=True),
        sa.Column("code", sa.String(length=40), nullable=True),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("dismissed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dismissed_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["address_id"], ["email_addresses.id"],
                                name=op.f("fk_forwarding_confirmations_address_id_email_addresses"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"],
                                name=op.f("fk_forwarding_confirmations_message_id_messages"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["dismissed_by_id"], ["users.id"],
                                name=op.f("fk_forwarding_confirmations_dismissed_by_id_users"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_forwarding_confirmations")),
    )
    op.create_index(op.f("ix_forwarding_confirmations_address_id"), "forwarding_confirmations", ["address_id"])


def downgrade():
    op.drop_index(op.f("ix_forwarding_confirmations_address_id"), table_name="forwarding_confirmations")
    op.drop_table("forwarding_confirmations")
    with op.batch_alter_table("inbound_raws") as batch:
        batch.drop_column("forwarded_for")
