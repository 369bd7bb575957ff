"""published: the ingress finds an address by its published name; a default queue for unrouted mail.

`email_addresses.live_address` is the address as last published (lower-cased; None when never
published), filled here from each row's `published` snapshot: the ingress looks recipients up by
it, so a draft rename is not live before Publish. `queues.is_default` marks the queue that mail
matching no flow lands in.

Revision ID: 0023_published
Revises: 0022_inauth
"""
from alembic import op
import sqlalchemy as sa


revision = "0023_published"
down_revision = "0022_inauth"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("email_addresses") as batch:
        batch.add_column(sa.Column("live_address", sa.String(length=320), nullable=True))
        batch.create_index("ix_email_addresses_live_address", ["live_address"], unique=False)
    with op.batch_alter_table("queues") as batch:
        batch.add_column(sa.Column("is_default", sa.Boolean(), nullable=False, server_default=sa.false()))
    addresses = sa.table("email_addresses", sa.column("id", sa.Integer), sa.column("published", sa.JSON),
                         sa.column("live_address", sa.String))
    conn = op.get_bind()
    for row in conn.execute(sa.select(addresses.c.id, addresses.c.published)).all():
        name = (row.published or {}).get("address")
        if name:
            conn.execute(addresses.update().where(addresses.c.id == row.id).values(live_address=name.strip().lower()))


def downgrade():
    with op.batch_alter_table("queues") as batch:
        batch.drop_column("is_default")
    with op.batch_alter_table("email_addresses") as batch:
        batch.drop_index("ix_email_addresses_live_address")
        batch.drop_column("live_address")
