"""The inbox lists: a page of a view (with the search), the view tabs' counts, the drafts list,
and what each user has seen (the rows' unread marker).

Inbox lists use keyset pagination on (last activity, id), newest first: a page is
"the 50 after this cursor", so new mail arriving while an agent pages never shifts or
repeats rows, and `after=` fetches just what changed since the newest row shown (the
inbox's polling).
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import NamedTuple

from flask import current_app
from sqlalchemy import bindparam, func, select, text

from app.extensions import db
from app.inbox.access import VISIBLE_SQL, InvalidAction, get_user, visibility_filter
from app.inbox.display import snippet
from app.inbox.search import matching_conversations_sql
from app.models._types import UTCDateTime, ordered_columns, utc_of, utcnow
from app.models.auth import Role, User
from app.models.inbox import Conversation, ConversationSeen, Draft
from app.runtime import sla

#: The statuses of a conversation, as the inbox filters by them and the Status action sets them.
STATUSES = ("open", "pending", "resolved", "closed")
#: The inbox's status filter's groups of statuses: "unsolved" (open or pending: an agent's load, as routing and
#: the Dashboard count it).
STATUS_GROUPS = {"unsolved": ("open", "pending")}


class RowConversation(NamedTuple):
    """What an inbox row shows of a conversation: plain columns, not an ORM object.

    A page is read as tuples by one statement (`list_inbox`): building the ORM objects of
    every row (conversation, contact, queue, assignee) would cost more than the query itself.
    `queue_name` / `assignee_name` are None when there is no queue / assignee.

    A NamedTuple of plain values, like `InboxRow`: a row is its own key in the rows' HTML cache
    (`app.inbox.views.row_key`), hashed in C (`plain()` of a row cost 2 µs).
    """

    id: int
    subject: str
    status: str
    last_message_at: datetime
    contact_name: str
    contact_email: str
    queue_name: str | None
    assignee_name: str | None
    priority: int = 0
    tags: tuple = ()
    snoozed_until: datetime | None = None  # "Pending until …"
    # Service levels (app.runtime.sla): the soonest due time, "First response due in 42 min", ok/at-risk/breached;
    # the text is worked out when the row is read, so a cached row's HTML changes with it.
    sla_due_at: datetime | None = None
    sla_text: str = ""
    sla_state: str = ""


class InboxRow(NamedTuple):
    conversation: RowConversation
    snippet: str = ""
    unread: bool = False
    has_draft: bool = False
    delivery_failed: bool = False


@dataclass(frozen=True)
class InboxFilters:
    """The inbox's filters besides view, status, queue and search; each keeps the others (they are ANDed).

    `assignee_id`: one agent's conversations; `tag`: those with that tag; `priority`: -1..2;
    `address_id`: those of one of our addresses; `unread`: those with activity the user has not seen;
    `sort`: "priority" (most urgent first, then newest activity), "due" (service levels: the soonest due time
    first, those without one last) or "" (newest activity first); `sla`: "breached" (overdue now) or "at_risk"
    (within the warning time of a due time), or "" (any); `received_since`: those with a customer's message
    since that time; `replied_since`: those with an agent's reply (not automatic mail) since that time, by
    `replied_by` when given (a user id). The Dashboard's last hour and today figures link to these.
    """
    assignee_id: int | None = None
    tag: str = ""
    priority: int | None = None
    address_id: int | None = None
    unread: bool = False
    sort: str = ""
    sla: str = ""
    received_since: datetime | None = None
    replied_since: datetime | None = None
    replied_by: int | None = None


@dataclass
class InboxPage:
    rows: list[InboxRow]
    next_cursor: str | None  # older rows exist after this one
    newest_cursor: str | None  # the newest row shown, for polling with `after`
    # A search whose window of matches was full: its next window is `before=older_matches`
    # ("Search older messages", once this window's rows are all shown).
    older_matches: int | None = None


def encode_cursor(conversation: Conversation | RowConversation, by_priority: bool = False) -> str:
    """The keyset position of a row; `by_priority`: in the priority sort (the priority first, "2!…")."""
    where = f"{conversation.last_message_at.astimezone(timezone.utc).isoformat()}~{conversation.id}"
    return f"{conversation.priority}!{where}" if by_priority else where


def encode_due_cursor(conversation: RowConversation) -> str:
    """The keyset position of a row in the "Due soonest" sort: "due!<time or none>~<id>"."""
    due = conversation.sla_due_at
    return f"due!{due.astimezone(timezone.utc).isoformat() if due else 'none'}~{conversation.id}"


def decode_due_cursor(cursor: str) -> tuple[datetime | None, int]:
    """(due time or None, id) of a "Due soonest" cursor; raises `InvalidAction` when malformed."""
    mark, _, rest = cursor.partition("!")
    when, _, ident = rest.rpartition("~")
    try:
        if mark != "due":
            raise ValueError(cursor)
        if when == "none":
            return None, int(ident)
        moment = datetime.fromisoformat(when)
        return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)), int(ident)
    except ValueError:
        raise InvalidAction("This page link is out of date; reload the inbox.") from None


def decode_priority_cursor(cursor: str) -> tuple[int, datetime, int]:
    """(priority, time, id) of a priority-sort cursor; raises `InvalidAction` when malformed."""
    priority, mark, rest = cursor.partition("!")
    try:
        level = int(priority)
    except ValueError:
        level = None
    if not mark or level is None:
        raise InvalidAction("This page link is out of date; reload the inbox.")
    return (level, *decode_cursor(rest))


def decode_cursor(cursor: str | None) -> tuple[datetime, int] | None:
    if not cursor:
        return None
    try:
        when, _, ident = cursor.rpartition("~")
        moment = datetime.fromisoformat(when)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment, int(ident)
    except ValueError:
        raise InvalidAction("This page link is out of date; reload the inbox.") from None


#: One inbox page: the page's ids first (keyset, by the (last activity, id) index, or from the
#: search's matches; a subquery with LIMIT is not flattened into the outer join), then for those
#: rows only the columns shown, the snippet (the conversation's `preview`, which the database keeps: the
#: newest customer or agent message's text; not an automatic reply, which does not move the conversation
#: either: `app.runtime.ingest` leaves its last activity as it was) and the markers (the user's last look, the user's drafts, a
#: failed delivery: the partial index `ix_messages_delivery_failed`, whose condition the marker
#: repeats word for word so that SQLite uses it; without it the marker would read every message
#: of every row). Plain SQL, portable between SQLite and PostgreSQL, and compiled once for each
#: combination of filters (`_inbox_statement`): an equivalent SQLAlchemy construct would be built
#: and hashed again on every request, which costs more than running the statement.
INBOX_SQL = """{with_clause}
SELECT c.id, c.subject, c.status, c.last_message_at, ct.name, ct.email, q.name, u.name, c.priority, c.tags, c.snoozed_until,
  c.sla_due_at, c.sla_warn_at, c.first_response_due_at, c.next_response_due_at,
  c.preview AS snippet,
  (SELECT s.seen_at FROM conversation_seen s WHERE s.user_id = :user_id AND s.conversation_id = c.id) AS seen_at,
  EXISTS (SELECT 1 FROM drafts d WHERE d.author_id = :user_id AND d.conversation_id = c.id AND NOT d.blank)
    AS has_draft,
  EXISTS (SELECT 1 FROM messages f WHERE f.conversation_id = c.id AND f.delivery_status IN ('failed', 'bounced'))
    AS failed,
  {window}
FROM (SELECT id FROM {source} WHERE {where} ORDER BY {order} LIMIT :page_limit) AS page
JOIN conversations c ON c.id = page.id
LEFT JOIN contacts ct ON ct.id = c.contact_id
LEFT JOIN queues q ON q.id = c.queue_id
LEFT JOIN users u ON u.id = c.assignee_id
ORDER BY {outer_order}
"""
#: The columns of `INBOX_SQL`, in order (`_inbox_row` reads them by position).
INBOX_COLUMNS = ("id subject status last_message_at contact_name contact_email queue_name assignee_name priority tags "
                 "snoozed_until sla_due_at sla_warn_at first_response_due_at next_response_due_at snippet seen_at "
                 "has_draft failed window_size window_end")
#: The two orders of a page (inner: the page's ids; outer: its rows), newest activity first or by priority.
ORDERS = {"": ("last_message_at DESC, id DESC", "c.last_message_at DESC, c.id DESC"),
          "priority": ("priority DESC, last_message_at DESC, id DESC",
                       "c.priority DESC, c.last_message_at DESC, c.id DESC"),
          "due": ("CASE WHEN sla_due_at IS NULL THEN 1 ELSE 0 END, sla_due_at, id",
                  "CASE WHEN c.sla_due_at IS NULL THEN 1 ELSE 0 END, c.sla_due_at, c.id")}
#: A tag's page (`InboxFilters.tag`) in the orders above but "due": read from the tag's rows in their own index
#: order (`ConversationTag`'s copies of the sort keys), each conversation looked up by its key for the other filters,
#: until the page is full; the filters over `conversations` read its columns (the tag's row has none of theirs).
TAG_SOURCE = "conversation_tags JOIN conversations ON conversations.id = conversation_tags.conversation_id"
TAG_WHERE = "conversation_tags.tag = :f_tag"
TAG_ORDERS = {"": "conversation_tags.sort_last_at DESC, conversation_tags.conversation_id DESC",
              "priority": ("conversation_tags.sort_priority DESC, conversation_tags.sort_last_at DESC, "
                           "conversation_tags.conversation_id DESC")}
#: The tag's copies of the conversation's columns (`ConversationTag.sort_status`, ...): `{c}` of the filters
#: over status, queue and assignee (`_COPIED`) written over the copies, which a tag's index holds.
TAG_COPY = "conversation_tags.sort_"
_COPIED = ("{c}status", "{c}queue_id", "{c}assignee_id", VISIBLE_SQL)
#: Service levels' filters (`InboxFilters.sla`), at the request's time.
SLA_SQL = {"breached": "sla_due_at <= :f_now AND status IN ('open', 'pending')",
           "at_risk": "sla_warn_at <= :f_now AND sla_due_at > :f_now AND status IN ('open', 'pending')"}
#: The filters of `InboxFilters` in SQL over `conversations` (unaliased). The tag filter of the "due" sort reads
#: the (tag, conversation) index (the others: `TAG_SOURCE`); unread: no look of the user's since the last activity.
TAG_SQL = "id IN (SELECT conversation_id FROM conversation_tags WHERE tag = :f_tag)"
UNREAD_SQL = ("NOT EXISTS (SELECT 1 FROM conversation_seen s WHERE s.user_id = :user_id "
              "AND s.conversation_id = conversations.id AND s.seen_at >= conversations.last_message_at)")
#: Activity filters (`InboxFilters.received_since` / `replied_since`): a customer's message, an agent's reply
#: since a time, by the messages' time index (`ix_messages_created`). The Dashboard counts the same messages.
RECEIVED_SQL = ("id IN (SELECT m.conversation_id FROM messages m WHERE m.created_at >= :f_received "
                "AND m.direction = 'in')")
REPLIED_SQL = ("id IN (SELECT m.conversation_id FROM messages m WHERE m.created_at >= :f_replied "
               "AND m.direction = 'out' AND m.author_id IS NOT NULL AND m.automatic IS NULL{by})")
#: A search's window of matches (its size, its oldest key: a message id), the same on every row; NULLs otherwise.
WINDOW_COLUMNS = "(SELECT count(*) FROM search_window) AS window_size, (SELECT min(id) FROM search_window) AS window_end"
#: Timezone-aware UTC datetimes in and out (SQLite stores text).
_INBOX_TYPES = {name: UTCDateTime() for name in ("last_message_at", "seen_at", "older_at", "newer_at",
                                                 "snoozed_until", "older_due", "f_now", "sla_due_at", "sla_warn_at",
                                                 "first_response_due_at", "next_response_due_at", "f_received", "f_replied")}


def list_inbox(user: User | int, view: str = "all", status: str | None = "open", queue_id: int | None = None,
               q: str = "", cursor: str | None = None, after: str | None = None,
               limit: int | None = None, before: int | None = None,
               filters: InboxFilters | None = None, conversation_id: int | None = None) -> InboxPage:
    """One page of a view ("mine", "unassigned", "all"), newest activity first.

    `cursor`: the page after that row (older). `after`: only rows changed since that
    row (newer), for polling. `q`: only conversations matching the search, from one window
    of matching conversations (`app.inbox.search`; `before`: the window of matches older than that
    key, a message id, from `InboxPage.older_matches`). `conversation_id`: only that conversation's row (a live
    update of one row; none when the user may not see it). Raises `InvalidAction` for an unknown view or
    status or a malformed cursor. One statement (`INBOX_SQL`) whatever the filters (a search on PostgreSQL, or
    of unspaced-script words alone, asks one more first: whether a file name matches, `app.inbox.search`).
    `status`: one of `STATUSES`, or a group of them (`STATUS_GROUPS`: "unsolved").
    `filters`: the others (`InboxFilters`: assignee, tag, priority, address, unread, activity since a time, and
    the sort);
    a merged conversation (`Conversation.merged_into_id`) is never listed.
    """
    filters = filters or InboxFilters()
    by_priority = filters.sort == "priority"
    by_due = filters.sort == "due"
    user = get_user(user)
    limit = limit or current_app.config["INBOX_PAGE_SIZE"]
    if view not in ("mine", "unassigned", "all"):
        raise InvalidAction(f"Unknown view {view!r}.")
    if status and status not in STATUSES and status not in STATUS_GROUPS:
        raise InvalidAction(f"Unknown status {status!r}.")
    # The conversation filters, over `conversations` here and over `conversations c` inside a search's window.
    conds, params = ["{c}merged_into_id IS NULL"], {"user_id": user.id, "page_limit": limit + 1}
    if not user.has_role(Role.SUPERVISOR):
        conds.append(VISIBLE_SQL)
    if view == "mine":
        conds.append("{c}assignee_id = :user_id")
    elif view == "unassigned":
        conds.append("{c}assignee_id IS NULL")
    if status in STATUS_GROUPS:
        conds.append("{c}status IN (%s)" % ", ".join(f"'{s}'" for s in STATUS_GROUPS[status]))
    elif status:
        conds.append("{c}status = :status")
        params["status"] = status
    if conversation_id is not None:
        conds.append("{c}id = :only_id")
        params["only_id"] = conversation_id
    if queue_id:
        conds.append("{c}queue_id = :queue_id")
        params["queue_id"] = queue_id
    where = [f.format(c="") for f in conds]
    if filters.assignee_id:
        where.append("assignee_id = :f_assignee")
        params["f_assignee"] = filters.assignee_id
    by_tag = bool(filters.tag) and filters.sort in TAG_ORDERS
    if filters.tag:
        where.append(TAG_WHERE if by_tag else TAG_SQL)
        params["f_tag"] = filters.tag
    if by_tag:  # the same filters on the tag's copies first: only the rows that pass are looked up
        where.extend(f.format(c=TAG_COPY) for f in conds if f.startswith(_COPIED))
    if filters.priority is not None:
        where.append("priority = :f_priority")
        params["f_priority"] = filters.priority
    if filters.address_id:
        where.append("address_id = :f_address")
        params["f_address"] = filters.address_id
    if filters.unread:
        where.append(UNREAD_SQL)
    if filters.sla in SLA_SQL:
        where.append(SLA_SQL[filters.sla])
        params["f_now"] = utcnow()
    if filters.received_since is not None:
        where.append(RECEIVED_SQL)
        params["f_received"] = filters.received_since
    if filters.replied_since is not None:
        where.append(REPLIED_SQL.format(by=" AND m.author_id = :f_replier" if filters.replied_by else ""))
        params["f_replied"] = filters.replied_since
        if filters.replied_by:
            params["f_replier"] = filters.replied_by
    with_clause, window = "", "NULL, NULL"
    searching = bool(q and q.strip())
    if searching:
        with_clause, sql, search_params = matching_conversations_sql(
            q, before, " AND ".join(f.format(c="c.") for f in conds), limit)
        where.append(f"id IN ({sql})")
        params.update(search_params)
        window = WINDOW_COLUMNS
    newer = decode_cursor(after)
    if by_due and cursor:
        due, params["older_id"] = decode_due_cursor(cursor)
        if due is None:
            where.append("(sla_due_at IS NULL AND id > :older_id)")
        else:
            params["older_due"] = due
            where.append("(sla_due_at IS NULL OR sla_due_at > :older_due OR (sla_due_at = :older_due AND id > :older_id))")
    elif by_priority and cursor:
        params["older_priority"], params["older_at"], params["older_id"] = decode_priority_cursor(cursor)
        where.append("(priority < :older_priority OR (priority = :older_priority AND (last_message_at < :older_at "
                     "OR (last_message_at = :older_at AND id < :older_id))))")
    elif older := decode_cursor(cursor):
        where.append("(last_message_at < :older_at OR (last_message_at = :older_at AND id < :older_id))")
        params["older_at"], params["older_id"] = older
    if newer:
        where.append("(last_message_at > :newer_at OR (last_message_at = :newer_at AND id > :newer_id))")
        params["newer_at"], params["newer_id"] = newer
    records = db.session.execute(_inbox_statement(with_clause, " AND ".join(where), window, filters.sort, by_tag),
                                 params).all()
    more = len(records) > limit
    rows = [_inbox_row(r) for r in records[:limit]]
    older_matches = None
    if searching and not newer:
        if records:
            size, end = records[0][-2:]
        else:  # nothing of this window to show (not the user's, or filtered out): its size alone
            size, end = db.session.execute(text(f"{with_clause} SELECT count(*), min(id) FROM search_window"),
                                           {k: v for k, v in params.items() if f":{k}" in with_clause}).one()
        older_matches = end if size and size >= params["search_cap"] else None
    newest = max(rows, key=lambda r: (r.conversation.last_message_at, r.conversation.id)) if rows else None
    return InboxPage(
        rows=rows,
        next_cursor=(encode_due_cursor(rows[-1].conversation) if by_due else
                     encode_cursor(rows[-1].conversation, by_priority)) if more and not newer else None,
        newest_cursor=encode_cursor(newest.conversation) if newest else after,
        older_matches=older_matches,
    )


@functools.lru_cache(maxsize=256)
def _inbox_statement(with_clause: str, where: str, window: str, sort: str = "", by_tag: bool = False):
    """`INBOX_SQL` for one combination of filters (a handful of fixed fragments: few distinct ones),
    built once: parsing the SQL for its parameters cost more than running it. `by_tag`: the page's ids
    from the tag's rows (`TAG_SOURCE`)."""
    order, outer_order = ORDERS[sort]
    source = TAG_SOURCE if by_tag else "conversations"
    statement = text(INBOX_SQL.format(with_clause=with_clause, where=where, window=window, source=source,
                                      order=TAG_ORDERS[sort] if by_tag else order,
                                      outer_order=outer_order)).bindparams(
        *(bindparam(name, type_=_INBOX_TYPES[name]) for name in ("older_at", "newer_at", "older_due", "f_now",
                                                                 "f_received", "f_replied")
          if f":{name}" in where))
    # Untyped: `_inbox_row` reads the times and the tags itself (`utc_of`, `_tags_of`), at a third of the cost.
    return ordered_columns(statement, INBOX_COLUMNS)


def _tags_of(value) -> tuple:
    """The `tags` column's raw value: JSON text (SQLite) or the list itself (PostgreSQL's driver decodes it)."""
    if not value or value == "[]":
        return ()
    return _tags_of_json(value) if isinstance(value, str) else tuple(value)


@functools.lru_cache(maxsize=1024)
def _tags_of_json(value: str) -> tuple:
    """The tags of a `tags` JSON text, decoded once per distinct text: a tag's page has the same text on every row."""
    return tuple(json.loads(value))


#: Inbox rows kept per process, by their columns (`_row_of`): about 1 KB each.
ROW_CACHE_SIZE = 4096


def _inbox_row(r) -> InboxRow:
    """The row of a record of `INBOX_SQL`: built once per process for the same columns (`_row_of`: reading the
    times, tags and preview cost 4 µs a row, a fifth of a page's list), its service level's words worked out
    on every read (they change with the time)."""
    key = tuple(r[:19])  # every column but the search window's
    if type(key[9]) is list:  # PostgreSQL's driver decodes the tags: a list cannot be part of a key
        key = (*key[:9], tuple(key[9]), *key[10:])
    row, warn_at, label = _row_of(key)
    if not label:
        return row
    sla_text, sla_state = sla.timer(row.conversation.sla_due_at, warn_at, label)
    return row._replace(conversation=row.conversation._replace(sla_text=sla_text, sla_state=sla_state))


@functools.lru_cache(maxsize=ROW_CACHE_SIZE)
def _row_of(key: tuple) -> tuple[InboxRow, datetime | None, str]:
    """(the row without its service level's words, its warning time, its label: "First response", or "" without
    a due time) of a record's columns: every one of them is in the key, so a change is another key."""
    (cid, subject, status, last_message_at, contact_name, contact_email, queue_name, assignee_name, priority, tags,
     snoozed_until, due, warn_at, first_due, next_due, text_, seen_at, has_draft, failed) = key
    last_message_at, seen_at, due = utc_of(last_message_at), utc_of(seen_at), utc_of(due)
    warn_at, label = (utc_of(warn_at), sla.label_of(due, utc_of(first_due), utc_of(next_due))) if due else (None, "")
    row = InboxRow(
        RowConversation(cid, subject, status, last_message_at, contact_name or "", contact_email or "",
                        queue_name, assignee_name, priority or 0, _tags_of(tags),
                        utc_of(snoozed_until) if status == "pending" else None, due),
        snippet(text_ or ""), seen_at is None or seen_at < last_message_at, bool(has_draft), bool(failed))
    return row, warn_at, label


def view_counts(user: User | int, cap: int = 99) -> dict[str, int]:
    """Open conversations per view (counted up to `cap`: the tabs say "99+" beyond), and drafts.

    Capped so that the inbox stays fast on a large database: each count reads at most
    `cap + 1` index entries.
    """
    user = get_user(user)
    seen = visibility_filter(user)

    def capped(*where) -> int:
        inner = select(Conversation.id).where(Conversation.status == "open", *where)
        if seen is not None:
            inner = inner.where(seen)
        return db.session.scalar(select(func.count()).select_from(inner.limit(cap + 1).subquery())) or 0

    drafts = db.session.scalar(select(func.count()).select_from(Draft).where(Draft.author_id == user.id,
                                                                             Draft.blank.is_(False)))
    return {"all": capped(), "mine": capped(Conversation.assignee_id == user.id),
            "unassigned": capped(Conversation.assignee_id.is_(None)), "drafts": drafts or 0}


def list_drafts(user: User | int, conversation_id: int | None = None, blank: bool = False) -> list[Draft]:
    """The user's drafts, newest first (of one conversation when given); blank ones (composers
    opened and left, `app.inbox.drafts`) only with `blank`."""
    user = get_user(user)
    query = select(Draft).where(Draft.author_id == user.id).order_by(Draft.updated_at.desc(), Draft.id.desc())
    if not blank:
        query = query.where(Draft.blank.is_(False))
    if conversation_id is not None:
        query = query.where(Draft.conversation_id == conversation_id)
    return list(db.session.scalars(query))


def mark_seen(user_id: int, conversation_id: int, last_message_at: datetime | None = None) -> bool:
    """Record that the user has read the conversation; returns whether anything was written.

    With `last_message_at`, nothing is written when the user had already seen that activity
    (opening a conversation again costs no write).
    """
    row = db.session.get(ConversationSeen, (user_id, conversation_id))
    if row is None:
        db.session.add(ConversationSeen(user_id=user_id, conversation_id=conversation_id, seen_at=utcnow()))
        return True
    if last_message_at is not None and row.seen_at >= last_message_at:
        return False
    row.seen_at = utcnow()
    return True
