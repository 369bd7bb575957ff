"""inauth: sender authentication of inbound mail.

`messages.auth_*` hold the SPF, DKIM and DMARC verdicts of an inbound message (result, the
domain each was about, a short reason) and the own domain its From domain imitates;
`inbound_raws.client_ip` / `helo` keep the ingress's SMTP client for the SPF check.

Revision ID: 0022_inauth
Revises: 0021_suppress
"""
from alembic import op
import sqlalchemy as sa


revision = "0022_inauth"
down_revision = "0021_suppress"
branch_labels = None
depends_on = None

_MESSAGE_COLUMNS = (("auth_spf", sa.String(length=12)), ("auth_spf_domain", sa.String(length=253)),
                    ("auth_dkim", sa.String(length=12)), ("auth_dkim_domain", sa.String(length=253)),
                    ("auth_dmarc", sa.String(length=12)), ("auth_from_domain", sa.String(length=253)),
                    ("auth_reason", sa.Text()), ("auth_lookalike", sa.String(length=253)))


def upgrade():
    with op.batch_alter_table("messages") as batch:
        for name, type_ in _MESSAGE_COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))
    with op.batch_alter_table("inbound_raws") as batch:
        batch.add_column(sa.Column("client_ip", sa.String(length=45), nullable=True))
        batch.add_column(sa.Column("helo", sa.String(length=255), nullable=True))


def downgrade():
    with op.batch_alter_table("inbound_raws") as batch:
        batch.drop_column("helo")
        batch.drop_column("client_ip")
    with op.batch_alter_table("messages") as batch:
        for name, _type in reversed(_MESSAGE_COLUMNS):
            batch.drop_column(name)
