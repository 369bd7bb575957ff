"""ops signals: admins are told once per episode when an OAuth mailbox needs a new sign-in.

`oauth_credentials.alerted_at` is when admins were told that the credential turned
"Sign-in needed" (NULL: not told, or signed in again since).

Revision ID: 0018_opssignals
Revises: 0017_accounts
"""
from alembic import op
import sqlalchemy as sa


revision = "0018_opssignals"
down_revision = "0017_accounts"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("oauth_credentials") as batch:
        batch.add_column(sa.Column("alerted_at", sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table("oauth_credentials") as batch:
        batch.drop_column("alerted_at")
