"""flows: intents and their trained model, run log, Email Blocklist, automatic-mail ledger;
queue calendars and acknowledgements, agents' last assignment, conversation intent.

Revision ID: 0006
Revises: 0005
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('intents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('examples', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_intents')),
    sa.UniqueConstraint('name', name=op.f('uq_intents_name'))
    )
    op.create_table('intent_models',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('algorithm', sa.String(length=200), nullable=False),
    sa.Column('labels', sa.JSON(), nullable=False),
    sa.Column('parameters', sa.JSON(), nullable=False),
    sa.Column('example_count', sa.Integer(), nullable=False),
    sa.Column('examples_sha256', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_intent_models_created_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_intent_models'))
    )
    op.create_table('blocklist_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('address_id', sa.Integer(), nullable=False),
    sa.Column('value', sa.String(length=320), nullable=False),
    sa.Column('source', sa.String(length=10), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['address_id'], ['email_addresses.id'], name=op.f('fk_blocklist_entries_address_id_email_addresses'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_blocklist_entries_created_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_blocklist_entries')),
    sa.UniqueConstraint('address_id', 'value', name=op.f('uq_blocklist_entries_address_id'))
    )
    op.create_table('automatic_mails',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('recipient', sa.String(length=320), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=True),
    sa.Column('message_id', sa.Integer(), nullable=True),
    sa.Column('address_id', sa.Integer(), nullable=True),
    sa.Column('queue_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['address_id'], ['email_addresses.id'], name=op.f('fk_automatic_mails_address_id_email_addresses'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], name=op.f('fk_automatic_mails_conversation_id_conversations'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_automatic_mails_message_id_messages'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['queue_id'], ['queues.id'], name=op.f('fk_automatic_mails_queue_id_queues'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_automatic_mails'))
    )
    with op.batch_alter_table('automatic_mails', schema=None) as batch_op:
        batch_op.create_index('ix_automatic_mails_recipient_created', ['recipient', 'created_at'], unique=False)

    op.create_table('flow_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=True),
    sa.Column('flow_id', sa.Integer(), nullable=True),
    sa.Column('flow_name', sa.String(length=200), nullable=False),
    sa.Column('outcome', sa.String(length=20), nullable=False),
    sa.Column('intent', sa.String(length=100), nullable=True),
    sa.Column('intent_confidence', sa.Float(), nullable=True),
    sa.Column('matched', sa.JSON(), nullable=False),
    sa.Column('actions', sa.JSON(), nullable=False),
    sa.Column('notes', sa.JSON(), nullable=False),
    sa.Column('duration_ms', sa.Float(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], name=op.f('fk_flow_runs_conversation_id_conversations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['flow_id'], ['flows.id'], name=op.f('fk_flow_runs_flow_id_flows'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_flow_runs_message_id_messages'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_flow_runs')),
    sa.UniqueConstraint('message_id', name=op.f('uq_flow_runs_message_id'))
    )
    with op.batch_alter_table('flow_runs', schema=None) as batch_op:
        batch_op.create_index('ix_flow_runs_conversation_created', ['conversation_id', 'created_at'], unique=False)

    # Columns on existing tables: NOT NULL ones get a server default for the rows already there.
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('intent', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('intent_confidence', sa.Float(), nullable=True))

    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('automatic', sa.String(length=20), nullable=True))

    with op.batch_alter_table('queues', schema=None) as batch_op:
        batch_op.add_column(sa.Column('time_zone', sa.String(length=64), nullable=False, server_default='UTC'))
        batch_op.add_column(sa.Column('business_hours', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('ack_enabled', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('ack_subject', sa.String(length=300), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('ack_body_html', sa.Text(), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('ack_interval_minutes', sa.Integer(), nullable=False, server_default='1440'))
        batch_op.add_column(sa.Column('outbound_address_ids', sa.JSON(), nullable=False, server_default='[]'))

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_assigned_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('last_assigned_at')

    with op.batch_alter_table('queues', schema=None) as batch_op:
        batch_op.drop_column('outbound_address_ids')
        batch_op.drop_column('ack_interval_minutes')
        batch_op.drop_column('ack_body_html')
        batch_op.drop_column('ack_subject')
        batch_op.drop_column('ack_enabled')
        batch_op.drop_column('business_hours')
        batch_op.drop_column('time_zone')

    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_column('automatic')

    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.drop_column('intent_confidence')
        batch_op.drop_column('intent')

    with op.batch_alter_table('flow_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_flow_runs_conversation_created')

    op.drop_table('flow_runs')
    with op.batch_alter_table('automatic_mails', schema=None) as batch_op:
        batch_op.drop_index('ix_automatic_mails_recipient_created')

    op.drop_table('automatic_mails')
    op.drop_table('blocklist_entries')
    op.drop_table('intent_models')
    op.drop_table('intents')
