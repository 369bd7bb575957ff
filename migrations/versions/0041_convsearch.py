"""convsearch: the search index holds one document per conversation instead of one per message.

A conversation's document is the subject, text, from and to addresses of its newest 100 messages (each
message's first 100,000 characters of text; on SQLite with their attachments' file names), under a key that is its newest message id; `app.inbox.search`
reads the matching conversations newest first and stops at the page. On SQLite a contentless FTS5
table `conversations_fts` kept by triggers on `messages` and `attachments` (each write takes the
conversation's document out before and puts it back after); on PostgreSQL a table
`conversation_search` (GIN-indexed tsvector of the newest 250,000 characters: a tsvector holds at most
1 MB) rewritten by a trigger function. Both replace 0005's
per-message index (`messages_fts`, `ix_messages_fts`), and are filled from the messages here. The same
objects as `app.models.inbox` (`SQLITE_SEARCH_DDL`, `PG_SEARCH_DDL`; migrations never import app code).

Revision ID: 0041_convsearch
Revises: 0040_browserzone
"""
from alembic import op


revision = "0041_convsearch"
down_revision = "0040_browserzone"
branch_labels = None
depends_on = None

# The newest 100 messages of a conversation, each message's first 100,000 characters of text.
MESSAGES, CHARS = 100, 100000
TEXT = (f"coalesce(subject, '') || ' ' || substr(coalesce(text, ''), 1, {CHARS}) || ' ' || "
        "coalesce(from_addr, '') || ' ' || coalesce(to_addrs, '')")
SQLITE_TEXT = (f"{TEXT} || coalesce((SELECT ' ' || group_concat(a.filename, ' ') FROM attachments a "
               "WHERE a.message_id = messages.id), '')")
COLUMNS = "subject, text, from_addr, to_addrs, conversation_id"


def _document(conversation, delete=False):
    into = "conversations_fts(conversations_fts, rowid, document) SELECT 'delete', " if delete else \
        "conversations_fts(rowid, document) SELECT "
    return (f"INSERT INTO {into}max(id), group_concat(words, ' ') FROM (SELECT id, {SQLITE_TEXT} AS words "
            f"FROM messages WHERE conversation_id = {conversation} ORDER BY id DESC LIMIT {MESSAGES}) AS newest "
            "HAVING count(*) > 0;")


def _newest_words(text):
    return (f"(SELECT id, conversation_id, {text} AS words, row_number() OVER (PARTITION BY conversation_id "
            f"ORDER BY id DESC) AS newest FROM messages) AS m WHERE newest <= {MESSAGES}")


def _triggers(table, columns, conversation):
    old, new = conversation.format(row="old"), conversation.format(row="new")
    moved = f"{new} AND ({new}) IS NOT ({old})"
    name = f"{table}_fts"
    return [
        f"CREATE TRIGGER IF NOT EXISTS {name}_bi BEFORE INSERT ON {table} BEGIN {_document(new, True)} END",
        f"CREATE TRIGGER IF NOT EXISTS {name}_ai AFTER INSERT ON {table} BEGIN {_document(new)} END",
        f"CREATE TRIGGER IF NOT EXISTS {name}_bu BEFORE UPDATE OF {columns} ON {table} BEGIN "
        f"{_document(old, True)} {_document(moved, True)} END",
        f"CREATE TRIGGER IF NOT EXISTS {name}_au AFTER UPDATE OF {columns} ON {table} BEGIN "
        f"{_document(old)} {_document(moved)} END",
        f"CREATE TRIGGER IF NOT EXISTS {name}_bd BEFORE DELETE ON {table} BEGIN {_document(old, True)} END",
        f"CREATE TRIGGER IF NOT EXISTS {name}_ad AFTER DELETE ON {table} BEGIN {_document(old)} END",
    ]


TRIGGERS = [f"{table}_fts_{when}" for table in ("messages", "attachments") for when in ("bi", "ai", "bu", "au", "bd", "ad")]
SQLITE_UP = [
    "DROP TRIGGER IF EXISTS messages_fts_ai", "DROP TRIGGER IF EXISTS messages_fts_ad",
    "DROP TRIGGER IF EXISTS messages_fts_au", "DROP TABLE IF EXISTS messages_fts",
    "CREATE VIRTUAL TABLE IF NOT EXISTS conversations_fts USING fts5(document, content='', "
    "tokenize='unicode61 remove_diacritics 2')",
    "INSERT INTO conversations_fts(rowid, document) SELECT max(id), group_concat(words, ' ') "
    f"FROM {_newest_words(SQLITE_TEXT)} GROUP BY conversation_id",
    *_triggers("messages", COLUMNS, "{row}.conversation_id"),
    *_triggers("attachments", "filename, message_id", "(SELECT conversation_id FROM messages WHERE id = {row}.message_id)"),
]
PG_DOCUMENT = "to_tsvector('simple', left(string_agg(words, ' ' ORDER BY id DESC), 250000))"
PG_UP = [
    "DROP INDEX IF EXISTS ix_messages_fts",
    "CREATE TABLE IF NOT EXISTS conversation_search (conversation_id integer PRIMARY KEY, "
    "search_key integer NOT NULL, document tsvector NOT NULL)",
    f"INSERT INTO conversation_search (conversation_id, search_key, document) "
    f"SELECT conversation_id, max(id), {PG_DOCUMENT} FROM {_newest_words(TEXT)} GROUP BY conversation_id",
    "CREATE INDEX IF NOT EXISTS ix_conversation_search_document ON conversation_search USING gin (document)",
    "CREATE INDEX IF NOT EXISTS ix_conversation_search_key ON conversation_search (search_key)",
    "CREATE OR REPLACE FUNCTION conversation_search_refresh(conv integer) RETURNS void LANGUAGE plpgsql AS $$ BEGIN "
    "PERFORM 1 FROM conversations WHERE id = conv FOR NO KEY UPDATE; "
    "DELETE FROM conversation_search WHERE conversation_id = conv; "
    f"INSERT INTO conversation_search (conversation_id, search_key, document) SELECT conv, max(id), {PG_DOCUMENT} "
    f"FROM (SELECT id, {TEXT} AS words FROM messages WHERE conversation_id = conv ORDER BY id DESC "
    f"LIMIT {MESSAGES}) AS newest HAVING count(*) > 0; END $$",
    "CREATE OR REPLACE FUNCTION messages_search() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "IF TG_OP = 'INSERT' THEN PERFORM conversation_search_refresh(NEW.conversation_id); "
    "ELSE PERFORM conversation_search_refresh(OLD.conversation_id); "
    "IF TG_OP = 'UPDATE' AND NEW.conversation_id IS DISTINCT FROM OLD.conversation_id THEN "
    "PERFORM conversation_search_refresh(NEW.conversation_id); END IF; END IF; RETURN NULL; END $$",
    "DROP TRIGGER IF EXISTS messages_search_aiud ON messages",
    f"CREATE TRIGGER messages_search_aiud AFTER INSERT OR DELETE OR UPDATE OF {COLUMNS} ON messages "
    "FOR EACH ROW EXECUTE FUNCTION messages_search()",
]

# 0005's per-message index, for the way back.
OLD_COLUMNS = "subject, text, from_addr, to_addrs"
SQLITE_DOWN = [
    *(f"DROP TRIGGER IF EXISTS {trigger}" for trigger in TRIGGERS),
    "DROP TABLE IF EXISTS conversations_fts",
    f"CREATE VIRTUAL TABLE IF NOT EXISTS messages_fts USING fts5({OLD_COLUMNS}, content='messages', "
    "content_rowid='id', tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER IF NOT EXISTS messages_fts_ai AFTER INSERT ON messages BEGIN "
    f"INSERT INTO messages_fts(rowid, {OLD_COLUMNS}) "
    "VALUES (new.id, new.subject, new.text, new.from_addr, new.to_addrs); END",
    "CREATE TRIGGER IF NOT EXISTS messages_fts_ad AFTER DELETE ON messages BEGIN "
    f"INSERT INTO messages_fts(messages_fts, rowid, {OLD_COLUMNS}) "
    "VALUES ('delete', old.id, old.subject, old.text, old.from_addr, old.to_addrs); END",
    "CREATE TRIGGER IF NOT EXISTS messages_fts_au AFTER UPDATE OF subject, text, from_addr, to_addrs "
    "ON messages BEGIN "
    f"INSERT INTO messages_fts(messages_fts, rowid, {OLD_COLUMNS}) "
    "VALUES ('delete', old.id, old.subject, old.text, old.from_addr, old.to_addrs); "
    f"INSERT INTO messages_fts(rowid, {OLD_COLUMNS}) "
    "VALUES (new.id, new.subject, new.text, new.from_addr, new.to_addrs); END",
    "INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')",
]
PG_DOWN = [
    "DROP TRIGGER IF EXISTS messages_search_aiud ON messages",
    "DROP FUNCTION IF EXISTS messages_search()",
    "DROP FUNCTION IF EXISTS conversation_search_refresh(integer)",
    "DROP TABLE IF EXISTS conversation_search",
    "CREATE INDEX IF NOT EXISTS ix_messages_fts ON messages USING gin (to_tsvector('simple', "
    "coalesce(subject, '') || ' ' || coalesce(text, '') || ' ' || coalesce(from_addr, '') || ' ' || "
    "coalesce(to_addrs, '')))",
]


def _run(statements):
    for statement in statements.get(op.get_bind().dialect.name, []):
        op.execute(statement)


def upgrade():
    _run({"sqlite": SQLITE_UP, "postgresql": PG_UP})


def downgrade():
    _run({"sqlite": SQLITE_DOWN, "postgresql": PG_DOWN})
