"""Our addresses as the composer sees them: every address of ours (left out of a reply's
recipients), the From addresses a user may send from, why a reply's From is not the address
the conversation came to (`from_notice`), and the queues' outbound addresses.
"""
from __future__ import annotations

from sqlalchemy import select

from app.extensions import db
from app.inbox.access import get_user
from app.inbox.choices import user_queues
from app.models.auth import Queue, Role, User
from app.models.channels import EmailAddress
from app.models.inbox import Conversation
from app.runtime.live import PublishedAddress, published_address


def own_addresses() -> set[str]:
    """Every address of ours: channel addresses and the contact-center mailboxes forwarding to them,
    by their draft names and by what is published (customers write to the published names while a
    rename waits for Publish)."""
    out = set()
    rows = db.session.execute(select(EmailAddress.address, EmailAddress.forwarded_from,
                                     EmailAddress.live_address, EmailAddress.published))
    for address, forwarded, live, published in rows:
        names = [address, forwarded, live, (published or {}).get("forwarded_from")]
        out.update(name.lower() for name in names if name)
    return out


def sending_addresses(user: User | int, conversation: Conversation | None = None) -> list[PublishedAddress]:
    """The live, outbound-capable addresses the user may send from.

    Supervisors and admins: every one. Agents: those linked to their queues, plus the
    conversation's own address when answering it.
    """
    user = get_user(user)
    if user.has_role(Role.SUPERVISOR):
        ids = list(db.session.scalars(select(EmailAddress.id).order_by(EmailAddress.address)))
    else:
        ids = sorted(queue_address_ids(user_queues(user)))
    if conversation is not None and conversation.address_id not in ids:
        ids.insert(0, conversation.address_id)
    out = []
    for i in ids:
        live = published_address(i)
        if live is not None and live.can_send:
            out.append(live)
    return out


def from_notice(conversation: Conversation | None, senders: list[PublishedAddress],
                from_address_id: int | None) -> str | None:
    """Why the composer's From is not the address the conversation came to, in the agent's words, or None.

    "Replies go out from Demo Support <support@…> because help@… only receives." — so a reply
    from another address is never a surprise. None for New Mail and when the conversation's own
    address is the From.
    """
    if conversation is None or from_address_id == conversation.address_id:
        return None
    chosen = next((s for s in senders if s.id == from_address_id), None)
    own = published_address(conversation.address_id)
    name = own.address if own is not None else db.session.scalar(
        select(EmailAddress.address).where(EmailAddress.id == conversation.address_id))
    if own is None:
        why = "is not live (disabled, archived or never published)"
    elif not own.can_send:
        why = "only receives"
    else:
        return None  # it could send: the agent chose another From themselves
    if chosen is None:
        return f"No reply can go out from {name}: it {why}."
    return f"Replies go out from {chosen.from_header} because {name} {why}."


def queue_address_ids(queues: list[Queue]) -> set[int]:
    """The ids of the addresses these queues' agents may send New Mail from.

    The link is the queue's "outbound addresses" (`Queue.outbound_address_ids`, edited
    on the flows area's queue page); `link_queue_address` adds one.
    """
    return {int(i) for q in queues for i in (q.outbound_address_ids or [])}


def link_queue_address(queue: Queue, address_id: int) -> None:
    """Let the queue's agents send from the address (idempotent; the caller commits)."""
    if address_id not in queue_address_ids([queue]):
        queue.outbound_address_ids = [*(queue.outbound_address_ids or []), address_id]
