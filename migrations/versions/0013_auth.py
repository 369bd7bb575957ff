"""auth: server-side sign-in sessions, and failed sign-ins told to the account's owner.

`user_sessions` holds one row per sign-in on one browser (the hashes of its session key and of its
rotating "Keep me signed in" secret): deleting it ends that session. `users.failed_signins` and
`users.last_failed_signin_at` count the refused or wrong attempts on an account since its last
sign-in, which the next sign-in reports. Sessions signed in before this migration end with it.

Revision ID: 0013_auth
Revises: 0012_mailbox_health
"""
from alembic import op
import sqlalchemy as sa


revision = '0013_auth'
down_revision = '0012_mailbox_health'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'user_sessions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('key_hash', sa.String(length=64), nullable=False),
        sa.Column('remember_hash', sa.String(length=64), nullable=True),
        sa.Column('previous_remember_hash', sa.String(length=64), nullable=True),
        sa.Column('rotated_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('client_address', sa.String(length=64), nullable=False),
        sa.Column('user_agent', sa.String(length=300), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_user_sessions_user_id_users'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_user_sessions')),
        sa.UniqueConstraint('key_hash', name=op.f('uq_user_sessions_key_hash')),
    )
    op.create_index(op.f('ix_user_sessions_user_id'), 'user_sessions', ['user_id'], unique=False)
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('failed_signins', sa.Integer(), server_default='0', nullable=False))
        batch.add_column(sa.Column('last_failed_signin_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('users') as batch:
        batch.drop_column('last_failed_signin_at')
        batch.drop_column('failed_signins')
    op.drop_index(op.f('ix_user_sessions_user_id'), table_name='user_sessions')
    op.drop_table('user_sessions')
