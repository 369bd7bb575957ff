"""mailbox health: poll failures admins are told about, a private CA, SMTP sign-in and the Sent folder per address.

`mailbox_states.failing_since` is when the polls of a mailbox started failing (NULL while
they work), `alerted_at` when admins were told. `email_addresses` gain the outgoing
server's own sign-in (`smtp_username`, `smtp_password_encrypted`, NULL: the mailbox's), a
private CA (`tls_ca_pem`) and `save_to_sent`; `address_setups` keep a typed SMTP password
encrypted like the mailbox's.

Revision ID: 0012_mailbox_health
Revises: 0011_oauth
"""
from alembic import op
import sqlalchemy as sa


revision = "0012_mailbox_health"
down_revision = "0011_oauth"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("mailbox_states") as batch:
        batch.add_column(sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("alerted_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("email_addresses") as batch:
        batch.add_column(sa.Column("smtp_username", sa.String(length=320), nullable=True))
        batch.add_column(sa.Column("smtp_password_encrypted", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("tls_ca_pem", sa.Text(), nullable=True))
        batch.add_column(sa.Column("save_to_sent", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("address_setups") as batch:
        batch.add_column(sa.Column("smtp_password_encrypted", sa.LargeBinary(), nullable=True))


def downgrade():
    with op.batch_alter_table("address_setups") as batch:
        batch.drop_column("smtp_password_encrypted")
    with op.batch_alter_table("email_addresses") as batch:
        batch.drop_column("save_to_sent")
        batch.drop_column("tls_ca_pem")
        batch.drop_column("smtp_password_encrypted")
        batch.drop_column("smtp_username")
    with op.batch_alter_table("mailbox_states") as batch:
        batch.drop_column("alerted_at")
        batch.drop_column("failing_since")
