"""workspace: inbox indexes, unread markers, draft links, queue addresses, full-text search

Revision ID: 0005
Revises: 0004

Full-text search: on SQLite an FTS5 table with external content (`messages`) kept up to
date by triggers; on PostgreSQL a GIN index on the tsvector expression that
`app.inbox.search` queries. The statements are spelled out here on purpose (a migration
never imports app code); `app/models/inbox.py` holds the same ones for `create_all()`.
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

FTS_COLUMNS = "subject, text, from_addr, to_addrs"
SQLITE_FTS = [
    f"CREATE VIRTUAL TABLE IF NOT EXISTS messages_fts USING fts5({FTS_COLUMNS}, content='messages', "
    "content_rowid='id', tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER IF NOT EXISTS messages_fts_ai AFTER INSERT ON messages BEGIN "
    f"INSERT INTO messages_fts(rowid, {FTS_COLUMNS}) "
    "VALUES (new.id, new.subject, new.text, new.from_addr, new.to_addrs); END",
    "CREATE TRIGGER IF NOT EXISTS messages_fts_ad AFTER DELETE ON messages BEGIN "
    f"INSERT INTO messages_fts(messages_fts, rowid, {FTS_COLUMNS}) "
    "VALUES ('delete', old.id, old.subject, old.text, old.from_addr, old.to_addrs); END",
    "CREATE TRIGGER IF NOT EXISTS messages_fts_au AFTER UPDATE OF subject, text, from_addr, to_addrs "
    "ON messages BEGIN "
    f"INSERT INTO messages_fts(messages_fts, rowid, {FTS_COLUMNS}) "
    "VALUES ('delete', old.id, old.subject, old.text, old.from_addr, old.to_addrs); "
    f"INSERT INTO messages_fts(rowid, {FTS_COLUMNS}) "
    "VALUES (new.id, new.subject, new.text, new.from_addr, new.to_addrs); END",
    # Index what was there before this migration.
    "INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')",
]
PG_FTS = [
    "CREATE INDEX IF NOT EXISTS ix_messages_fts ON messages USING gin (to_tsvector('simple', "
    "coalesce(subject, '') || ' ' || coalesce(text, '') || ' ' || coalesce(from_addr, '') || ' ' || "
    "coalesce(to_addrs, '')))",
]


def upgrade():
    op.create_table(
        'conversation_seen',
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('conversation_id', sa.Integer(), nullable=False),
        sa.Column('seen_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'],
                                name=op.f('fk_conversation_seen_conversation_id_conversations'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'],
                                name=op.f('fk_conversation_seen_user_id_users'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('user_id', 'conversation_id', name=op.f('pk_conversation_seen')),
    )
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('nickname', sa.String(length=100), server_default='', nullable=False))
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.create_index('ix_conversations_last_id', ['last_message_at', 'id'], unique=False)
        batch_op.create_index('ix_conversations_queue_last', ['queue_id', 'last_message_at'], unique=False)
        batch_op.create_index('ix_conversations_assignee_last', ['assignee_id', 'last_message_at'], unique=False)
        batch_op.create_index('ix_conversations_contact', ['contact_id'], unique=False)
    with op.batch_alter_table('drafts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reply_to_message_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('queue_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('base_message_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_drafts_reply_to_message_id_messages'), 'messages',
                                    ['reply_to_message_id'], ['id'], ondelete='SET NULL')
        batch_op.create_foreign_key(batch_op.f('fk_drafts_queue_id_queues'), 'queues',
                                    ['queue_id'], ['id'], ondelete='SET NULL')

    dialect = op.get_bind().dialect.name
    for statement in SQLITE_FTS if dialect == 'sqlite' else PG_FTS if dialect == 'postgresql' else []:
        op.execute(statement)


def downgrade():
    dialect = op.get_bind().dialect.name
    if dialect == 'sqlite':
        op.execute("DROP TABLE IF EXISTS messages_fts")
        for trigger in ("messages_fts_ai", "messages_fts_ad", "messages_fts_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    elif dialect == 'postgresql':
        op.execute("DROP INDEX IF EXISTS ix_messages_fts")
    with op.batch_alter_table('drafts', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_drafts_queue_id_queues'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_drafts_reply_to_message_id_messages'), type_='foreignkey')
        batch_op.drop_column('base_message_id')
        batch_op.drop_column('queue_id')
        batch_op.drop_column('reply_to_message_id')
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.drop_index('ix_conversations_contact')
        batch_op.drop_index('ix_conversations_assignee_last')
        batch_op.drop_index('ix_conversations_queue_last')
        batch_op.drop_index('ix_conversations_last_id')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('nickname')
    op.drop_table('conversation_seen')
