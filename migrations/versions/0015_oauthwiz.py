"""oauth wizard: the "Sign in with …" step of the address wizard keeps its state on the wizard's row.

`address_setups.oauth_state` is the OAuth `state` of a sign-in under way (what the
callback finds the wizard by); `oauth_sign_in` holds the rest as JSON: the provider,
the PKCE verifier (encrypted), when it started, and once the provider answered, the
tokens (encrypted) and the signed-in mailbox, until saving the wizard keeps them.

Revision ID: 0015_oauthwiz
Revises: 0014_probeguard
"""
from alembic import op
import sqlalchemy as sa


revision = "0015_oauthwiz"
down_revision = "0014_probeguard"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("address_setups") as batch:
        batch.add_column(sa.Column("oauth_state", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("oauth_sign_in", sa.JSON(), nullable=True))
        batch.create_index(batch.f("ix_address_setups_oauth_state"), ["oauth_state"], unique=True)


def downgrade():
    with op.batch_alter_table("address_setups") as batch:
        batch.drop_index(batch.f("ix_address_setups_oauth_state"))
        batch.drop_column("oauth_sign_in")
        batch.drop_column("oauth_state")
