"""accounts: profiles, one-time password-reset links and the audit log of account changes.

`users` gains what a profile sets (signature, time zone, landing view) and when the account was
deactivated. `password_resets` holds the SHA-256 of each one-time link's token; `audit_entries`
records every change to an account (who, what, to whom, details without secrets).

Revision ID: 0017_accounts
Revises: 0016_dkim
"""
from alembic import op
import sqlalchemy as sa


revision = '0017_accounts'
down_revision = '0016_dkim'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('signature_html', sa.Text(), server_default='', nullable=False))
        batch.add_column(sa.Column('time_zone', sa.String(length=64), server_default='UTC', nullable=False))
        batch.add_column(sa.Column('landing_view', sa.String(length=40), server_default='inbox', nullable=False))
        batch.add_column(sa.Column('deactivated_at', sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        'password_resets',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_password_resets_user_id_users'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_password_resets_created_by_id_users'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_password_resets')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_password_resets_token_hash')),
    )
    op.create_index(op.f('ix_password_resets_user_id'), 'password_resets', ['user_id'], unique=False)
    op.create_table(
        'audit_entries',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('actor_id', sa.Integer(), nullable=True),
        sa.Column('action', sa.String(length=40), nullable=False),
        sa.Column('target_user_id', sa.Integer(), nullable=True),
        sa.Column('details', sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_audit_entries_actor_id_users'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['target_user_id'], ['users.id'],
                                name=op.f('fk_audit_entries_target_user_id_users'), ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_entries')),
    )
    op.create_index(op.f('ix_audit_entries_created_at'), 'audit_entries', ['created_at'], unique=False)
    op.create_index('ix_audit_entries_target_created', 'audit_entries', ['target_user_id', 'created_at'],
                    unique=False)


def downgrade():
    op.drop_index('ix_audit_entries_target_created', table_name='audit_entries')
    op.drop_index(op.f('ix_audit_entries_created_at'), table_name='audit_entries')
    op.drop_table('audit_entries')
    op.drop_index(op.f('ix_password_resets_user_id'), table_name='password_resets')
    op.drop_table('password_resets')
    with op.batch_alter_table('users') as batch:
        batch.drop_column('deactivated_at')
        batch.drop_column('landing_view')
        batch.drop_column('time_zone')
        batch.drop_column('signature_html')
