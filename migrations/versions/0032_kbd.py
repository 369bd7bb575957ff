"""kbd: blank drafts, and "Mine" as agents' landing view.

`drafts.blank`: the draft holds nothing its author wrote (a composer opened and left); such a
draft is not listed or counted in Drafts, and is discarded when its composer is left. Drafts
that exist already count as written.

Agents land on the inbox's "Mine" view: an agent whose start page is still the default
("inbox", all conversations) gets "inbox_mine"; other roles keep theirs.

Revision ID: 0032_kbd
Revises: 0031_organize
"""
from alembic import op
import sqlalchemy as sa


revision = "0032_kbd"
down_revision = "0031_organize"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("drafts") as batch:
        batch.add_column(sa.Column("blank", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.execute("UPDATE users SET landing_view = 'inbox_mine' WHERE role = 'agent' AND landing_view = 'inbox'")


def downgrade():
    op.execute("UPDATE users SET landing_view = 'inbox' WHERE role = 'agent' AND landing_view = 'inbox_mine'")
    with op.batch_alter_table("drafts") as batch:
        batch.drop_column("blank")
