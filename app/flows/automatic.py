"""Automatic mail: rule-triggered automatic replies and the queues' acknowledgements.

Every automatic mail goes through `queue_automatic_reply`, which asks
`app.flows.safety.refusal_reason` first and raises `AutomaticMailRefused` with the
reason when a safety rule or the per-customer cap forbids it; otherwise it hands the
mail to the outbound service (`app.runtime.outbound`) and records it in the
automatic-mail ledger (`AutomaticMail`), which the cap and the acknowledgement
interval read. The send job is enqueued only after the caller commits.
"""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.extensions import db
from app.flows import safety
from app.mail.html import sanitize_html
from app.mail.render import fill_placeholders
from app.mail.subjects import reply_subject
from app.models._types import utcnow
from app.models.flows import AutomaticMail
from app.models.inbox import Conversation, Message, customer_written
from app.runtime.live import published_address
from app.runtime.outbound import CannotSend, enqueue_send, queue_message
from app.transactions import on_commit


class AutomaticMailRefused(Exception):
    """A safety rule or cap forbids this automatic mail; `str(exc)` says which."""


def latest_inbound(conversation_id: int) -> Message | None:
    return db.session.scalar(select(Message).where(Message.conversation_id == conversation_id, customer_written())
                             .order_by(Message.created_at.desc(), Message.id.desc()).limit(1))


def _placeholders(conversation: Conversation, address) -> dict[str, str]:
    contact = conversation.contact
    return {"display_name": getattr(address, "display_name", "") or "",
            "address": getattr(address, "address", "") or "",
            "customer_name": (contact.name or contact.email.split("@")[0]) if contact else "",
            "agent_name": conversation.assignee.name if conversation.assignee else "",
            "conversation_reference": f"#{conversation.id}"}


def queue_automatic_reply(conversation_id: int, subject: str, body_html: str, kind: str,
                          queue_id: int | None = None) -> Message:
    """Queue one automatic mail to the conversation's customer, if every safety rule allows it.

    Renders and queues the outgoing `Message` through `app.runtime.outbound.queue_message`
    (`automatic` = kind, threaded to the customer's latest message), records it in the
    automatic-mail ledger, and hands it to the address's send job
    (`app.runtime.outbound.enqueue_send`, as agents' Sends are) once the caller commits. The send job renders it with
    ``Auto-Submitted: auto-replied``. Placeholders (``{{ customer_name }}``...) in
    subject and body are filled here.

    Raises `AutomaticMailRefused` with the reason: the address is not live or cannot
    send, the customer is an automatic/noreply/own/blocked address, the mail that
    triggered it was automatic, or the per-hour cap is reached.
    """
    conversation = db.session.get(Conversation, conversation_id)
    if conversation is None:
        raise LookupError(conversation_id)
    address = published_address(conversation.address_id)
    if address is None:
        raise AutomaticMailRefused("the address is not published or is disabled")
    if not address.can_send:
        raise AutomaticMailRefused("the address is inbound-only")
    recipient = conversation.contact.email.lower()
    trigger = latest_inbound(conversation.id)
    reason = safety.refusal_reason(conversation, recipient, trigger)
    if reason:
        raise AutomaticMailRefused(reason)
    values = _placeholders(conversation, address)
    html = sanitize_html(fill_placeholders(body_html, values))
    subject = fill_placeholders(subject, values).replace("\n", " ").strip() or conversation.subject
    try:
        # The outbound service renders it (template design, threading headers, Auto-Submitted).
        message = queue_message(conversation.id, to=[recipient], subject=subject, body_html=html,
                                address_id=address.id, parent_id=trigger.id if trigger else None,
                                quote=False, automatic=True)
    except CannotSend as exc:
        raise AutomaticMailRefused(f"the address cannot send: {exc}") from None
    message.automatic = kind
    now = message.created_at
    db.session.add(AutomaticMail(recipient=recipient, kind=kind, conversation_id=conversation.id,
                                 message_id=message.id, address_id=address.id,
                                 queue_id=queue_id or conversation.queue_id, created_at=now))
    db.session.flush()
    on_commit(enqueue_send, message.id, address_id=address.id)
    return message


def send_acknowledgement(conversation: Conversation) -> str:
    """The queue's "Acknowledgement Message for Email Channel", at most once per interval per customer.

    Returns what happened, for the run log.
    """
    queue = conversation.queue
    if queue is None or not queue.ack_enabled or not queue.ack_body_html:
        return ""
    recipient = conversation.contact.email.lower()
    since = utcnow() - timedelta(minutes=queue.ack_interval_minutes)
    recent = db.session.scalar(select(AutomaticMail.id).where(
        AutomaticMail.recipient == recipient, AutomaticMail.kind == "acknowledgement",
        AutomaticMail.queue_id == queue.id, AutomaticMail.created_at > since).limit(1))
    if recent is not None:
        return f"acknowledgement not sent: one went to {recipient} within {_interval(queue.ack_interval_minutes)}"
    subject = queue.ack_subject or reply_subject(conversation.subject)
    try:
        message = queue_automatic_reply(conversation.id, subject, queue.ack_body_html, "acknowledgement", queue.id)
    except AutomaticMailRefused as exc:
        return f"acknowledgement not sent: {exc}"
    return f"acknowledgement queued (message {message.id})"


def _interval(minutes: int) -> str:
    if minutes % 60 == 0:
        hours = minutes // 60
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{minutes} minutes"
