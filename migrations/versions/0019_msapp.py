"""msapp: a custom domain of type "Microsoft Exchange" keeps its app-only sign-in.

`domains.ms_app_tenant`, `ms_app_client_id` and `ms_app_client_secret_encrypted` (Fernet,
app/crypto.py) are the Entra app registration whose client-credentials tokens open the
domain's mailboxes (docs/oauth.md, "Microsoft Exchange, app-only"). All NULL: a plain custom
domain, whose app-only addresses (if any) use the `OAUTH_MICROSOFT_APP_*` settings.

Revision ID: 0019_msapp
Revises: 0018_opssignals
"""
from alembic import op
import sqlalchemy as sa


revision = "0019_msapp"
down_revision = "0018_opssignals"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("domains") as batch:
        batch.add_column(sa.Column("ms_app_tenant", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("ms_app_client_id", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("ms_app_client_secret_encrypted", sa.LargeBinary(), nullable=True))


def downgrade():
    with op.batch_alter_table("domains") as batch:
        batch.drop_column("ms_app_client_secret_encrypted")
        batch.drop_column("ms_app_client_id")
        batch.drop_column("ms_app_tenant")
