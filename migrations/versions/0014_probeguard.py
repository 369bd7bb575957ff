"""probeguard: "Allow unencrypted sign-in" on an address.

`email_addresses.allow_plaintext_auth` (draft, published with the rest): the mailbox's password may
go to its servers on a connection without SSL or STARTTLS. Off for every existing address: one
that signs in without encryption to a server other than loopback stops until an admin ticks it and
publishes.

Revision ID: 0014_probeguard
Revises: 0013_auth
"""
from alembic import op
import sqlalchemy as sa


revision = "0014_probeguard"
down_revision = "0013_auth"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("email_addresses") as batch:
        batch.add_column(sa.Column("allow_plaintext_auth", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade():
    with op.batch_alter_table("email_addresses") as batch:
        batch.drop_column("allow_plaintext_auth")
