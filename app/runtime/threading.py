"""Which conversation an incoming message belongs to.

`find_conversation()` applies DESIGN.md's rules in order, always within the
receiving address (one channel's mail never threads into another's):

1. **Our own mail**: an In-Reply-To/References id that is the Message-ID of a
   message we sent, or a conversation token found in such an id
   (`<ph.{token}.{random}@domain>`, see `app.mail.tokens`), even when our Message
   row is gone or the client kept only part of the chain.
2. **The customer's chain**: an In-Reply-To/References id of a message we
   received before.
3. **Subject**: only for the same customer (the contact), a conversation whose
   subject without prefixes (`app.mail.subjects.thread_key`: "Re: AW: [2] Fwd: Order 17" -> "order 17") is the same and
   whose last message is inside the window (`THREAD_WINDOW_DAYS`). Two customers
   are never merged on subject alone. For an automatic reply (`automatic=True`) the
   out-of-office and read-receipt prefixes go too ("Automatic reply: Re: Order 17").

With "Channel-Based Sessions" each To address gets its own conversations: rules
2 and 3 only look at conversations of the same session key (the To address);
rule 1 (our own ids) stays authoritative. The caller chooses the contact: with
"Use Reply-To for User Identity" it is the Reply-To address, not From.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from app.extensions import db
from app.mail.subjects import thread_key
from app.mail.tokens import tokens_in
from app.models.inbox import Conversation, Message


def find_conversation(address_id: int, *, in_reply_to: str | None, references: list[str], subject: str,
                      contact_id: int | None, session_key: str | None, now: datetime,
                      window_days: int, automatic: bool = False) -> tuple[Conversation | None, str]:
    """The conversation to add the message to and the rule that found it ("" when none).

    `automatic`: the message is an automatic reply, whose subject carries its own prefixes.
    A conversation merged into another (`Conversation.merged_into_id`) leads to that one.
    """
    found, rule = _find_conversation(address_id, in_reply_to=in_reply_to, references=references, subject=subject,
                                     contact_id=contact_id, session_key=session_key, now=now,
                                     window_days=window_days, automatic=automatic)
    for _ in range(10):  # merged into one that was merged in turn; bounded
        if found is None or found.merged_into_id is None:
            break
        found = db.session.get(Conversation, found.merged_into_id)
    return found, rule


def _find_conversation(address_id: int, *, in_reply_to: str | None, references: list[str], subject: str,
                       contact_id: int | None, session_key: str | None, now: datetime,
                       window_days: int, automatic: bool = False) -> tuple[Conversation | None, str]:
    ids = [i for i in ([in_reply_to] if in_reply_to else []) + list(reversed(references or [])) if i]
    ids = list(dict.fromkeys(ids))[:100]

    if ids:
        # 1. Our own outgoing Message-IDs.
        row = db.session.execute(
            select(Conversation).join(Message, Message.conversation_id == Conversation.id)
            .where(Message.message_id.in_(ids), Message.direction == "out", Conversation.address_id == address_id)
            .order_by(Message.created_at.desc()).limit(1)
        ).scalar_one_or_none()
        if row is not None:
            return row, "our message id"
    tokens = tokens_in(in_reply_to, " ".join(references or []))
    if tokens:
        row = db.session.scalars(
            select(Conversation).where(Conversation.token.in_(tokens), Conversation.address_id == address_id)
        ).first()
        if row is not None:
            return row, "conversation token"

    if ids:
        # 2. A message we received before.
        query = (select(Conversation).join(Message, Message.conversation_id == Conversation.id)
                 .where(Message.message_id.in_(ids), Conversation.address_id == address_id))
        if session_key is not None:
            query = query.where(Conversation.session_key == session_key)
        row = db.session.scalars(query.order_by(Message.created_at.desc()).limit(1)).first()
        if row is not None:
            return row, "references"

    # 3. Same customer, same normalised subject, inside the window.
    key = thread_key(subject, automatic=automatic)
    if contact_id is None or not key:
        return None, ""
    query = select(Conversation).where(
        Conversation.address_id == address_id, Conversation.contact_id == contact_id,
        Conversation.last_message_at >= now - timedelta(days=window_days),
    )
    if session_key is not None:
        query = query.where(Conversation.session_key == session_key)
    for conversation in db.session.scalars(query.order_by(Conversation.last_message_at.desc()).limit(200)):
        if thread_key(conversation.subject) == key:
            return conversation, "subject"
    return None, ""
