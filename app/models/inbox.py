"""Customers, conversations, messages, attachments and agents' drafts."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint, or_
from sqlalchemy import false as sa_false
from sqlalchemy import text as sql_text  # `text` is also a column of Message
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models._types import UTCDateTime, database_objects, utcnow


class Contact(db.Model):
    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)  # lower-cased
    name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Edited on the contact page (app.inbox.contacts): the customer's other addresses (one a line),
    # an organisation that overrides the one read from the email domain, and the agents' notes.
    extra_addresses: Mapped[str] = mapped_column(Text, default="", server_default="")
    organization: Mapped[str] = mapped_column(String(200), default="", server_default="")
    notes: Mapped[str] = mapped_column(Text, default="", server_default="")


class Conversation(db.Model):
    __tablename__ = "conversations"
    __table_args__ = (
        Index("ix_conversations_status_last", "status", "last_message_at"),
        Index("ix_conversations_contact_address", "contact_id", "address_id"),  # subject threading
        # Keyset pagination of the inbox views (newest activity first, id breaks ties).
        Index("ix_conversations_last_id", "last_message_at", "id"),
        Index("ix_conversations_queue_last", "queue_id", "last_message_at"),
        Index("ix_conversations_assignee_last", "assignee_id", "last_message_at"),
        Index("ix_conversations_contact", "contact_id"),
        # The inbox's filters and sort (priority, address) and the snooze timer's sweep.
        Index("ix_conversations_priority_last", "priority", "last_message_at", "id"),
        Index("ix_conversations_address_last", "address_id", "last_message_at"),
        Index("ix_conversations_snoozed", "snoozed_until"),
        Index("ix_conversations_sla_due", "sla_due_at"),  # service levels: "Due soonest" and the cron sweep
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    address_id: Mapped[int] = mapped_column(ForeignKey("email_addresses.id"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    token: Mapped[str] = mapped_column(String(40), unique=True)  # opaque, put in our Message-IDs
    subject: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20), default="open")  # open/pending/resolved/closed
    queue_id: Mapped[int | None] = mapped_column(ForeignKey("queues.id"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    priority: Mapped[int] = mapped_column(default=0)
    tags: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_message_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The intent the classifier gave the first message ("unknown" below the threshold)
    intent: Mapped[str | None] = mapped_column(String(100))
    intent_confidence: Mapped[float | None]
    # With "Channel-Based Sessions", the To address this conversation belongs to.
    session_key: Mapped[str | None] = mapped_column(String(320))
    # Who last assigned it and set its status, and when (`app.inbox.collisions`: a colleague's recent
    # change is named before it is overwritten). None: never by an agent (automation, older rows).
    assigned_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    status_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Snooze ("Pending until …"): the status is pending until then, or until the customer answers
    # (None with status pending); cron reopens it in the Mine view of `snoozed_by` when due.
    snoozed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    snoozed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Merged into another conversation of the same customer: its page leads there.
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id", ondelete="SET NULL"))
    # Service levels (app.runtime.sla, docs/sla.md): the policy, its anchors, due times and breaches
    sla_policy_id: Mapped[int | None] = mapped_column(ForeignKey("sla_policies.id", ondelete="SET NULL"))
    sla_waiting_since: Mapped[datetime | None] = mapped_column(UTCDateTime)  # oldest unanswered customer message
    first_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_response_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_response_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolution_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sla_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the soonest of the three that still runs
    sla_warn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # when it becomes "at risk"
    first_response_breached_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_response_breached_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolution_breached_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sla_warned_for: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the due time the at-risk notice was for
    sla_overdue_for: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the due time the overdue notice was for
    # The start of the newest customer or agent message's text, for the lists' rows: set by the database
    # (`PREVIEW_DDL`), never by the application.
    preview: Mapped[str | None] = mapped_column(Text)

    address = relationship("EmailAddress")
    contact: Mapped[Contact] = relationship()
    queue = relationship("Queue")
    assignee = relationship("User", foreign_keys=[assignee_id])
    assigned_by = relationship("User", foreign_keys=[assigned_by_id])
    status_by = relationship("User", foreign_keys=[status_by_id])
    messages: Mapped[list["Message"]] = relationship(
        back_populates="conversation", order_by="Message.created_at"
    )


class Message(db.Model):
    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_message_id", "message_id"),
        Index("ix_messages_conversation_created", "conversation_id", "created_at"),
        UniqueConstraint("address_id", "dedupe_key", name="uq_messages_address_dedupe"),  # inbound: nothing twice
        Index("ix_messages_delivery_due", "delivery_status", "next_attempt_at"),  # the send sweep's query
        # The Dashboard's last hour and replies today (app.reports.dashboard): a time range, not every message.
        Index("ix_messages_created", "created_at", "direction"),
        # The inbox's "Not delivered" marker (`app.inbox.lists.INBOX_SQL`): a conversation's failed
        # deliveries without reading each of its messages. Partial: only failed and bounced messages
        # are in it, so it stays tiny. The marker's SQL must say `delivery_status IN ('failed', 'bounced')`
        # exactly like this for SQLite's planner to use it.
        Index("ix_messages_delivery_failed", "conversation_id",
              sqlite_where=sql_text("delivery_status IN ('failed', 'bounced')"),
              postgresql_where=sql_text("delivery_status IN ('failed', 'bounced')")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id"))
    address_id: Mapped[int | None] = mapped_column(ForeignKey("email_addresses.id"))
    direction: Mapped[str] = mapped_column(String(10))  # in / out / note
    message_id: Mapped[str | None] = mapped_column(String(998))
    in_reply_to: Mapped[str | None] = mapped_column(Text)
    references: Mapped[str | None] = mapped_column(Text)
    from_addr: Mapped[str] = mapped_column(Text, default="")
    to_addrs: Mapped[str] = mapped_column(Text, default="")
    cc_addrs: Mapped[str] = mapped_column(Text, default="")
    bcc_addrs: Mapped[str] = mapped_column(Text, default="")
    reply_to: Mapped[str] = mapped_column(Text, default="")
    subject: Mapped[str] = mapped_column(Text, default="")
    text: Mapped[str] = mapped_column(Text, default="")
    html: Mapped[str | None] = mapped_column(Text)  # sanitised
    raw_sha256: Mapped[str | None] = mapped_column(String(64))
    parse_error: Mapped[str | None] = mapped_column(Text)
    delivery_status: Mapped[str | None] = mapped_column(String(20))  # queued/sending/sent/retrying/failed/bounced
    delivery_error: Mapped[str | None] = mapped_column(Text)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Automatic mail: "auto_reply" / "acknowledgement" for automatic mail (sent with Auto-Submitted: auto-replied)
    automatic: Mapped[str | None] = mapped_column(String(20))
    # Inbound: the reply without quoted history, what kind of mail it is, loop safety, dedupe.
    visible_text: Mapped[str | None] = mapped_column(Text)
    classification: Mapped[str | None] = mapped_column(String(20))  # auto_reply/bounce/feedback/list/bulk
    no_auto_reply: Mapped[bool] = mapped_column(default=False)  # never answer it automatically
    dedupe_key: Mapped[str | None] = mapped_column(String(300))  # "mid:<...>" or "sha:<hex>", unique per address
    # Inbound: None when the sender is From, else the header it was taken from ("sender", "reply-to", "return-path")
    sender_source: Mapped[str | None] = mapped_column(String(20))
    parse_notes: Mapped[str | None] = mapped_column(Text)  # the parser's defects and fallbacks, one per line
    edited_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # an internal note edited by its author

    # Outbound delivery: attempts, backoff, the worker's claim (lease) and the server's last reply
    delivery_attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claim_token: Mapped[str | None] = mapped_column(String(40))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    smtp_code: Mapped[int | None]
    smtp_reply: Mapped[str | None] = mapped_column(Text)
    # The DKIM-Signature header put in front of the stored bytes when it was sent (None: sent unsigned),
    # so the Sent-folder copy is the message as it left.
    dkim_signature: Mapped[str | None] = mapped_column(Text)
    # Inbound sender authentication (app.mail.senderauth): SPF / DKIM / DMARC results ("pass", "fail", "none",
    # "temperror", ...) with the domain each was about, why, and the own domain the From domain imitates.
    # NULL on outgoing mail and on mail stored before the checks existed.
    auth_spf: Mapped[str | None] = mapped_column(String(12))
    auth_spf_domain: Mapped[str | None] = mapped_column(String(253))
    auth_dkim: Mapped[str | None] = mapped_column(String(12))
    auth_dkim_domain: Mapped[str | None] = mapped_column(String(253))
    auth_dmarc: Mapped[str | None] = mapped_column(String(12))
    auth_from_domain: Mapped[str | None] = mapped_column(String(253))
    auth_reason: Mapped[str | None] = mapped_column(Text)
    auth_lookalike: Mapped[str | None] = mapped_column(String(253))

    conversation: Mapped[Conversation | None] = relationship(back_populates="messages")
    attachments: Mapped[list["Attachment"]] = relationship(back_populates="message")
    author = relationship("User")


#: Inbound kinds written by a machine, not by the customer: an out-of-office or read receipt, a delivery
#: report, a complaint. They sit in the conversation they answer but are never what Reply answers,
#: what a reply threads under by default, or what automation reads as the customer's latest words.
AUTOMATIC_KINDS = ("auto_reply", "bounce", "feedback")


def customer_written():
    """SQL: an inbound message the customer wrote (not one of `AUTOMATIC_KINDS`)."""
    return (Message.direction == "in") & or_(Message.classification.is_(None),
                                             Message.classification.not_in(AUTOMATIC_KINDS))


class Attachment(db.Model):
    __tablename__ = "attachments"
    __table_args__ = (Index("ix_attachments_message_id", "message_id"),)  # a thread's attachments at once

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    filename: Mapped[str] = mapped_column(String(500), default="")
    content_type: Mapped[str] = mapped_column(String(200), default="application/octet-stream")
    size: Mapped[int] = mapped_column(default=0)
    content_id: Mapped[str | None] = mapped_column(String(500))
    inline: Mapped[bool] = mapped_column(default=False)
    sha256: Mapped[str] = mapped_column(String(64))

    message: Mapped[Message] = relationship(back_populates="attachments")


class OutgoingMime(db.Model):
    """The exact bytes of an outgoing message, written in the same transaction as its row.

    One durable commit covers both (a blob-store write would add two fsyncs to every
    Send), the send job sends these bytes, and they stay as the record of what was sent.
    Outgoing messages queued before this table existed have theirs in the blob store
    (`Message.raw_sha256`); `app.runtime.outbound.outgoing_bytes` reads either.
    """
    __tablename__ = "outgoing_mime"

    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class Draft(db.Model):
    __tablename__ = "drafts"
    __table_args__ = (UniqueConstraint("author_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(40))  # client-chosen id, so autosave is idempotent
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(20), default="reply")  # reply/reply_all/forward/new
    from_address_id: Mapped[int | None] = mapped_column(ForeignKey("email_addresses.id"))
    to_addrs: Mapped[str] = mapped_column(Text, default="")
    cc_addrs: Mapped[str] = mapped_column(Text, default="")
    bcc_addrs: Mapped[str] = mapped_column(Text, default="")
    subject: Mapped[str] = mapped_column(Text, default="")
    body: Mapped[str] = mapped_column(Text, default="")
    attachments: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The message answered or forwarded (Reply, Reply All, Forward); None for New Mail.
    reply_to_message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    # New Mail: the queue the new conversation goes to.
    queue_id: Mapped[int | None] = mapped_column(ForeignKey("queues.id", ondelete="SET NULL"))
    # The newest message of the conversation when the agent started writing: sending over a
    # newer one asks for confirmation first.
    base_message_id: Mapped[int | None]
    # Nothing its author wrote yet (a composer opened, perhaps left): not listed or counted in
    # Drafts, discarded when its composer is left (`app.inbox.drafts.written`).
    blank: Mapped[bool] = mapped_column(default=False, server_default=sa_false())

    conversation = relationship("Conversation")
    author = relationship("User")
    reply_to_message = relationship("Message")


class ConversationSeen(db.Model):
    """When a user last opened a conversation (the inbox's unread marker)."""

    __tablename__ = "conversation_seen"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"),
                                                 primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# --- Full-text search index of conversations ---------------------------------------------------
#
# One document per conversation: the subject, text, from and to addresses of its newest
# `SEARCH_MESSAGES` messages (notes included; on SQLite their attachments' file names too), under a
# key that is the conversation's newest message id, so that the index lists the conversations whose
# words match newest first and stops at the page (`app.inbox.search`). The database keeps it up to
# date by triggers on `messages` (and `attachments`), so every writer (ingest, sending, notes, a
# merge, a bulk import) is indexed without calling anything.
#
# SQLite: a contentless FTS5 table `conversations_fts` (rowid: the key): before a message of a
# conversation (or an attachment) is added, changed or removed, its document is taken out of the
# index ("delete" with the same words, read from `messages` as they still are), and afterwards put
# back as it now is.
# PostgreSQL: the table `conversation_search` (the conversation, its key and its tsvector, GIN-indexed),
# rewritten for the conversation by a trigger function.
# Migration 0041 creates the same objects (migrations never import app code); these DDL events do it
# for `db.create_all()` (the tests and `bench/web.py`).

#: A document holds the words of its conversation's newest `SEARCH_MESSAGES` messages, each message's first
#: `SEARCH_MESSAGE_CHARS` characters of text: what every message written to the conversation reads and tokenizes
#: again stays bounded (a conversation of 1.4 MB of words cost 0.26 s a message on SQLite).
SEARCH_MESSAGES = 100
SEARCH_MESSAGE_CHARS = 100_000
#: One message's words, as one text (an expression over `messages`).
SEARCH_TEXT = (f"coalesce(subject, '') || ' ' || substr(coalesce(text, ''), 1, {SEARCH_MESSAGE_CHARS}) || ' ' || "
               "coalesce(from_addr, '') || ' ' || coalesce(to_addrs, '')")
#: On SQLite, with its attachments' file names (whose words the tokenizer splits at every other character:
#: `Invoice_4711-final.PDF` is "invoice 4711 final pdf"). PostgreSQL's parser keeps such a name one word, so
#: there `app.inbox.search` looks for file names in `attachments` itself.
SQLITE_SEARCH_TEXT = (f"{SEARCH_TEXT} || coalesce((SELECT ' ' || group_concat(a.filename, ' ') FROM attachments a "
                      "WHERE a.message_id = messages.id), '')")
#: The columns of `messages` that a document holds (and the one that says whose it is).
SEARCH_COLUMNS = "subject, text, from_addr, to_addrs, conversation_id"


def _sqlite_document(conversation: str, delete: bool = False) -> str:
    """The statement that puts a conversation's document into `conversations_fts` (`delete`: takes it out)."""
    into = "conversations_fts(conversations_fts, rowid, document) SELECT 'delete', " if delete else \
        "conversations_fts(rowid, document) SELECT "
    return (f"INSERT INTO {into}max(id), group_concat(words, ' ') FROM (SELECT id, {SQLITE_SEARCH_TEXT} AS words "
            f"FROM messages WHERE conversation_id = {conversation} ORDER BY id DESC LIMIT {SEARCH_MESSAGES}) AS newest "
            "HAVING count(*) > 0;")


def _sqlite_triggers(table: str, columns: str, conversation: str) -> list[str]:
    """The triggers that take the documents a write to `table` changes out of the index before it, and put them
    back after it. `conversation`: the conversation of a row (`{row}`: new or old)."""
    old, new = conversation.format(row="old"), conversation.format(row="new")
    moved = f"{new} AND ({new}) IS NOT ({old})"
    name = f"{table}_fts"
    return [
        f"CREATE TRIGGER IF NOT EXISTS {name}_bi BEFORE INSERT ON {table} BEGIN {_sqlite_document(new, True)} END",
        f"CREATE TRIGGER IF NOT EXISTS {name}_ai AFTER INSERT ON {table} BEGIN {_sqlite_document(new)} END",
        f"CREATE TRIGGER IF NOT EXISTS {name}_bu BEFORE UPDATE OF {columns} ON {table} BEGIN "
        f"{_sqlite_document(old, True)} {_sqlite_document(moved, True)} END",
        f"CREATE TRIGGER IF NOT EXISTS {name}_au AFTER UPDATE OF {columns} ON {table} BEGIN "
        f"{_sqlite_document(old)} {_sqlite_document(moved)} END",
        f"CREATE TRIGGER IF NOT EXISTS {name}_bd BEFORE DELETE ON {table} BEGIN {_sqlite_document(old, True)} END",
        f"CREATE TRIGGER IF NOT EXISTS {name}_ad AFTER DELETE ON {table} BEGIN {_sqlite_document(old)} END",
    ]


SQLITE_SEARCH_DDL = [
    "CREATE VIRTUAL TABLE IF NOT EXISTS conversations_fts USING fts5(document, content='', "
    "tokenize='unicode61 remove_diacritics 2')",
    *_sqlite_triggers("messages", SEARCH_COLUMNS, "{row}.conversation_id"),
    *_sqlite_triggers("attachments", "filename, message_id",
                      "(SELECT conversation_id FROM messages WHERE id = {row}.message_id)"),
]


def _newest_words(text: str) -> str:
    """Every conversation's newest `SEARCH_MESSAGES` messages (`id`, `conversation_id`, their `words`)."""
    return (f"(SELECT id, conversation_id, {text} AS words, row_number() OVER (PARTITION BY conversation_id "
            f"ORDER BY id DESC) AS newest FROM messages) AS m WHERE newest <= {SEARCH_MESSAGES}")


#: Every conversation's document, afresh (after the index was emptied: `app.inbox.search.reindex`, a bulk load).
SQLITE_SEARCH_FILL = ("INSERT INTO conversations_fts(rowid, document) SELECT max(id), group_concat(words, ' ') "
                      f"FROM {_newest_words(SQLITE_SEARCH_TEXT)} GROUP BY conversation_id")
SQLITE_SEARCH_DROP = ["DROP TABLE IF EXISTS conversations_fts"]
#: The PostgreSQL document of a conversation (over its `messages`): the words of its newest `PG_DOCUMENT_CHARS`
#: characters. A tsvector holds at most 1 MB; the words of a thread longer than that would fail the write of its
#: next message. 250,000 characters (some fifty long mails) make a tsvector of at most 750 KB.
PG_DOCUMENT_CHARS = 250_000
PG_DOCUMENT = f"to_tsvector('simple', left(string_agg(words, ' ' ORDER BY id DESC), {PG_DOCUMENT_CHARS}))"
PG_SEARCH_DDL = [
    "CREATE TABLE IF NOT EXISTS conversation_search (conversation_id integer PRIMARY KEY, "
    "search_key integer NOT NULL, document tsvector NOT NULL)",
    "CREATE INDEX IF NOT EXISTS ix_conversation_search_document ON conversation_search USING gin (document)",
    "CREATE INDEX IF NOT EXISTS ix_conversation_search_key ON conversation_search (search_key)",
    # The conversation's row is locked first: two messages of one conversation written at once write its
    # document one after the other, the second with the first's message in it.
    "CREATE OR REPLACE FUNCTION conversation_search_refresh(conv integer) RETURNS void LANGUAGE plpgsql AS $$ BEGIN "
    "PERFORM 1 FROM conversations WHERE id = conv FOR NO KEY UPDATE; "
    "DELETE FROM conversation_search WHERE conversation_id = conv; "
    f"INSERT INTO conversation_search (conversation_id, search_key, document) SELECT conv, max(id), {PG_DOCUMENT} "
    f"FROM (SELECT id, {SEARCH_TEXT} AS words FROM messages WHERE conversation_id = conv ORDER BY id DESC "
    f"LIMIT {SEARCH_MESSAGES}) AS newest HAVING count(*) > 0; END $$",
    "CREATE OR REPLACE FUNCTION messages_search() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "IF TG_OP = 'INSERT' THEN PERFORM conversation_search_refresh(NEW.conversation_id); "
    "ELSE PERFORM conversation_search_refresh(OLD.conversation_id); "
    "IF TG_OP = 'UPDATE' AND NEW.conversation_id IS DISTINCT FROM OLD.conversation_id THEN "
    "PERFORM conversation_search_refresh(NEW.conversation_id); END IF; END IF; RETURN NULL; END $$",
    "DROP TRIGGER IF EXISTS messages_search_aiud ON messages",
    f"CREATE TRIGGER messages_search_aiud AFTER INSERT OR DELETE OR UPDATE OF {SEARCH_COLUMNS} ON messages "
    "FOR EACH ROW EXECUTE FUNCTION messages_search()",
]
PG_SEARCH_FILL = (f"INSERT INTO conversation_search (conversation_id, search_key, document) "
                  f"SELECT conversation_id, max(id), {PG_DOCUMENT} FROM {_newest_words(SEARCH_TEXT)} GROUP BY conversation_id")
PG_SEARCH_DROP = ["DROP TABLE IF EXISTS conversation_search", "DROP FUNCTION IF EXISTS messages_search() CASCADE",
                  "DROP FUNCTION IF EXISTS conversation_search_refresh(integer)"]

database_objects(Attachment.__table__, {"sqlite": SQLITE_SEARCH_DDL})  # after `attachments`, which they read too
database_objects(Message.__table__, {"postgresql": PG_SEARCH_DDL},
                 {"sqlite": SQLITE_SEARCH_DROP, "postgresql": PG_SEARCH_DROP})


# --- The lists' preview of a conversation ------------------------------------------------------
#
# `conversations.preview`: the first 300 characters of the newest message that is neither an internal
# note nor an automatic reply (by time, then id), which every inbox row shows: a column the list reads
# with the row, where each row looked the message up and read its text. Triggers on `messages` keep it
# (a message added, removed, moved by a merge or a split, its text or kind changed), so every writer is
# covered. Migration 0042 creates the same objects and fills the column.

PREVIEW = ("(SELECT substr(m.text, 1, 300) FROM messages m WHERE m.conversation_id = conversations.id "
           "AND m.direction <> 'note' AND coalesce(m.classification, '') <> 'auto_reply' "
           "ORDER BY m.created_at DESC, m.id DESC LIMIT 1)")
#: The columns of `messages` the preview depends on.
PREVIEW_COLUMNS = "text, direction, classification, created_at, conversation_id"
PREVIEW_FILL = f"UPDATE conversations SET preview = {PREVIEW}"


def _preview_of(conversation: str) -> str:
    return f"UPDATE conversations SET preview = {PREVIEW} WHERE id = {conversation};"


PREVIEW_DDL = {
    "sqlite": [
        f"CREATE TRIGGER IF NOT EXISTS messages_preview_ai AFTER INSERT ON messages BEGIN "
        f"{_preview_of('new.conversation_id')} END",
        f"CREATE TRIGGER IF NOT EXISTS messages_preview_au AFTER UPDATE OF {PREVIEW_COLUMNS} ON messages BEGIN "
        f"{_preview_of('old.conversation_id')} {_preview_of('new.conversation_id')} END",
        f"CREATE TRIGGER IF NOT EXISTS messages_preview_ad AFTER DELETE ON messages BEGIN "
        f"{_preview_of('old.conversation_id')} END",
    ],
    "postgresql": [
        "CREATE OR REPLACE FUNCTION messages_preview() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"IF TG_OP <> 'INSERT' THEN {_preview_of('OLD.conversation_id')} END IF; "
        "IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.conversation_id IS DISTINCT FROM OLD.conversation_id) "
        f"THEN {_preview_of('NEW.conversation_id')} END IF; RETURN NULL; END $$",
        "DROP TRIGGER IF EXISTS messages_preview_aiud ON messages",
        f"CREATE TRIGGER messages_preview_aiud AFTER INSERT OR DELETE OR UPDATE OF {PREVIEW_COLUMNS} ON messages "
        "FOR EACH ROW EXECUTE FUNCTION messages_preview()",
    ],
}
PREVIEW_DROP = {"postgresql": ["DROP FUNCTION IF EXISTS messages_preview() CASCADE"]}
database_objects(Message.__table__, PREVIEW_DDL, PREVIEW_DROP)
