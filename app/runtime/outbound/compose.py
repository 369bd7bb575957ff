"""Compose: render an outgoing message once and queue it, its bytes frozen beside the row.

Also the two changes of state made outside the send job: a failed message queued again
by hand (`retry_message`) and a sent one that bounced (`mark_bounced`).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.utils import getaddresses

from flask import current_app
from sqlalchemy import and_, bindparam, case, exists, or_, select

from app.blobs import BlobNotFound, blob_store
from app.extensions import attach_inserted, db
from app.mail.addresses import InvalidAddress, check_address
from app.mail.html import text_to_html
from app.mail.mime import display_address
from app.mail.render import (Draft, OutgoingAttachment, QuotedMessage, public_address, recipients_for,
                             render_message)
from app.mail.subjects import reply_subject
from app.mail.tokens import make_message_id
from app.mail.vcard import contact_card_attachment
from app.models._types import utcnow
from app.models.auth import User
from app.models.inbox import Attachment, Contact, Conversation, Message, OutgoingMime, customer_written
from app.runtime import facts
from app.runtime.changes import publish_change
from app.runtime.live import PublishedAddress
from app.runtime.template_images import inline_images
from app.runtime.outbound.senders import CannotSend, sending_address, transport_settings
from app.runtime.outbound.states import BOUNCED, QUEUED, RETRYABLE_BY_HAND
from app.units import human_size


class NotRetryable(ValueError):
    """Only a failed outgoing message can be sent again by hand."""


def _clean_recipients(values, field: str) -> list[str]:
    """Each recipient as `Name <addr>` text (domain in punycode); `CannotSend` names the first one
    that `app.mail.addresses.check_address` refuses, with its reason."""
    out = []
    raw = [v for v in (values or []) if v and v.strip()]
    for name, addr in getaddresses(raw):
        if not addr and not name:
            continue
        try:
            checked = check_address(addr)
            out.append(str(Address(display_name=name, addr_spec=checked.ascii_email)))
        except (InvalidAddress, ValueError, IndexError, HeaderParseError) as exc:
            reason = f": {exc}" if isinstance(exc, InvalidAddress) else "."
            raise CannotSend(f"{field}: “{addr or name}” is not an email address{reason}") from None
    return out


def _bracket(message_id: str | None) -> str | None:
    if not message_id:
        return None
    message_id = message_id.strip()
    return message_id if message_id.startswith("<") else f"<{message_id}>"


@dataclass(frozen=True)
class _Thread:
    """What queueing needs of a conversation (and of the author), read in one query."""

    id: int
    address_id: int | None
    token: str
    subject: str
    contact_id: int | None
    contact_email: str | None
    contact_name: str | None
    default_parent_id: int | None  # what a reply answers unless told: see `_DEFAULT_PARENT`
    author_name: str | None
    author_signature: str | None  # the author's profile signature (HTML)


def _run(statement, params: dict):
    """Run a prebuilt Core statement on the session's connection (its transaction), without the ORM layer.

    For the queueing path's column selects, its UPDATE and its INSERT of the bytes: `Session.execute`
    adds its own bookkeeping to each one, and these statements need none of it.
    """
    return db.session.connection().execute(statement, params)


# The statements of the queueing path, built once: building a SELECT (SQLAlchemy's construction and
# cache-key walk) costs more than running it on SQLite.
_DEFAULT_PARENT = (
    # The customer's latest message (not an out-of-office or report), else our latest one with a Message-ID.
    select(Message.id).where(Message.conversation_id == Conversation.id,
                             or_(customer_written(),
                                 and_(Message.direction == "out", Message.message_id.is_not(None))))
    .order_by(case((Message.direction == "in", 0), else_=1), Message.created_at.desc(), Message.id.desc()).limit(1)
    .correlate(Conversation).scalar_subquery())
_THREAD = (select(Conversation.id, Conversation.address_id, Conversation.token, Conversation.subject,
                  Conversation.contact_id, Contact.email, Contact.name, _DEFAULT_PARENT,
                  select(User.name).where(User.id == bindparam("author_id")).scalar_subquery(),
                  select(User.signature_html).where(User.id == bindparam("author_id")).scalar_subquery())
           .outerjoin(Contact, Contact.id == Conversation.contact_id).where(Conversation.id == bindparam("id")))
_PARENT = select(Message.id, Message.conversation_id, Message.message_id, Message.references, Message.created_at,
                 Message.from_addr, Message.html, Message.text).where(Message.id == bindparam("id"))
_THREAD_IDS = (select(Message.message_id).where(Message.conversation_id == bindparam("conversation_id"),
                                                Message.message_id.is_not(None))
               .order_by(Message.created_at, Message.id))
_EARLIER_IDS = _THREAD_IDS.where(Message.id != bindparam("parent_id"), Message.created_at <= bindparam("before"))
_INTRODUCED = select(exists(
    select(Message.id).join(Conversation, Message.conversation_id == Conversation.id)
    .where(Conversation.contact_id == bindparam("contact_id"), Message.address_id == bindparam("address_id"),
           Message.direction == "out")))
_TOUCH_CONVERSATION = Conversation.__table__.update().where(Conversation.__table__.c.id == bindparam("cid"))


def _thread(conversation_id: int, author_id: int | None = None) -> _Thread:
    db.session.flush()  # the statements below bypass autoflush: the caller's pending rows first
    row = _run(_THREAD, {"id": conversation_id, "author_id": author_id}).first()
    if row is None:
        raise LookupError(f"no conversation {conversation_id}")
    return _Thread(*row)


def thread_headers(conversation_id: int, parent) -> tuple[str | None, list[str]]:
    """(In-Reply-To, References) of a message answering `parent` in the conversation.

    `parent` is a `Message` or a row with its `id`, `message_id`, `references` and
    `created_at`. References is the parent's References plus its Message-ID
    (RFC 5322); when the parent has none we rebuild the chain from the
    conversation's Message-IDs. The renderer caps the list.
    """
    if parent is None or not parent.message_id:
        chain = [_bracket(m) for m in _run(_THREAD_IDS, {"conversation_id": conversation_id}).scalars() if m]
        return (chain[-1] if chain else None), chain
    if parent.references and parent.references.strip():
        refs = [_bracket(r) for r in parent.references.split()]
    else:
        refs = [_bracket(m) for m in _run(_EARLIER_IDS, {
            "conversation_id": conversation_id, "parent_id": parent.id, "before": parent.created_at}).scalars() if m]
    parent_id = _bracket(parent.message_id)
    refs = [r for r in refs if r != parent_id] + [parent_id]
    seen, unique = set(), []
    for r in refs:
        if r not in seen:
            seen.add(r)
            unique.append(r)
    return parent_id, unique


_CONTACT_NAME = select(Contact.name).where(Contact.email == bindparam("email"))  # stored lower-cased


def recipient_name(customer_email: str | None, customer_name: str | None, to: list[str]) -> str:
    """Whom `{{ customer_name }}` names in a message to `to`: its recipient, not always the customer.

    The customer's name when the customer is in To (a reply); else, as for a Forward to a third
    party, the first To recipient's display name, or the name of a contact with that address;
    else empty (the template's greeting then collapses: "Hello," — see `fill_placeholders`).
    """
    pairs = [(name, addr) for name, addr in getaddresses(to) if addr]
    if customer_email and any(addr.lower() == customer_email.lower() for _, addr in pairs):
        return customer_name or next((n for n, a in pairs if a.lower() == customer_email.lower() and n), "")
    if not pairs:
        return ""
    name, addr = pairs[0]
    if name.strip():
        return name.strip()
    return _run(_CONTACT_NAME, {"email": addr.lower()}).scalar() or ""


def _is_introduction(sender: PublishedAddress, thread: _Thread, recipients: list[str]) -> bool:
    """The first message from this address to this customer, and the customer is a recipient."""
    if not sender.send_vcard or thread.contact_id is None:
        return False
    if thread.contact_email.lower() not in {a.lower() for _, a in getaddresses(recipients)}:
        return False
    return not _run(_INTRODUCED, {"contact_id": thread.contact_id, "address_id": sender.id}).scalar()


def queue_message(conversation_id: int, *, to: list[str], subject: str, body_html: str,
                  cc: list[str] = (), bcc: list[str] = (), attachments: list[OutgoingAttachment] = (),
                  address_id: int | None = None, author_id: int | None = None,
                  parent_id: int | None = None, quote: bool = False, automatic: bool = False,
                  check_transport: bool = True) -> Message:
    """Render and queue one outgoing message of a conversation; returns the new `Message` (flushed).

    `address_id` defaults to the conversation's address; `parent_id` is the message
    answered (threading headers and, with `quote`, the quoted history). The caller
    hands it to `enqueue_send` through `app.transactions.on_commit` and commits.

    Raises `LookupError` (no such conversation or parent) and `CannotSend` (the
    address may not send, no SMTP server, no or bad recipients).
    """
    return _queue(_thread(conversation_id, author_id), to=to, cc=cc, bcc=bcc, subject=subject, body_html=body_html,
                  attachments=attachments, address_id=address_id, author_id=author_id, parent_id=parent_id,
                  quote=quote, automatic=automatic, check_transport=check_transport)


def _queue(thread: _Thread, *, to, cc, bcc, subject, body_html, attachments, address_id, author_id, parent_id,
           quote, automatic, check_transport=True) -> Message:
    # Reads are column selects, not ORM loads: this is on the path of every reply an agent sends.
    sender = sending_address(address_id if address_id is not None else thread.address_id)
    if check_transport:
        transport_settings(sender)  # refuse now, not in the worker, when no server is usable
    to, cc, bcc = _clean_recipients(to, "To"), _clean_recipients(cc, "Cc"), _clean_recipients(bcc, "Bcc")
    if not (to or cc or bcc):
        raise CannotSend("Add at least one recipient.")
    limit = current_app.config["SEND_MAX_RECIPIENTS"]
    if len(to) + len(cc) + len(bcc) > limit:
        raise CannotSend(f"This message has {len(to) + len(cc) + len(bcc)} recipients; one message may have at "
                         f"most {limit} (To, Cc and Bcc together).")
    parent = None
    if parent_id is not None:
        parent = _run(_PARENT, {"id": parent_id}).first()
        if parent is None or parent.conversation_id != thread.id:
            raise LookupError(f"no message {parent_id} in conversation {thread.id}")
    in_reply_to, references = thread_headers(thread.id, parent)

    files = list(attachments) + inline_images(sender)  # the header's and footer's images, by Content-ID
    if _is_introduction(sender, thread, to + cc):
        files.append(contact_card_attachment(sender.display_name, public_address(sender),
                                             current_app.config.get("ORGANISATION_NAME", "")))
    quoted = None
    if quote and parent is not None:
        quoted = QuotedMessage(parent.from_addr, parent.created_at, parent.html or text_to_html(parent.text),
                               text=parent.text or None)
    now = utcnow()
    draft = Draft(
        to=to, cc=cc, bcc=bcc, subject=subject or "", body_html=body_html or "", quoted=quoted, attachments=files,
        # On the sender's own domain (the platform domain for platform addresses): a Message-ID whose
        # domain matches From is what receiving filters expect; threading reads only the token.
        message_id=make_message_id(thread.token, sender.address.rpartition("@")[2].lower()
                                   or current_app.config["PLATFORM_MAIL_DOMAIN"]),
        in_reply_to=in_reply_to, references=references, automatic=automatic, date=now,
        signature_html="" if automatic else (thread.author_signature or ""),
        placeholders={
            "customer_name": recipient_name(thread.contact_email, thread.contact_name, to),
            "agent_name": thread.author_name or "",
            "conversation_reference": f"#{thread.id}",
        },
    )
    rendered = render_message(sender, draft)
    limit = current_app.config["SEND_MAX_MESSAGE_BYTES"]
    if len(rendered.raw) > limit:
        raise CannotSend(f"This message is {human_size(len(rendered.raw))} with its attachments encoded for mail; "
                         f"the limit is {human_size(limit)}. Remove an attachment or send it in several messages.")
    _to, _cc, all_bcc, reply_to = recipients_for(sender, draft)
    values = dict(
        conversation_id=thread.id, address_id=sender.id, direction="out", message_id=draft.message_id,
        in_reply_to=in_reply_to, references=" ".join(references) or None, from_addr=rendered.from_header,
        to_addrs=", ".join(to), cc_addrs=", ".join(cc), bcc_addrs=", ".join(all_bcc), reply_to=reply_to or "",
        subject=draft.subject, text=rendered.text, html=rendered.html,
        delivery_status=QUEUED, delivery_attempts=0, next_attempt_at=now, author_id=author_id, created_at=now,
        no_auto_reply=False,
    )
    message = _insert_message(values, rendered.raw, files, thread.id, now)
    if author_id is not None and not automatic:
        facts.agent_replied(thread.id, author_id, now)  # an agent's reply (automatic mail is not a response)
    return message


_INSERT_MIME = OutgoingMime.__table__.insert()
_INSERT_MESSAGE = Message.__table__.insert()


def _insert_message(values: dict, raw: bytes, files: list[OutgoingAttachment], conversation_id: int,
                    now: datetime) -> Message:
    """Insert the row (Core, then attached as a persistent `Message`), its bytes and its attachments."""
    conversation = db.session.identity_map.get(db.session.identity_key(Conversation, conversation_id))
    if conversation is not None:  # the caller holds it: keep its state in step
        conversation.last_message_at = now
    else:
        _run(_TOUCH_CONVERSATION, {"cid": conversation_id, "last_message_at": now})
    message_id = _run(_INSERT_MESSAGE, values).inserted_primary_key[0]
    _run(_INSERT_MIME, {"message_id": message_id, "data": raw})
    message = Message(id=message_id, **values)
    attach_inserted(db.session(), message)
    publish_change(conversation_id, "message")  # the colleagues' open pages, once it commits
    if files:
        store = blob_store()
        db.session.add_all(Attachment(
            message_id=message_id, filename=f.filename, content_type=f.content_type.split(";")[0].strip(),
            size=len(f.data), content_id=f.content_id, inline=bool(f.content_id), sha256=store.put(f.data))
            for f in files)
        db.session.flush()
    return message


_MIME = select(OutgoingMime.data).where(OutgoingMime.message_id == bindparam("id"))


def outgoing_bytes(message_id: int, raw_sha256: str | None = None) -> bytes | None:
    """The bytes to send for an outgoing message, or None when they are gone.

    From `outgoing_mime`; a message queued before that table existed has them in the
    blob store under `raw_sha256`.
    """
    data = _run(_MIME, {"id": message_id}).scalar()
    if data is not None:
        return bytes(data)
    if raw_sha256:
        try:
            return blob_store().get(raw_sha256)
        except BlobNotFound:
            return None
    return None


_HAS_MIME = select(exists(select(OutgoingMime.message_id).where(OutgoingMime.message_id == bindparam("id"))))


def _has_bytes(message_id: int, raw_sha256: str | None) -> bool:
    """Whether the bytes to send are still there (`outgoing_mime`, else the blob store), without loading them."""
    if _run(_HAS_MIME, {"id": message_id}).scalar():
        return True
    return bool(raw_sha256) and blob_store().exists(raw_sha256)


def send_reply(conversation_id: int, author_id: int | None, body_html: str, *, to: list[str] | None = None,
               cc: list[str] = (), bcc: list[str] = (), subject: str | None = None,
               attachments: list[OutgoingAttachment] = (), parent_id: int | None = None, quote: bool = True,
               automatic: bool = False, address_id: int | None = None, check_transport: bool = True) -> Message:
    """Queue a reply in a conversation, with a reply's defaults; returns the `Message` (flushed).

    Defaults: answers the customer's latest message (or the latest message with a
    Message-ID), to the customer, subject "Re: <conversation subject>", quoting
    the answered message. The caller hands it to `enqueue_send` after its commit (`on_commit`).
    Raises `LookupError` and `CannotSend` like `queue_message`; `check_transport=False` renders
    even when no SMTP server is configured yet (the demo seed's message that failed).
    """
    thread = _thread(conversation_id, author_id)
    if parent_id is None:
        parent_id = thread.default_parent_id
    if to is None:
        if thread.contact_email is None:
            raise CannotSend("This conversation has no customer to reply to.")
        to = [display_address(thread.contact_name or "", thread.contact_email)]
    if subject is None:
        subject = reply_subject(thread.subject)
    return _queue(thread, to=to, cc=cc, bcc=bcc, subject=subject, body_html=body_html, attachments=attachments,
                  address_id=address_id, author_id=author_id, parent_id=parent_id, quote=quote, automatic=automatic,
                  check_transport=check_transport)


def retry_message(message_id: int) -> Message:
    """Put a failed message back in the queue (by hand); the caller hands it to `enqueue_send` after its commit.

    Raises `LookupError`, `NotRetryable` (not an outgoing message that failed, or its rendered
    bytes are gone) and `CannotSend` (its address can no longer send). A refusal changes nothing:
    the failed message keeps its diagnostic (the server's words), which only a new attempt replaces.
    """
    message = db.session.get(Message, message_id)
    if message is None or message.direction != "out":
        raise LookupError(f"no outgoing message {message_id}")
    if message.delivery_status != RETRYABLE_BY_HAND:
        raise NotRetryable("Only a message that failed can be sent again.")
    transport_settings(sending_address(message.address_id))
    if not _has_bytes(message.id, message.raw_sha256):
        raise NotRetryable("This message cannot be sent again: its rendered copy is missing. Write it again.")
    message.delivery_status = QUEUED
    message.delivery_attempts = 0
    message.next_attempt_at = utcnow()
    message.delivery_error = None
    message.smtp_code = None
    message.smtp_reply = None
    return message


def mark_bounced(message_id: int, diagnostic: str) -> Message | None:
    """Inbound bounce handling: a DSN says this sent message did not arrive. The caller commits.

    Returns the message, or None when it is not one of our outgoing messages.
    """
    message = db.session.get(Message, message_id)
    if message is None or message.direction != "out":
        return None
    message.delivery_status = BOUNCED
    message.delivery_error = (diagnostic or "The recipient's server returned the message.").strip()[:4000]
    return message
