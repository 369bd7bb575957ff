"""dkim: the DKIM keys of the sending domains, and the signature each sent message carried.

`dkim_keys` holds one encrypted private key per (domain, selector) with the status of its
last DNS check and whether it is the domain's active (signing) key. `messages.dkim_signature`
is the DKIM-Signature header a message was sent with (NULL: unsigned).

Revision ID: 0016_dkim
Revises: 0015_oauthwiz
"""
from alembic import op
import sqlalchemy as sa


revision = "0016_dkim"
down_revision = "0015_oauthwiz"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "dkim_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("domain", sa.String(length=253), nullable=False),
        sa.Column("selector", sa.String(length=63), nullable=False),
        sa.Column("private_key_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("status_detail", sa.Text(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("last_checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("domain", "selector", name="uq_dkim_keys_domain_selector"),
    )
    op.create_index("ix_dkim_keys_domain", "dkim_keys", ["domain"])
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("dkim_signature", sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("dkim_signature")
    op.drop_index("ix_dkim_keys_domain", table_name="dkim_keys")
    op.drop_table("dkim_keys")
