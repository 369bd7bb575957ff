"""Search of conversations by customer address, subject and body text: the one place that knows how.

`matching_conversation_ids(q)` returns a SELECT of conversation ids to use in an `IN`:

* SQLite: the FTS5 table `messages_fts` (subject, text, from and to addresses of every
  message, notes included), each word of the query a prefix term, all required;
* PostgreSQL: the GIN-indexed `to_tsvector('simple', ...)` of the same columns with
  `websearch_to_tsquery` (quoted phrases, `-word`, `or`);
* on both, the customer's address or name starting with the query.

The index follows every write by itself (SQLite triggers; a PostgreSQL expression
index), so ingest, sending and notes need to call nothing. `reindex()` rebuilds the
SQLite index after a bulk load done with triggers off.
"""
from __future__ import annotations

import re

from sqlalchemy import Select, func, literal_column, or_, select, text

from app.extensions import db
from app.models.inbox import PG_TSVECTOR, Contact, Conversation, Message

_WORD = re.compile(r"\w+", re.UNICODE)
MAX_TERMS = 12


def fts5_query(q: str) -> str:
    """The user's words as an FTS5 query: each a quoted prefix term, all required."""
    words = _WORD.findall(q or "")[:MAX_TERMS]
    return " ".join('"' + w.replace('"', '""') + '"*' for w in words)


def _dialect() -> str:
    return db.session.get_bind().dialect.name


def matching_conversation_ids(q: str) -> Select:
    """A SELECT of the ids of conversations that match `q` (nothing matches an empty query)."""
    q = (q or "").strip()
    prefix = q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    contacts = select(Contact.id).where(or_(Contact.email.like(prefix, escape="\\"),
                                            func.lower(Contact.name).like(prefix, escape="\\")))
    by_contact = select(Conversation.id).where(Conversation.contact_id.in_(contacts))
    dialect = _dialect()
    if dialect == "sqlite":
        match = fts5_query(q)
        if not match:
            return select(Conversation.id).where(literal_column("0") == 1)
        hits = text("SELECT rowid FROM messages_fts WHERE messages_fts MATCH :match").bindparams(match=match)
        by_text = select(Message.conversation_id).where(Message.id.in_(hits.columns(literal_column("rowid"))))
    elif dialect == "postgresql":
        by_text = select(Message.conversation_id).where(
            text(f"{PG_TSVECTOR} @@ websearch_to_tsquery('simple', :q)").bindparams(q=q))
    else:  # pragma: no cover - other databases: a plain scan
        like = f"%{q}%"
        by_text = select(Message.conversation_id).where(or_(Message.subject.ilike(like), Message.text.ilike(like)))
    return by_text.union(by_contact)


def reindex() -> None:
    """Rebuild the SQLite full-text index from `messages` (PostgreSQL needs nothing)."""
    if _dialect() == "sqlite":
        db.session.execute(text("INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')"))
