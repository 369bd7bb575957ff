"""inbound: raw arrivals, message classification and dedupe, channel sessions, mailbox sync start

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'inbound_raws',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('address_id', sa.Integer(), nullable=False),
        sa.Column('source', sa.String(length=10), nullable=False),
        sa.Column('source_ref', sa.String(length=300), nullable=True),
        sa.Column('raw_sha256', sa.String(length=64), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('envelope_from', sa.Text(), nullable=True),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('message_row_id', sa.Integer(), nullable=True),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('processed_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['address_id'], ['email_addresses.id'],
                                name=op.f('fk_inbound_raws_address_id_email_addresses'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['message_row_id'], ['messages.id'],
                                name=op.f('fk_inbound_raws_message_row_id_messages'), ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_inbound_raws')),
    )
    with op.batch_alter_table('inbound_raws', schema=None) as batch_op:
        batch_op.create_index('ix_inbound_raws_status_received', ['status', 'received_at'], unique=False)

    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('visible_text', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('classification', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('no_auto_reply', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('dedupe_key', sa.String(length=300), nullable=True))
        batch_op.create_unique_constraint('uq_messages_address_dedupe', ['address_id', 'dedupe_key'])

    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_key', sa.String(length=320), nullable=True))
        batch_op.create_index('ix_conversations_contact_address', ['contact_id', 'address_id'], unique=False)

    with op.batch_alter_table('mailbox_states', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sync_since', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('mailbox_states', schema=None) as batch_op:
        batch_op.drop_column('sync_since')

    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.drop_index('ix_conversations_contact_address')
        batch_op.drop_column('session_key')

    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_constraint('uq_messages_address_dedupe', type_='unique')
        batch_op.drop_column('dedupe_key')
        batch_op.drop_column('no_auto_reply')
        batch_op.drop_column('classification')
        batch_op.drop_column('visible_text')

    with op.batch_alter_table('inbound_raws', schema=None) as batch_op:
        batch_op.drop_index('ix_inbound_raws_status_received')

    op.drop_table('inbound_raws')
