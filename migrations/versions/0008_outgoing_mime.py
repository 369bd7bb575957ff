"""outgoing mime: the bytes of an outgoing message in the same transaction as its row
(they were a blob-store file written, and fsynced twice, before the row's commit).

Messages queued before this revision keep theirs in the blob store (`messages.raw_sha256`);
the send job reads either.

Revision ID: 0008
Revises: 0007
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'outgoing_mime',
        sa.Column('message_id', sa.Integer(), nullable=False),
        sa.Column('data', sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(['message_id'], ['messages.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('message_id'),
    )


def downgrade():
    op.drop_table('outgoing_mime')
