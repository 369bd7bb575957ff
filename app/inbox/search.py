"""Search of conversations by customer address, subject, body text and attachment file names:
the one place that knows how.

`matching_conversations_sql(q, before, conversations)` returns the SQL (and parameters) of a
SELECT of conversation ids to use in an `IN` (the inbox list embeds it in its one statement; an
id may come more than once), and of the common table expression `search_window` it reads.

What a word of the query matches:

* a word of the subject, text, from or to addresses of any message of the conversation (notes
  included) that starts with it ("refun" finds "refund"; every word of the query is a prefix, all
  are required, each in any of the conversation's messages: "refund" in the customer's first mail
  and "invoice" in the agent's reply find it): the conversation's document in the search index
  (`app.models.inbox`: SQLite's FTS5 table `conversations_fts`, PostgreSQL's GIN-indexed
  `conversation_search`), with prefix terms (`word:*` on PostgreSQL, where a query word with other
  characters in it, an address, a "quoted phrase", `-word`, goes through `websearch_to_tsquery`).
  On SQLite a window takes the words whole when their whole-word matches alone fill it
  (`search_whole`): FTS5 streams a whole word newest first and stops at the cap, while a
  prefix term merges every matching term's list first (0.2 ms against 3-6 ms for a common
  word on 100,000 conversations); so "umbrella" lists the newest conversations with "umbrella",
  and "umbrel" the newest with any word starting so;
* text in a script written without spaces (Chinese, Japanese, Korean: `配送`) anywhere in the
  subject or text of one of its messages: the word indexes see such a run of characters as one
  word, so these words are looked for as substrings (alone in the query: reading the messages that
  hold them newest first);
* an attachment's file name: on SQLite its words are words of the conversation's document
  (`Invoice_4711-final.PDF` is "invoice 4711 final pdf": "invoice" and "final.pdf" find it); on
  PostgreSQL, whose parser keeps such a name one word, every word of the query inside the file
  name ("voice" finds it too);
* on both, the customer's address starting with the query.

Results are conversations (newest activity first, like every inbox list), drawn from a window
of matches: the `MAX_MATCHES` matching conversations with the newest messages (each keyed by its
newest message id; a file name's match by its message's id) among the conversations the list shows
(the agent's visible ones, with the list's view, status and queue: `conversations`, a WHERE over
`conversations c`), so a window is never used up by matches the agent may not see; then, when
the agent asks for "Search older messages", the next `MAX_MATCHES` older than the window's
oldest key (`before`), leaving out the conversations an earlier window listed. A common word answers
at once however many conversations hold it, and no match is out of reach. One document per
conversation rather than per message: a window reads each matching conversation once, where
messages' matches came three to a conversation and a quarter of them the agent's (the first page
read 700 matches for 50 rows).

The index follows every write by itself (triggers on `messages`), so ingest, sending, notes and
merges need to call nothing. `reindex()` rebuilds it after a bulk load done with triggers off.
On SQLite every write adds a small segment to the index (FTS5 merges them four at a time): cron
has them merged into one every `SEARCH_MERGE_SECONDS` (`merge_index`, a step of `MERGE_PAGES`
pages per transaction), so that a window reads one list per word rather than several.
"""
from __future__ import annotations

import functools
import re

from flask import current_app
from sqlalchemy import text

from app.extensions import db
from app.models.inbox import PG_SEARCH_FILL, PREVIEW_DDL, PREVIEW_FILL, SQLITE_SEARCH_DDL, SQLITE_SEARCH_FILL
from app.queues import redis_connection
from app.runtime.poll import enqueue_once
from app.transactions import outside_transaction

_TERM = re.compile(r"(\w+)(\*?)", re.UNICODE)
#: Scripts written without spaces between words (CJK ideographs, kana, hangul): looked for as substrings.
_UNSPACED = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af\uff66-\uff9f]")
MAX_TERMS = 12
#: Matching conversations per search window (the first: the newest ones; "Search older messages": the next);
#: None: as many as a page of the list shows (`INBOX_PAGE_SIZE`), so that a window is a page.
MAX_MATCHES: int | None = None
#: Whether a window's whole-word matches fill it (then they are its text matches: `matching_conversations_sql`).
WHOLE_FULL = "(SELECT count(*) FROM search_whole) >= :search_cap"
#: An FTS5 term no message has, for the prefix match of a window that the whole words filled: SQLite hands the
#: full-text index its MATCH before it tests any other condition, and this one costs one look-up, where the
#: prefixes merge every matching term's list (a message that had it would still be left out by the condition).
NO_TERM = '"0pigeonhole0nothing0"'
#: PostgreSQL: how many of the newest conversations' documents a window reads in order before it asks the GIN
#: index instead (which finds every match, then sorts them: fast for a rare word, slow for a common one).
PG_WALK = 1000
#: A query without words: an empty window, and no conversation (or only address matches).
_NO_WINDOW = "WITH search_window AS (SELECT 1 AS id WHERE 1 = 0)"
_NOTHING = "SELECT id FROM conversations WHERE 1 = 0"


def query_words(q: str) -> tuple[list[str], list[str]]:
    """(indexed words, unspaced-script words) of the query, at most `MAX_TERMS` in all; a `*`
    typed after a word is dropped (every word is a prefix anyway)."""
    words = [w for w, _star in _TERM.findall(q or "")][:MAX_TERMS]
    return [w for w in words if not _UNSPACED.search(w)], [w for w in words if _UNSPACED.search(w)]


def fts5_query(q: str, whole: bool = False) -> str:
    """The query's indexed words as an FTS5 query: each a quoted prefix term (`whole`: a whole
    word), all required (words in unspaced scripts are left to the substring test)."""
    words, _unspaced = query_words(q)
    return " ".join('"' + w.replace('"', '""') + '"' + ("" if whole else "*") for w in words)


def pg_tsquery(q: str) -> tuple[str, dict] | None:
    """The PostgreSQL tsquery for `q` (SQL, parameters), or None when it has no indexed words.

    A chunk of the query that is a plain word becomes a prefix term (`word:*`); the other chunks
    (an address, a quoted phrase, `-word`, `or`) go through `websearch_to_tsquery`, the same parser
    as the index, so an address stays one token. Unspaced-script words are left out (see above).
    """
    prefixes, other = [], []
    for chunk in (q or "").split():
        plain = re.fullmatch(r"(\w+)\*?", chunk)
        if plain and chunk.lower() != "or":
            if not _UNSPACED.search(plain.group(1)):
                prefixes.append(plain.group(1))
        elif not _UNSPACED.search(chunk):
            other.append(chunk)
    prefixes = prefixes[:MAX_TERMS]
    parts, params = [], {}
    rest = " ".join(other)
    if _TERM.search(rest):
        parts.append("websearch_to_tsquery('simple', :search_plain)")
        params["search_plain"] = rest
    if prefixes:
        parts.append("to_tsquery('simple', :search_prefixes)")
        params["search_prefixes"] = " & ".join(f"{w.lower()}:*" for w in prefixes)
    return (" && ".join(parts), params) if parts else None


def _dialect() -> str:
    return db.session.get_bind().dialect.name


def _like(word: str) -> str:
    """A LIKE pattern (ESCAPE '\\') finding `word` anywhere."""
    return "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _message_matches(q: str, conversations: str, params: dict, older: bool = False):
    """The ways a conversation can match `q` among the conversations `conversations` (a WHERE over
    `conversations c`), as (SQL selecting the matches' keys and conversations, `id` and `conversation_id`;
    the key column) pairs: by the words of its messages (the conversation's document, keyed by its newest
    message id; unspaced-script words as substrings of one of its messages), by an attachment's name
    (keyed by that message's id; only when some file name matches at all: `_any_file_name`); and, on
    SQLite, the same text match with whole words, on PostgreSQL among the newest `PG_WALK` documents
    (for the `search_whole` window, see `matching_conversations_sql`: its SQL, its key and the text match
    otherwise: with prefixes, through the GIN index), else None. `older`: a window older than
    `:search_before`. None when the query has no word. Fills `params` (`search_*`)."""
    words, unspaced = query_words(q)
    if not words and not unspaced:
        return None
    dialect = _dialect()
    where = f"WHERE ({conversations})"
    scope = f"JOIN conversations c ON c.id = m.conversation_id {where}"
    text_terms, whole_source, walk = [], None, None
    key, conversation = "m.id", "m.conversation_id"
    tsquery = pg_tsquery(q) if words and dialect == "postgresql" else None
    if words and dialect == "sqlite":
        params["search_match"] = fts5_query(q)
        params["search_whole_match"] = fts5_query(q, whole=True)
        params["search_none"] = NO_TERM
        # Keyed on the FTS rowid (the conversation's newest message): FTS5 streams whole-word matches by rowid,
        # newest first, and stops at the cap; a prefix term merges every matching term's list first (30x slower
        # for a common word). So the window takes the words whole when that alone fills it (`search_whole`).
        fts = (f"conversations_fts JOIN messages m ON m.id = conversations_fts.rowid {scope} "
               "AND conversations_fts MATCH ")
        whole_source = fts + ":search_whole_match"
        source = fts + ("(CASE WHEN (SELECT count(*) FROM search_whole) >= :search_cap "
                        "THEN :search_whole_match ELSE :search_match END)")
        key = "conversations_fts.rowid"
    elif tsquery is not None:
        sql, tsparams = tsquery
        params.update(tsparams)
        params["search_walk"] = PG_WALK
        matching = f"JOIN conversations c ON c.id = s.conversation_id {where} AND s.document @@ ({sql})"
        source = f"conversation_search s {matching}"
        # The newest `PG_WALK` documents, newest first (the key's index, read backwards and stopped at the cap):
        # a common word fills the window from them; otherwise the GIN index finds every match (few, then).
        walk = (f"(SELECT search_key, conversation_id, document FROM conversation_search"
                f"{' WHERE search_key < :search_before' if older else ''} ORDER BY search_key DESC "
                f"LIMIT :search_walk) AS s {matching}")
        key, conversation = "s.search_key", "s.conversation_id"
    else:  # words in unspaced scripts alone: the messages that hold them, newest first
        source = f"messages m {scope}"
        for i, word in enumerate(words):  # pragma: no cover - other databases: a plain scan
            params[f"search_word{i}"] = _like(word.lower())
            text_terms.append(f"(lower(m.subject) LIKE :search_word{i} ESCAPE '\\' "
                              f"OR lower(m.text) LIKE :search_word{i} ESCAPE '\\')")
    for i, word in enumerate(unspaced):
        params[f"search_cjk{i}"] = _like(word)
        like = f"(u.subject LIKE :search_cjk{i} ESCAPE '\\' OR u.text LIKE :search_cjk{i} ESCAPE '\\')"
        text_terms.append(like.replace("u.", "m.") if source.startswith("messages m") else
                          f"EXISTS (SELECT 1 FROM messages u WHERE u.conversation_id = c.id AND {like})")
    terms = "".join(f" AND {t}" for t in text_terms)
    cols = f"{key} AS id, {conversation} AS conversation_id"
    by_text = f"SELECT {cols} FROM {source}{terms}"
    whole = None
    if whole_source:
        whole = (f"SELECT {cols} FROM {whole_source}{terms}", key,
                 f"SELECT {cols} FROM {fts}(CASE WHEN {WHOLE_FULL} THEN :search_none ELSE :search_match END)"
                 f"{terms} AND NOT {WHOLE_FULL}", key)
    elif walk:
        # Ordered by an expression the key's index cannot give: the GIN index finds the (few) matches, then a sort.
        whole = (f"SELECT {cols} FROM {walk}{terms}", key, f"{by_text} AND NOT {WHOLE_FULL}", f"{key} + 0")
    members = [(by_text, key)]
    if dialect == "sqlite" and words:  # the file names are in the conversations' documents
        return members, whole
    names = []
    for i, word in enumerate(words + unspaced):
        params[f"search_file{i}"] = _like(word.lower())
        names.append(f"lower(a.filename) LIKE :search_file{i} ESCAPE '\\'")
    if _any_file_name(names, params):
        members.append((f"SELECT a.message_id AS id, m.conversation_id AS conversation_id FROM attachments a "
                        f"JOIN messages m ON m.id = a.message_id {scope} AND " + " AND ".join(names), "a.message_id"))
    return members, whole


def _any_file_name(names: list[str], params: dict) -> bool:
    """Whether any attachment's file name holds every word (`names`: the LIKE terms over `attachments a`).

    Most searches find no file name; the window then merges nothing with the text's matches: a window of
    the text's matches alone costs half as much as one merged, sorted and de-duplicated with an empty
    member (SQLite, measured: 1.9 to 1.1 ms on the bench's million messages). One look-up, the same scan
    the window would make, in whatever conversation (the window's own member tests the visibility)."""
    return db.session.execute(_file_name_statement(tuple(names)),
                              {k: v for k, v in params.items() if k.startswith("search_file")}).first() is not None


@functools.lru_cache(maxsize=64)
def _file_name_statement(names: tuple[str, ...]):
    """`_any_file_name`'s statement, built once per number of words (a `text()` parses its SQL for parameters)."""
    return text("SELECT 1 FROM attachments a WHERE " + " AND ".join(names) + " LIMIT 1")


def matching_conversations_sql(q: str, before: int | None = None, conversations: str = "1 = 1",
                               page_size: int = 50) -> tuple[str, str, dict]:
    """(WITH clause, SQL selecting the ids of the conversations that match `q`, parameters named
    `search_*`) for an `IN (...)`; nothing matches an empty query.

    `conversations`: the conversations to search, a WHERE over `conversations c` (the caller's
    visibility and filters, with the caller's parameters), applied inside the window. `page_size`: the
    list's page, the window's size unless `MAX_MATCHES` says otherwise.

    The WITH clause materialises `search_window(id, conversation_id)`: the window's matches' keys
    and their conversations, the newest `MAX_MATCHES` (older than `before`, when given); on
    PostgreSQL, and for a query of unspaced-script words alone, a statement before it asks whether
    any file name matches (`_any_file_name`). The caller reads the window's size and oldest key from
    it too (a full window means there may be older matches: the next window is `before=<its oldest
    key>`). The first window adds the customers whose address starts with the query; an older one
    leaves out every conversation an earlier window had (a key at or after `before`, or the address).
    Plain SQL rather than a SQLAlchemy construct: the inbox list embeds it in its own SQL (see
    `app.inbox.lists.list_inbox`).
    """
    q = (q or "").strip()
    lowered = q.lower()
    # Addresses are stored lower-cased: a range on the unique index, not a scan.
    by_contact = ("SELECT id FROM conversations WHERE contact_id IN "
                  "(SELECT id FROM contacts WHERE email >= :search_from AND email < :search_to)")
    params = {"search_from": lowered, "search_to": lowered + "\U0010ffff", "search_cap": MAX_MATCHES or page_size}
    found = _message_matches(q, conversations, params, before is not None)
    if found is None:
        if _dialect() == "postgresql" and before is None and q:
            return _NO_WINDOW, by_contact, params
        return _NO_WINDOW, _NOTHING, {}
    members, whole = found

    def newest(condition: str, limit: bool = True, members=members) -> str:
        # Each member newest first and capped, then the union capped again: every member is
        # answered by streaming its index newest first, and stops at the cap.
        return " UNION ".join(
            f"SELECT id, conversation_id FROM ({member}{condition.format(key=key)}"
            f"{f' ORDER BY {key} DESC LIMIT :search_cap' if limit else ''}) AS part{i}"
            for i, (member, key) in enumerate(members))

    older = " AND {key} < :search_before" if before is not None else ""
    window = "WITH "
    if whole:  # this window's whole-word matches (SQLite) or among the newest (PostgreSQL): whether they fill it
        sql, key, prefixed, order = whole
        window += f"search_whole AS MATERIALIZED ({sql}{older.format(key=key)} ORDER BY {key} DESC LIMIT :search_cap), "
        # Full, they are the text's matches of this window, as read: not read again. Otherwise the prefixes'
        # (SQLite), or every match's (PostgreSQL).
        found = (f"SELECT id, conversation_id FROM search_whole WHERE {WHOLE_FULL} UNION ALL "
                 f"SELECT id, conversation_id FROM ({prefixed}{older.format(key=key)} ORDER BY {order} DESC "
                 "LIMIT :search_cap) AS prefixed")
        if len(members) > 1:
            found += " UNION " + newest(older, members=members[1:])
    else:
        found = newest(older)
    # The text's matches alone (no file name matched) are at most one capped member: nothing to merge or cut.
    window += (f"search_window AS MATERIALIZED (SELECT id, conversation_id FROM ({found}) AS found "
               "ORDER BY id DESC LIMIT :search_cap)" if len(members) > 1 else f"search_window AS MATERIALIZED ({found})")
    by_text = "SELECT conversation_id FROM search_window"
    if before is None:
        # UNION ALL: the caller's IN (...) keeps each id once anyway; UNION would sort them once more.
        return window, f"{by_text} UNION ALL {by_contact}", params
    params["search_before"] = before
    listed = f"SELECT conversation_id FROM ({newest(' AND {key} >= :search_before', False)}) AS listed"
    return window, f"{by_text} WHERE conversation_id NOT IN ({listed}) AND conversation_id NOT IN ({by_contact})", params


def reindex() -> None:
    """Recreate the search index's table and triggers when missing, and rebuild every conversation's document;
    the same for the lists' previews (`Conversation.preview`), which triggers on `messages` keep too.

    For after a bulk load made with the triggers off, or a migration that rebuilt the `messages`
    table on SQLite (Alembic's batch mode recreates a table for some changes, which drops its
    triggers). The caller commits. `flask inbox reindex` runs it.
    """
    dialect = _dialect()
    if dialect == "sqlite":
        for statement in SQLITE_SEARCH_DDL:
            db.session.execute(text(statement))
        db.session.execute(text("INSERT INTO conversations_fts(conversations_fts) VALUES ('delete-all')"))
        db.session.execute(text(SQLITE_SEARCH_FILL))
    elif dialect == "postgresql":
        db.session.execute(text("DELETE FROM conversation_search"))
        db.session.execute(text(PG_SEARCH_FILL))
    for statement in PREVIEW_DDL.get(dialect, []):
        db.session.execute(text(statement))
    db.session.execute(text(PREVIEW_FILL))


#: Pages (4 KB each) one step of `merge_index` writes, in a transaction of its own: 20 to 50 ms of the database's
#: write lock (the bench's index of 100,000 conversations: 52 steps, 1.8 s in all), so that mail keeps coming in
#: while the index is merged.
MERGE_PAGES = 200
#: Steps one `merge_index` takes at most (800 MB of index; the next run goes on where it stopped).
MERGE_STEPS = 1000
MERGE_KEY = "pigeonhole:cron:search-merge"


def merge_index(pages: int = MERGE_PAGES, steps: int = MERGE_STEPS) -> int:
    """SQLite: merge the search index's segments into one, a step of `pages` pages at a time, each step
    committed; the number of steps that wrote something. PostgreSQL: nothing to do (0; its GIN index's
    pending list is merged by autovacuum).

    Every write to `messages` flushes a small segment (b-tree) of the FTS5 index, and FTS5 merges
    them only four at a time (its `automerge`): a word's entries lie in several segments (seven on the
    bench's index), with the deleted documents' entries still among them, and a window reads them all.
    FTS5's 'merge' command with a negative number of pages merges whatever there is, however few,
    and goes on where the previous step stopped: it is an 'optimize' in small steps (a whole
    'optimize' would hold the write lock for seconds on a large index). A step that changes fewer
    than two rows found nothing left to merge (FTS5's documented test).
    """
    if _dialect() != "sqlite":
        return 0
    done = 0
    for _ in range(steps):
        before = db.session.scalar(text("SELECT total_changes()"))
        db.session.execute(text("INSERT INTO conversations_fts(conversations_fts, rank) VALUES ('merge', :pages)"),
                           {"pages": -abs(pages)})
        changed = db.session.scalar(text("SELECT total_changes()")) - before
        db.session.commit()
        if changed < 2:
            break
        done += 1
    return done


def enqueue_index_merge() -> bool:
    """Cron: on SQLite, once every `SEARCH_MERGE_SECONDS` whichever cron process ticks (a Redis key with an
    expiry), a job merges the search index (`jobs.search.merge_search_index`); True when enqueued."""
    if _dialect() != "sqlite":
        return False
    seconds = max(1, current_app.config["SEARCH_MERGE_SECONDS"])
    if not redis_connection().set(MERGE_KEY, 1, nx=True, ex=seconds):
        return False
    db.session.rollback()  # nothing read or written: no transaction held open while enqueuing
    return outside_transaction(enqueue_once, "poll", "jobs.search.merge_search_index", job_id="search-merge")
