"""inbox speed: partial index of failed and bounced messages by conversation (the inbox's
"Not delivered" marker found without reading every message of each listed conversation).

Revision ID: 0009
Revises: 0008
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

FAILED = "delivery_status IN ('failed', 'bounced')"


def upgrade():
    op.create_index('ix_messages_delivery_failed', 'messages', ['conversation_id'], unique=False,
                    sqlite_where=sa.text(FAILED), postgresql_where=sa.text(FAILED))


def downgrade():
    op.drop_index('ix_messages_delivery_failed', table_name='messages')
