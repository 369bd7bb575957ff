"""Queues as admins set them up: members, business hours, the acknowledgement.

Agents' email capacity is set for each user in Admin › Users (`app.auth.accounts`).

How conversations are routed to a queue's members is `app.flows.routing`; the
acknowledgement a queue sends is `app.flows.automatic.send_acknowledgement`.
"""
from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.extensions import begin_nested, db
from app.flows import routing
from app.mail.html import sanitize_html
from app.mail.render import TemplateError, check_template
from app.models.auth import Queue, User

ACK_MIN_MINUTES, ACK_MAX_MINUTES = 15, 72 * 60
UNASSIGNED_QUEUE = "Unassigned"


def _chosen_queue() -> Queue | None:
    queue = db.session.scalar(select(Queue).where(Queue.is_default.is_(True)).order_by(Queue.id).limit(1))
    return queue or db.session.scalar(select(Queue).order_by(Queue.name, Queue.id).limit(1))


def default_queue() -> Queue:
    """The queue that mail matching no flow rule (or on an address without a flow) lands in.

    The one admins chose on the Queues page; else the first queue by name; else a queue
    named "Unassigned" is created. Never None: new mail always lands in a queue.
    """
    queue = _chosen_queue()
    if queue is None:
        # Two workers may meet an empty Queues table at once: the loser's insert hits the
        # unique name, its savepoint rolls back, and it takes the queue the winner committed.
        try:
            with begin_nested():
                queue = Queue(name=UNASSIGNED_QUEUE, description="Mail that no flow routed")
                db.session.add(queue)
                db.session.flush()
        except IntegrityError:
            queue = _chosen_queue()
            if queue is None:
                raise
    return queue


def default_queue_name() -> str:
    """The name `default_queue()` would answer with, without creating anything."""
    queue = _chosen_queue()
    return queue.name if queue is not None else UNASSIGNED_QUEUE


def set_default_queue(queue_id: int) -> Queue:
    """Make this queue the default one (and no other). Raises `LookupError` for an unknown queue."""
    queue = db.session.get(Queue, queue_id)
    if queue is None:
        raise LookupError(queue_id)
    for other in db.session.scalars(select(Queue).where(Queue.is_default.is_(True), Queue.id != queue.id)):
        other.is_default = False
    queue.is_default = True
    db.session.flush()
    return queue


def all_queues() -> list[Queue]:
    return list(db.session.scalars(select(Queue).order_by(Queue.name)))


def save_queue(queue_id: int | None, *, name: str, description: str = "", member_ids: list[int] = (),
               time_zone: str = "UTC", hours_text: str = "", holidays_text: str = "",
               ack_enabled: bool = False, ack_subject: str = "", ack_body_html: str = "",
               ack_interval_minutes: int = 24 * 60, outbound_address_ids: list[int] = ()) -> Queue:
    """Create or change a queue. Raises `ValueError` (with the field in `args[1]`) or `HoursError`."""
    name = (name or "").strip()
    if not name:
        raise ValueError("Give the queue a name.", "name")
    clash = db.session.scalar(select(Queue).where(func.lower(Queue.name) == name.lower()))
    if clash is not None and clash.id != queue_id:
        raise ValueError("A queue with this name exists already.", "name")
    try:
        time_zone = routing.check_time_zone(time_zone)
        hours = routing.parse_hours(hours_text, holidays_text)
    except routing.HoursError as exc:
        raise ValueError(str(exc), "hours") from None
    if not ACK_MIN_MINUTES <= int(ack_interval_minutes) <= ACK_MAX_MINUTES:
        raise ValueError("The interval is between 15 minutes and 72 hours.", "ack_interval_minutes")
    ack_body_html = sanitize_html(ack_body_html or "").strip()
    if ack_enabled and not ack_body_html:
        raise ValueError("Write the acknowledgement message, or switch it off.", "ack_body_html")
    try:
        check_template(ack_body_html)
        check_template(ack_subject or "")
    except TemplateError as exc:
        raise ValueError(str(exc), "ack_body_html") from None
    queue = db.session.get(Queue, queue_id) if queue_id else None
    if queue_id and queue is None:
        raise LookupError(queue_id)
    if queue is None:
        queue = Queue(name=name)
        db.session.add(queue)
    queue.name, queue.description = name, (description or "").strip()
    queue.members = list(db.session.scalars(select(User).where(User.id.in_(list(member_ids)))))
    queue.time_zone, queue.business_hours = time_zone, hours
    queue.ack_enabled, queue.ack_subject, queue.ack_body_html = bool(ack_enabled), (ack_subject or "").strip(), ack_body_html
    queue.ack_interval_minutes = int(ack_interval_minutes)
    queue.outbound_address_ids = sorted({int(i) for i in outbound_address_ids})
    db.session.flush()
    return queue
