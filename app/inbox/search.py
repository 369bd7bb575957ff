"""Search of conversations by customer address, subject and body text: the one place that knows how.

`matching_conversations_sql(q, before)` returns the SQL (and parameters) of a SELECT of
conversation ids to use in an `IN` (the inbox list embeds it in its one statement; an id may
come more than once), and of the common table expression `search_window` it reads:

* SQLite: the FTS5 table `messages_fts` (subject, text, from and to addresses of every
  message, notes included), each word of the query a whole-word term (`word*` for a
  prefix), all required;
* PostgreSQL: the GIN-indexed `to_tsvector('simple', ...)` of the same columns with
  `websearch_to_tsquery` (quoted phrases, `-word`, `or`);
* on both, the customer's address starting with the query.

Results are conversations (newest activity first, like every inbox list), drawn from a
window of matching messages: the newest `MAX_MATCHES` of them and the customers' addresses
first; then, when the agent asks for "Search older messages", the next `MAX_MATCHES` older
than the window's oldest (`before`), leaving out the conversations an earlier window listed.
A common word answers at once however many messages hold it, and no match is out of reach.

The index follows every write by itself (SQLite triggers; a PostgreSQL expression
index), so ingest, sending and notes need to call nothing. `reindex()` rebuilds the
SQLite index after a bulk load done with triggers off.
"""
from __future__ import annotations

import re

from sqlalchemy import text

from app.extensions import db
from app.models.inbox import PG_TSVECTOR, SQLITE_FTS_DDL

_TERM = re.compile(r"(\w+)(\*?)", re.UNICODE)
MAX_TERMS = 12
#: Matching messages per search window (the first: the newest ones; "Search older messages": the next).
MAX_MATCHES = 200
#: A query without words: an empty window, and no conversation (or only address matches).
_NO_WINDOW = "WITH search_window AS (SELECT 1 AS id WHERE 1 = 0)"
_NOTHING = "SELECT id FROM conversations WHERE 1 = 0"


def fts5_query(q: str) -> str:
    """The user's words as an FTS5 query: each a quoted whole-word term, all required.

    A word typed with a trailing `*` matches as a prefix (`refund*`). Whole words are the
    default because FTS5 answers them by streaming the index newest first, while a prefix
    term has to merge every matching term's list first (far slower for a common word on a
    large mailbox).
    """
    terms = _TERM.findall(q or "")[:MAX_TERMS]
    return " ".join('"' + w.replace('"', '""') + '"' + ("*" if star else "") for w, star in terms)


def pg_tsquery(q: str) -> tuple[str, dict] | None:
    """The PostgreSQL tsquery for `q` (SQL, parameters), or None when it has no words.

    Plain words go through `websearch_to_tsquery` (the same parser as the index, so an
    address stays one token); words typed with `*` become prefix terms.
    """
    prefixes = [w for w, star in _TERM.findall(q or "")[:MAX_TERMS] if star]
    plain = _TERM.sub(lambda m: "" if m.group(2) else m.group(0), q or "").strip()
    parts, params = [], {}
    if _TERM.search(plain):
        parts.append("websearch_to_tsquery('simple', :search_plain)")
        params["search_plain"] = plain
    if prefixes:
        parts.append("to_tsquery('simple', :search_prefixes)")
        params["search_prefixes"] = " & ".join(f"{w.lower()}:*" for w in prefixes)
    return (" && ".join(parts), params) if parts else None


def _dialect() -> str:
    return db.session.get_bind().dialect.name


def matching_conversations_sql(q: str, before: int | None = None) -> tuple[str, str, dict]:
    """(WITH clause, SQL selecting the ids of the conversations that match `q`, parameters named
    `search_*`) for an `IN (...)`; nothing matches an empty query.

    The WITH clause materialises `search_window(id)`: the ids of the window's matching messages,
    the newest `MAX_MATCHES` (older than `before`, when given). The caller reads the window's
    size and oldest id from it too (a full window means there may be older matches: the next
    window is `before=<its oldest id>`). The first window adds the customers whose address
    starts with the query; an older one leaves out every conversation an earlier window had
    (a match at or after `before`, or the address). Plain SQL rather than a SQLAlchemy
    construct: the inbox list embeds it in its own SQL (see `app.inbox.lists.list_inbox`).
    """
    q = (q or "").strip()
    lowered = q.lower()
    # Addresses are stored lower-cased: a range on the unique index, not a scan.
    by_contact = ("SELECT id FROM conversations WHERE contact_id IN "
                  "(SELECT id FROM contacts WHERE email >= :search_from AND email < :search_to)")
    params = {"search_from": lowered, "search_to": lowered + "\U0010ffff", "search_cap": MAX_MATCHES}
    dialect = _dialect()
    if dialect == "sqlite":
        match = fts5_query(q)
        if not match:
            return _NO_WINDOW, _NOTHING, {}
        matches = "SELECT rowid AS id FROM messages_fts WHERE messages_fts MATCH :search_match"
        newer, older = "rowid >= :search_before", "rowid < :search_before"
        params["search_match"] = match
    elif dialect == "postgresql":
        query = pg_tsquery(q)
        if query is None:
            return _NO_WINDOW, by_contact if before is None else _NOTHING, params
        sql, tsparams = query
        matches = f"SELECT id FROM messages WHERE {PG_TSVECTOR} @@ ({sql})"
        newer, older = "id >= :search_before", "id < :search_before"
        params.update(tsparams)
    else:  # pragma: no cover - other databases: a plain scan
        matches = ("SELECT id FROM messages WHERE lower(subject) LIKE lower(:search_like) "
                   "OR lower(text) LIKE lower(:search_like)")
        newer, older = "id >= :search_before", "id < :search_before"
        params["search_like"] = f"%{q}%"
    window = (f"WITH search_window AS MATERIALIZED ({matches}{f' AND {older}' if before is not None else ''} "
              "ORDER BY id DESC LIMIT :search_cap)")
    by_text = "SELECT conversation_id FROM messages WHERE id IN (SELECT id FROM search_window)"
    if before is None:
        # UNION ALL: the caller's IN (...) keeps each id once anyway; UNION would sort them once more.
        return window, f"{by_text} UNION ALL {by_contact}", params
    params["search_before"] = before
    listed = f"SELECT conversation_id FROM messages WHERE id IN ({matches} AND {newer})"
    return window, f"{by_text} AND conversation_id NOT IN ({listed}) AND conversation_id NOT IN ({by_contact})", params


def reindex() -> None:
    """Recreate the SQLite full-text table and triggers when missing, and rebuild the index.

    For after a bulk load made with the triggers off, or a migration that rebuilt the
    `messages` table on SQLite (Alembic's batch mode recreates a table for some changes,
    which drops its triggers). PostgreSQL needs nothing: its index is an expression index.
    The caller commits. `flask inbox reindex` runs it.
    """
    if _dialect() != "sqlite":
        return
    for statement in SQLITE_FTS_DDL:
        db.session.execute(text(statement))
    db.session.execute(text("INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')"))
