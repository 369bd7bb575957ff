"""Sending: `send_draft` validates a draft (`check_draft`), turns it into an outgoing `Message`
(queued, rendered by the outbound service), deletes the draft and, once the caller has
committed, hands the message to `deliver()`, the one seam to the send queue. `retry_delivery`
is the Retry of a failed message.

A recipient on the suppression list (their mail bounced: `app.runtime.suppression`) is a
warning, not an error: `recipient_warnings` says so while the agent types, and `send_draft`
asks for a confirmation (`SuppressedRecipients`) before it sends anyway, which clears nothing.
"""
from __future__ import annotations

import logging
from datetime import datetime

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import or_, select

from app.blobs import blob_store
from app.extensions import db
from app.inbox import recipients as rules
from app.inbox.access import InvalidAction, NotFound, get_message, get_user
from app.inbox.addresses import sending_addresses
from app.inbox.choices import user_queues
from app.inbox.drafts import get_draft
from app.inbox.lists import mark_seen
from app.mail.html import html_to_text, sanitize_html
from app.mail.render import OutgoingAttachment
from app.mail.tokens import new_conversation_token
from app.models._types import utcnow
from app.models.auth import User
from app.models.inbox import Contact, Conversation, Draft, Message
from app.runtime.live import PublishedAddress
from app.runtime import sla
from app.runtime.outbound import CannotSend, NotRetryable, enqueue_send, queue_message, retry_message
from app.runtime.suppression import describe, suppressed_among
from app.transactions import on_commit

log = logging.getLogger(__name__)


class DraftInvalid(ValueError):
    """The draft cannot be sent yet: `errors` maps a field name to what is wrong."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class NewerMessage(Exception):
    """A message arrived (or a colleague sent one) after the agent started this draft."""

    def __init__(self, message: Message) -> None:
        super().__init__(message.id)
        self.message = message


class SuppressedRecipients(Exception):
    """Some recipients are on the suppression list; `warnings` says of each when and why their mail bounced."""

    def __init__(self, warnings: list[str]) -> None:
        super().__init__("; ".join(warnings))
        self.warnings = warnings


def recipient_warnings(emails: list[str]) -> list[str]:
    """One line per suppressed address among these, in their order ("Mail to … bounced on …: …")."""
    found = suppressed_among(emails)
    seen, lines = set(), []
    for email in emails:
        row = found.get(email.strip().lower())
        if row is not None and row.email not in seen:
            seen.add(row.email)
            lines.append(describe(row))
    return lines


def check_draft(author: User | int, draft: Draft) -> tuple[PublishedAddress, dict[str, rules.AddressList]]:
    """Validate a draft for sending; raises `DraftInvalid` with one message per field."""
    author = get_user(author)
    errors: dict[str, str] = {}
    lists = {name: rules.parse_addresses(getattr(draft, f"{name}_addrs") or "") for name in ("to", "cc", "bcc")}
    for name, parsed in lists.items():
        if parsed.errors:
            errors[name] = " ".join(parsed.errors)
    if not lists["to"].addresses and "to" not in errors:
        errors["to"] = "Add at least one recipient in To."
    count = sum(len(p.addresses) for p in lists.values())
    if count > current_app.config["SEND_MAX_RECIPIENTS"]:
        errors["to"] = f"At most {current_app.config['SEND_MAX_RECIPIENTS']} recipients per message."
    if not (draft.subject or "").strip():
        errors["subject"] = "Write a subject."
    if not html_to_text(draft.body or "").strip():
        errors["body"] = "Write a message."
    conversation = db.session.get(Conversation, draft.conversation_id) if draft.conversation_id else None
    allowed = {a.id: a for a in sending_addresses(author, conversation)}
    sender = allowed.get(draft.from_address_id)
    if sender is None:
        errors["from_address"] = ("Choose a From address." if allowed else
                                  "None of your queues has a published address that can send.")
    if draft.kind == "new":
        queues = {q.id for q in user_queues(author)}
        if draft.queue_id not in queues:
            errors["queue"] = "Choose a queue."
    if errors:
        raise DraftInvalid(errors)
    return sender, lists


def send_draft(draft_id: int, user_id: int, confirm_newer: bool = False,
               confirm_suppressed: bool = False) -> Message:
    """Send a draft: validate, create the outgoing Message (queued), delete the draft; deliver once committed.

    The caller commits; `deliver()` runs after that commit (`app.transactions.on_commit`),
    so the send job never looks for a row that is not there yet. Raises `NotFound`,
    `DraftInvalid` (what to fix, per field), `NewerMessage` when the conversation got a
    message after the draft was started and `confirm_newer` is not set, and
    `SuppressedRecipients` when a recipient is suppressed and `confirm_suppressed` is not set.
    """
    author = get_user(user_id)
    draft = get_draft(author, draft_id)
    sender, lists = check_draft(author, draft)
    conversation = db.session.get(Conversation, draft.conversation_id) if draft.conversation_id else None
    if conversation is not None and not confirm_newer:
        newer = db.session.scalar(select(Message).where(
            Message.conversation_id == conversation.id, Message.direction != "note",
            Message.id > (draft.base_message_id or 0),
            or_(Message.author_id.is_(None), Message.author_id != author.id))
            .order_by(Message.id.desc()).limit(1))
        if newer is not None:
            raise NewerMessage(newer)
    if not confirm_suppressed:
        warnings = recipient_warnings([e for name in ("to", "cc", "bcc") for e in lists[name].emails])
        if warnings:
            raise SuppressedRecipients(warnings)
    now = utcnow()
    if conversation is None:
        conversation = _new_conversation(author, draft, sender, lists["to"], now)
    store = blob_store()
    files = [OutgoingAttachment(item["filename"], item["content_type"], store.get(item["sha256"]))
             for item in draft.attachments or [] if item.get("included", True)]
    files += forwarded_inline_parts(draft)
    try:
        # The outbound service renders (template design, quote, threading headers, vCard) and queues it.
        message = queue_message(
            conversation.id, to=lists["to"].addresses, cc=lists["cc"].addresses, bcc=lists["bcc"].addresses,
            subject=draft.subject.strip(), body_html=sanitize_html(draft.body or ""), attachments=files,
            address_id=sender.id, author_id=author.id, parent_id=draft.reply_to_message_id,
            quote=draft.kind in ("reply", "reply_all"))
    except CannotSend as exc:
        db.session.rollback()
        raise DraftInvalid({"from_address": str(exc)}) from None
    conversation.last_message_at = now
    sla.agent_replied(conversation, now)
    db.session.delete(draft)
    mark_seen(author.id, conversation.id)
    on_commit(deliver, message.id, address_id=sender.id)
    return message


def forwarded_inline_parts(draft: Draft) -> list[OutgoingAttachment]:
    """The forwarded message's inline images (by Content-ID) that the Forward's HTML still shows.

    A Forward starts with the forwarded message's HTML, `cid:` references and all; the
    recipient sees those images only when the parts with those Content-IDs travel along
    (multipart/related). An image the agent deleted from the text is left out.
    """
    if draft.kind != "forward" or draft.reply_to_message_id is None:
        return []
    message = db.session.get(Message, draft.reply_to_message_id)
    if message is None:
        return []
    body = (draft.body or "").lower()
    store, parts, seen = blob_store(), [], set()
    for a in message.attachments:
        cid = (a.content_id or "").strip().strip("<>")
        if cid and cid.lower() not in seen and f"cid:{cid.lower()}" in body:
            seen.add(cid.lower())
            parts.append(OutgoingAttachment(a.filename or "image", a.content_type, store.get(a.sha256), content_id=cid))
    return parts


def _new_conversation(author: User, draft: Draft, sender: PublishedAddress, to: rules.AddressList,
                      now: datetime) -> Conversation:
    email = to.emails[0].lower()
    contact = db.session.scalar(select(Contact).where(Contact.email == email))
    if contact is None:
        name = next((n for n, a in rules.getaddresses(to.addresses[:1]) if a), "")
        contact = Contact(email=email, name=name)
        db.session.add(contact)
    conversation = Conversation(address_id=sender.id, contact=contact, token=new_conversation_token(),
                                subject=draft.subject.strip(), status="open", queue_id=draft.queue_id,
                                assignee_id=author.id, created_at=now, last_message_at=now)
    db.session.add(conversation)
    db.session.flush()
    return conversation


def deliver(message_id: int, address_id: int | None = None) -> None:
    """Hand a committed, queued message to the send queue (`app.runtime.outbound.enqueue_send`).

    The job id is deterministic (`send-message-<id>`), so a double click never sends
    twice; with the sending `address_id`, a send job of that address that is still
    waiting takes this message too (no job of its own). When Redis is unreachable the
    message stays "queued" and the outbound cron sweep enqueues it later (logged).
    """
    try:
        enqueue_send(message_id, address_id=address_id)
    except RedisError as exc:
        log.error("message %s is queued but could not be handed to the send queue: %s", message_id, exc)


def retry_delivery(message_id: int, user_id: int | None = None) -> Message:
    """"Retry" for a failed message: back to queued (`outbound.retry_message`); `deliver()` once the caller commits.

    A bounced message is not retried: the recipient's server already said it will not take it
    (the agent writes again, to a corrected address if need be).

    Raises `NotFound` (or not visible to `user_id`), `InvalidAction` when the message
    is not failed or its address can no longer send.
    """
    message = get_message(user_id, message_id) if user_id is not None else db.session.get(Message, message_id)
    if message is None:
        raise NotFound("message")
    if message.direction != "out" or message.delivery_status != "failed":
        raise InvalidAction("Only a message that failed can be sent again.")
    try:
        retry_message(message.id)
    except (NotRetryable, CannotSend) as exc:
        db.session.rollback()
        raise InvalidAction(str(exc)) from None
    on_commit(deliver, message.id)
    return message
