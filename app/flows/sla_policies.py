"""SLA policies of a queue (Flows › Queues › Service levels): list, add, delete.

A policy names the queue's targets (first response, next response, resolution, in business
minutes of the queue's hours and holidays) and may be limited to a priority and/or a tag; the
most specific match wins (`app.runtime.sla.policy_for`). Saving one recomputes the due times of
the queue's open conversations. The caller commits.
"""
from __future__ import annotations

from sqlalchemy import select

from app.extensions import db
from app.models.inbox import Conversation
from app.models.sla import SlaPolicy
from app.runtime import sla
from app.runtime.tags import TagError, normal_tag


class PolicyError(ValueError):
    """A policy that cannot be saved; args: (message, field)."""


def policies_of(queue_id: int) -> list[SlaPolicy]:
    return list(db.session.scalars(select(SlaPolicy).where(SlaPolicy.queue_id == queue_id).order_by(SlaPolicy.id)))


def recompute_queue(queue_id: int) -> None:
    """Recompute the due times of the queue's open and pending conversations (policies or calendar changed)."""
    for conversation in db.session.scalars(select(Conversation).where(
            Conversation.queue_id == queue_id, Conversation.status.in_(sla.ACTIVE))):
        sla.refresh(conversation)


def add_policy(queue_id: int, *, name: str, priority: int | None, tag: str | None, first_response_minutes: int | None,
               next_response_minutes: int | None, resolution_minutes: int | None,
               warning_minutes: int | None) -> SlaPolicy:
    if not (first_response_minutes or next_response_minutes or resolution_minutes):
        raise PolicyError("Enter at least one target: first response, next response or resolution.",
                          "first_response_minutes")
    try:
        tag = normal_tag(tag) if tag and tag.strip() else None
    except TagError as exc:
        raise PolicyError(str(exc), "tag") from None
    for other in policies_of(queue_id):
        if other.priority == priority and (other.tag or None) == tag:
            raise PolicyError(f"“{other.name}” already covers this priority and tag; delete it first.", "priority")
    policy = SlaPolicy(queue_id=queue_id, name=name.strip(), priority=priority, tag=tag,
                       first_response_minutes=first_response_minutes, next_response_minutes=next_response_minutes,
                       resolution_minutes=resolution_minutes, warning_minutes=warning_minutes)
    db.session.add(policy)
    db.session.flush()
    recompute_queue(queue_id)
    return policy


def delete_policy(queue_id: int, policy_id: int) -> SlaPolicy | None:
    policy = db.session.get(SlaPolicy, policy_id)
    if policy is None or policy.queue_id != queue_id:
        return None
    for conversation in db.session.scalars(select(Conversation).where(Conversation.sla_policy_id == policy.id)):
        conversation.sla_policy_id = None
    db.session.delete(policy)
    db.session.flush()
    recompute_queue(queue_id)
    return policy
