"""Drafts: rows from the moment the composer opens (`start_draft`, `start_new_mail`), saved as
the agent types (`save_draft`), with their attachments; several per conversation, each with its
own key, and private to their author. `app.inbox.sending` turns one into a message.

A draft is `blank` while it holds nothing its author wrote (`is_empty`: no text, no upload; a
Forward: nothing changed since it opened). A blank draft is a composer opened and perhaps left:
it is not listed or counted in Drafts (its own link, `?draft=`, still opens it, so a reload keeps
the composer); Close removes it, and so does the author's next composer once it has been left
`BLANK_DRAFT_MINUTES` untouched (`discard_blank_drafts`).
"""
from __future__ import annotations

import errno
import html
import logging
import secrets
from datetime import timedelta

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from app.blobs import NoRoom, blob_store, require_room
from app.extensions import db
from app.inbox import recipients as rules
from app.inbox.access import InvalidAction, NotFound, get_conversation, get_message, get_user
from app.inbox.addresses import own_addresses, sending_addresses
from app.inbox.choices import user_queues
from app.mail.html import html_to_text, release_held_images, sanitize_html, text_to_html
from app.mail.subjects import forward_subject, reply_subject
from app.models._types import utcnow
from app.models.auth import User
from app.models.inbox import Conversation, Draft, Message, customer_written
from app.units import human_size
from app.web import local_time

log = logging.getLogger(__name__)

#: A blank draft untouched this long is a composer left: the author's next composer discards it.
BLANK_DRAFT_MINUTES = 60


def _replied(message: Message) -> rules.Replied:
    return rules.Replied(message.direction, message.from_addr, message.reply_to, message.to_addrs,
                         message.cc_addrs, message.subject)


def _newest_message_id(conversation_id: int) -> int | None:
    return db.session.scalar(select(func.max(Message.id)).where(
        Message.conversation_id == conversation_id, Message.direction != "note"))


def _last_customer_message(conversation: Conversation) -> Message | None:
    return db.session.scalar(select(Message).where(
        Message.conversation_id == conversation.id, customer_written())
        .order_by(Message.created_at.desc(), Message.id.desc()).limit(1)) or db.session.scalar(
        select(Message).where(Message.conversation_id == conversation.id, Message.direction == "out")
        .order_by(Message.created_at.desc(), Message.id.desc()).limit(1))


def start_draft(author: User | int, conversation_id: int, kind: str, message_id: int | None = None) -> Draft:
    """Open a composer on a conversation: "reply", "reply_all" or "forward" of `message_id` (by default
    the last customer message), recipients and subject filled in by the rules. Raises `NotFound`,
    `InvalidAction`."""
    author = get_user(author)
    if kind not in ("reply", "reply_all", "forward"):
        raise InvalidAction("Choose Reply, Reply All or Forward.")
    conversation = get_conversation(author, conversation_id)
    if message_id is not None:
        message = get_message(author, message_id)
        if message.conversation_id != conversation.id or message.direction == "note":
            raise InvalidAction("That message cannot be answered.")
    else:
        message = _last_customer_message(conversation)
    discard_blank_drafts(author)
    draft = Draft(key=secrets.token_urlsafe(12), conversation_id=conversation.id, author_id=author.id, kind=kind,
                  base_message_id=_newest_message_id(conversation.id), attachments=[], blank=True)
    senders = sending_addresses(author, conversation)
    draft.from_address_id = next((s.id for s in senders if s.id == conversation.address_id),
                                 senders[0].id if senders else None)
    own = own_addresses()
    if message is not None:
        draft.reply_to_message_id = message.id
        if kind == "reply":
            to, cc = rules.reply_recipients(_replied(message), own)
        elif kind == "reply_all":
            to, cc = rules.reply_all_recipients(_replied(message), own)
        else:
            to, cc = [], []
        draft.to_addrs, draft.cc_addrs = ", ".join(to), ", ".join(cc)
        draft.subject = (forward_subject if kind == "forward" else reply_subject)(
            message.subject or conversation.subject)
        if kind == "forward":
            draft.body = forwarded_body(message, author.shown_time_zone)
            draft.attachments = [
                {"sha256": a.sha256, "filename": a.filename, "content_type": a.content_type, "size": a.size,
                 "source": "forward", "included": True}
                for a in message.attachments if not a.inline]
    else:
        draft.subject = reply_subject(conversation.subject)
        if kind != "forward":
            draft.to_addrs = conversation.contact.email
    db.session.add(draft)
    db.session.flush()
    return draft


def forwarded_body(message: Message, zone: str | None = "UTC") -> str:
    """The forwarded message's headers and body, as the start of a Forward; its date in `zone`
    (the author's time zone, named after the time)."""
    when = local_time(message.created_at, "%a, %d %b %Y %H:%M %Z", zone or "UTC")
    rows = [("From", message.from_addr), ("Date", when), ("Subject", message.subject), ("To", message.to_addrs)]
    if message.cc_addrs:
        rows.append(("Cc", message.cc_addrs))
    head = "".join(f"{k}: {html.escape(v or '')}<br>" for k, v in rows)
    body = sanitize_html(message.html) if message.html else text_to_html(message.text)
    return f"<p><br></p><p>---------- Forwarded message ---------<br>{head}</p>{body}"


def start_new_mail(author: User | int) -> Draft:
    """A draft for "New Mail" (an agent-started conversation)."""
    author = get_user(author)
    senders = sending_addresses(author)
    queues = user_queues(author)
    discard_blank_drafts(author)
    draft = Draft(key=secrets.token_urlsafe(12), author_id=author.id, kind="new", attachments=[], blank=True,
                  from_address_id=senders[0].id if senders else None,
                  queue_id=queues[0].id if len(queues) == 1 else None)
    db.session.add(draft)
    db.session.flush()
    return draft


def get_draft(author: User | int, draft_id: int) -> Draft:
    """The user's own draft; raises `NotFound` (a colleague's draft is private)."""
    author = get_user(author)
    draft = db.session.get(Draft, draft_id)
    if draft is None or draft.author_id != author.id:
        raise NotFound("draft")
    if draft.conversation_id is not None:
        get_conversation(author, draft.conversation_id)
    return draft


def recipients_locked(draft: Draft) -> bool:
    return bool(current_app.config["LOCK_REPLY_RECIPIENTS"]) and draft.kind in ("reply", "reply_all")


def save_draft(author: User | int, draft_id: int, *, to: str | None = None, cc: str | None = None,
               bcc: str | None = None, subject: str | None = None, body: str | None = None,
               from_address_id: int | None = None, queue_id: int | None = None,
               forward_included: set[str] | None = None) -> Draft:
    """Store what the agent typed so far (anything may be incomplete or invalid; sending checks).

    Recipient fields are left as they are when `LOCK_REPLY_RECIPIENTS` is on for
    replies. `forward_included`: the sha256 of the forwarded attachments still ticked.
    """
    draft = get_draft(author, draft_id)
    before = _written_values(draft)
    if not recipients_locked(draft):
        if to is not None:
            draft.to_addrs = to.strip()
        if cc is not None:
            draft.cc_addrs = cc.strip()
        if bcc is not None:
            draft.bcc_addrs = bcc.strip()
    if subject is not None:
        draft.subject = subject.strip()[:998]
    if body is not None:
        # The editor holds a Forward's remote images aside (`data-ph-src`) until "Show images".
        draft.body = sanitize_html(release_held_images(body))
    if from_address_id is not None:
        draft.from_address_id = from_address_id
    if queue_id is not None and draft.kind == "new":
        draft.queue_id = queue_id
    if forward_included is not None:
        items = []
        for item in draft.attachments or []:
            item = dict(item)
            if item.get("source") == "forward":
                item["included"] = item["sha256"] in forward_included
            items.append(item)
        draft.attachments = items
    draft.blank = is_empty(draft) or (draft.kind == "forward" and draft.blank and _written_values(draft) == before)
    draft.updated_at = utcnow()
    return draft


def _written_values(draft: Draft) -> tuple:
    """What the author can write in a draft, to tell whether a save changed any of it."""
    return (draft.to_addrs, draft.cc_addrs, draft.bcc_addrs, draft.subject, draft.body,
            [a.get("included", True) for a in draft.attachments or []])


def discard_blank_drafts(author: User) -> int:
    """Delete the author's blank drafts left untouched `BLANK_DRAFT_MINUTES` (composers opened and
    left); returns how many. Called as the author opens another composer."""
    stale = utcnow() - timedelta(minutes=BLANK_DRAFT_MINUTES)
    left = db.session.scalars(select(Draft).where(Draft.author_id == author.id, Draft.blank.is_(True),
                                                  Draft.updated_at < stale)).all()
    for draft in left:
        db.session.delete(draft)
    db.session.flush()
    return len(left)


def delete_draft(author: User | int, draft_id: int) -> int | None:
    """Delete the user's draft; returns its conversation id."""
    draft = get_draft(author, draft_id)
    conversation_id = draft.conversation_id
    db.session.delete(draft)
    return conversation_id


def is_empty(draft: Draft) -> bool:
    return not html_to_text(draft.body or "").strip() and not any(
        a.get("source") == "upload" for a in draft.attachments or [])


def add_draft_attachment(author: User | int, draft_id: int, filename: str, content_type: str, stream) -> Draft:
    """Store an upload in the blob store and list it on the draft.

    Raises `InvalidAction` with a message for the agent when a limit is passed
    (`COMPOSER_MAX_ATTACHMENTS`, `COMPOSER_MAX_ATTACHMENT_BYTES`, `COMPOSER_MAX_TOTAL_BYTES`).
    """
    draft = get_draft(author, draft_id)
    cfg = current_app.config
    current = [a for a in draft.attachments or [] if a.get("included", True)]
    if len(current) >= cfg["COMPOSER_MAX_ATTACHMENTS"]:
        raise InvalidAction(f"At most {cfg['COMPOSER_MAX_ATTACHMENTS']} attachments per message.")
    limit = cfg["COMPOSER_MAX_ATTACHMENT_BYTES"]
    data = stream.read(limit + 1)
    name = (filename or "attachment").replace("\\", "/").rsplit("/", 1)[-1][:200] or "attachment"
    if len(data) > limit:
        raise InvalidAction(f"“{name}” is larger than {human_size(limit)}, the limit for one attachment.")
    if not data:
        raise InvalidAction(f"“{name}” is empty.")
    total = sum(a.get("size", 0) for a in current) + len(data)
    if total > cfg["COMPOSER_MAX_TOTAL_BYTES"]:
        raise InvalidAction(f"Attachments may add up to {human_size(cfg['COMPOSER_MAX_TOTAL_BYTES'])}; "
                            f"“{name}” would make {human_size(total)}.")
    sha = _store_upload(data, name)
    draft.attachments = list(draft.attachments or []) + [{
        "sha256": sha, "filename": name, "content_type": (content_type or "application/octet-stream")[:200],
        "size": len(data), "source": "upload", "included": True}]
    draft.blank = False
    draft.updated_at = utcnow()
    return draft


#: Why a file could not be stored, in the agent's words, by the error number the store met.
STORE_REASONS = {errno.ENOSPC: "the file store is full", errno.EDQUOT: "the file store is full",
                 **dict.fromkeys((errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR),
                                 "the file store cannot be written to")}


def _store_upload(data: bytes, name: str) -> str:
    """Put an upload in the blob store; a store that is full or cannot be written is an `InvalidAction`.

    Nothing on the draft changes then (its text and other attachments stay); the cause goes
    to the log for ops. `BLOB_UPLOAD_MIN_FREE_BYTES` keeps space for inbound mail.
    """
    store = blob_store()
    try:
        require_room(store, len(data), int(current_app.config["BLOB_UPLOAD_MIN_FREE_BYTES"]))
        return store.put(data)
    except (OSError, SQLAlchemyError) as exc:
        reason = STORE_REASONS.get(getattr(exc, "errno", None), "the file store refused it")
        level = logging.INFO if isinstance(exc, NoRoom) else logging.WARNING
        log.log(level, "an upload of %d bytes could not be stored: %s: %s", len(data), type(exc).__name__,
                str(exc).splitlines()[0] if str(exc) else "")
        raise InvalidAction(f"The file could not be stored ({reason}). “{name}” is not attached; your draft and its "
                            "other attachments are kept. Try again later, or tell your administrator.") from None


def remove_draft_attachment(author: User | int, draft_id: int, index: int) -> Draft:
    draft = get_draft(author, draft_id)
    items = list(draft.attachments or [])
    if not 0 <= index < len(items):
        raise InvalidAction("That attachment is no longer on the draft.")
    del items[index]
    draft.attachments = items
    draft.updated_at = utcnow()
    return draft
