"""channels: address setup wizards (draft rows) and the last Test Connection message

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'address_setups',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('domain_id', sa.Integer(), nullable=False),
        sa.Column('address_id', sa.Integer(), nullable=True),
        sa.Column('values', sa.JSON(), nullable=False),
        sa.Column('password_encrypted', sa.LargeBinary(), nullable=True),
        sa.Column('test_result', sa.JSON(), nullable=True),
        sa.Column('preview_html', sa.Text(), nullable=False),
        sa.Column('preview_version', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['address_id'], ['email_addresses.id'],
                                name=op.f('fk_address_setups_address_id_email_addresses'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['domain_id'], ['domains.id'],
                                name=op.f('fk_address_setups_domain_id_domains'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'],
                                name=op.f('fk_address_setups_user_id_users'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_address_setups')),
    )
    with op.batch_alter_table('email_addresses', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_test_message', sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table('email_addresses', schema=None) as batch_op:
        batch_op.drop_column('last_test_message')
    op.drop_table('address_setups')
