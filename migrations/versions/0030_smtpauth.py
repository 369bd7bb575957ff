"""smtpauth: an outgoing server that needs no sign-in, and unguessable wizard ids.

`email_addresses.smtp_no_auth` ("Outgoing server needs no sign-in"): the address sends through its
SMTP server without AUTH (a relay that trusts the network), whatever the mailbox's own sign-in.
`address_setups.token`: the wizard's id in its URLs, random (`secrets.token_urlsafe`), so an old
link never opens another wizard; rows already there get one here.

Revision ID: 0030_smtpauth
Revises: 0029_fwdconfirm
"""
import secrets

from alembic import op
import sqlalchemy as sa


revision = "0030_smtpauth"
down_revision = "0029_fwdconfirm"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("email_addresses") as batch:
        batch.add_column(sa.Column("smtp_no_auth", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("address_setups") as batch:
        batch.add_column(sa.Column("token", sa.String(length=64), nullable=True))
    connection = op.get_bind()
    setups = sa.table("address_setups", sa.column("id", sa.Integer), sa.column("token", sa.String))
    for (setup_id,) in connection.execute(sa.select(setups.c.id)).fetchall():
        connection.execute(setups.update().where(setups.c.id == setup_id).values(token=secrets.token_urlsafe(24)))
    with op.batch_alter_table("address_setups") as batch:
        batch.create_index(batch.f("ix_address_setups_token"), ["token"], unique=True)


def downgrade():
    with op.batch_alter_table("address_setups") as batch:
        batch.drop_index(batch.f("ix_address_setups_token"))
        batch.drop_column("token")
    with op.batch_alter_table("email_addresses") as batch:
        batch.drop_column("smtp_no_auth")
