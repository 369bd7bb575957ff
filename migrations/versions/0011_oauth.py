"""OAuth 2.0 mailboxes: how an address signs in, and its tokens.

`email_addresses.auth_method` is "password" (every existing address) or "oauth";
`oauth_provider` names the provider setting. `oauth_credentials` holds one row of
encrypted tokens per OAuth address, with its status ("active", "sign_in_needed").

Revision ID: 0011_oauth
Revises: 0010
"""
from alembic import op
import sqlalchemy as sa


revision = "0011_oauth"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("email_addresses") as batch:
        batch.add_column(sa.Column("auth_method", sa.String(length=20), nullable=False, server_default="password"))
        batch.add_column(sa.Column("oauth_provider", sa.String(length=40), nullable=True))
    op.create_table(
        "oauth_credentials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("address_id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("subject", sa.String(length=320), nullable=True),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("access_token_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("refresh_token_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("status_message", sa.Text(), nullable=True),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["address_id"], ["email_addresses.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("address_id"),
    )


def downgrade():
    op.drop_table("oauth_credentials")
    with op.batch_alter_table("email_addresses") as batch:
        batch.drop_column("oauth_provider")
        batch.drop_column("auth_method")
