"""inbound fidelity: where a message's sender was taken from, and the parser's notes.

`messages.sender_source` is NULL when the sender is the From header, else the header the
sender was taken from ("sender", "reply-to", "return-path"); `messages.parse_notes` keeps
the parser's defects and fallbacks (one per line: charsets guessed, header block recovered...).

Revision ID: 0010
Revises: 0009
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('messages') as batch:
        batch.add_column(sa.Column('sender_source', sa.String(length=20), nullable=True))
        batch.add_column(sa.Column('parse_notes', sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table('messages') as batch:
        batch.drop_column('parse_notes')
        batch.drop_column('sender_source')
