"""Publish approvals: a Publish by one admin goes live only when a second admin approves it.

Off by default (`PublishSettings.approvals_required`, switched on the Publish page). When on,
Confirm in the Publish dialog calls `request_publish()`, which records a pending
`PublishRequest` with the Comments, the chosen items and the draft version of each as the
requester reviewed it. Another admin then:

- `approve()`: publishes exactly those drafts (`services.publish`, requester and approver
  recorded on the version); a draft changed since the request is refused (`StaleDraft`),
  and the request stays pending until someone declines it (the Publish page says so
  before anyone tries: `changed_since()`);
- `decline()`: with a reason, shown to the requester on the Publish page.

The requester can `withdraw()` their own request but never approve it. One request waits
at a time: a second Publish is refused until the first is decided.
"""
from __future__ import annotations

from sqlalchemy import select

from app.extensions import db
from app.models._types import utcnow
from app.models.publish import PublishRequest, PublishSettings, publish_approvals_required
from app.publish import services

__all__ = ["ApprovalError", "ChangedSinceRequest", "approve", "changed_since", "decline", "pending_request",
           "publish_approvals_required", "recent_decisions", "request_publish", "set_approvals_required", "settings",
           "withdraw"]


class ApprovalError(ValueError):
    """A request cannot be made or decided; `message` says why in the admin's words."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ChangedSinceRequest(ApprovalError):
    """A requested draft changed after the request: approving it would publish what nobody reviewed."""


def changed_since(req: PublishRequest) -> list[str]:
    """Names of the requested addresses and flows whose draft is no longer the one requested (or is gone)."""
    pending = {p.key: p for p in services.pending_changes()}
    names = {c.get("kind") + ":" + str(c.get("id")): c.get("name") for c in req.changes or []}
    return [pending[i].name if i in pending else names.get(i, i) for i in req.items
            if i not in pending or pending[i].version != (req.expected or {}).get(i)]


def settings() -> PublishSettings | None:
    return db.session.scalar(select(PublishSettings).order_by(PublishSettings.id).limit(1))


def set_approvals_required(on: bool, user_id: int | None) -> PublishSettings:
    """Switch Publish approvals on or off (the caller commits)."""
    row = settings()
    if row is None:
        row = PublishSettings()
        db.session.add(row)
    row.approvals_required = bool(on)
    row.updated_by_id = user_id
    row.updated_at = utcnow()
    db.session.flush()
    return row


def pending_request() -> PublishRequest | None:
    return db.session.scalar(select(PublishRequest).where(PublishRequest.status == "pending")
                             .order_by(PublishRequest.id).limit(1))


def recent_decisions(limit: int = 5) -> list[PublishRequest]:
    """Requests declined or withdrawn lately, newest first (approved ones are versions in the history)."""
    return list(db.session.scalars(select(PublishRequest).where(PublishRequest.status.in_(("declined", "withdrawn")))
                                   .order_by(PublishRequest.decided_at.desc(), PublishRequest.id.desc()).limit(limit)))


def request_publish(user_id: int, comment: str, items: list[str], expected: dict[str, str],
                    changes: list[dict]) -> PublishRequest:
    """Record a pending Publish request (the caller commits).

    Raises `ApprovalError` while another request waits, `ValueError` without a comment and
    `NothingToPublish` with nothing selected.
    """
    comment = (comment or "").strip()
    if not comment:
        raise ValueError("a comment is required to publish")
    if not items:
        raise services.NothingToPublish("select at least one change to publish")
    waiting = pending_request()
    if waiting is not None:
        who = _who(waiting.requester)
        raise ApprovalError(f"A Publish request by {who} is waiting for approval. It must be approved, declined or "
                            "withdrawn before another one.")
    req = PublishRequest(requester_id=user_id, comment=comment, items=list(items), expected=dict(expected),
                         changes=list(changes), status="pending", created_at=utcnow())
    db.session.add(req)
    db.session.flush()
    return req


def _who(user) -> str:
    return (user.name or user.email) if user is not None else "a deleted user"


def _pending(request_id: int) -> PublishRequest:
    req = db.session.get(PublishRequest, request_id, with_for_update=True)
    if req is None:
        raise ApprovalError("This Publish request no longer exists.")
    if req.status != "pending":
        raise ApprovalError(f"This Publish request was already {req.status}.")
    return req


def approve(request_id: int, approver_id: int):
    """Publish what the request holds, as its requester reviewed it; returns the new version (caller commits).

    Raises `ApprovalError` for the requester's own request or one already decided, and
    `ChangedSinceRequest` (an `ApprovalError`) when a draft changed after the request.
    """
    req = _pending(request_id)
    if req.requester_id == approver_id:
        raise ApprovalError("You asked for this Publish: another admin must approve it.")
    changed = changed_since(req)
    if changed:
        raise ChangedSinceRequest(f"The draft changed after this request: {', '.join(changed)}. It cannot be "
                                  "approved: decline it, and the requester can publish again.")
    address_ids = [int(i.split(":", 1)[1]) for i in req.items if i.startswith("address:")]
    flow_ids = [int(i.split(":", 1)[1]) for i in req.items if i.startswith("flow:")]
    # services.publish checks the versions again under its row locks (StaleDraft, a PublishError).
    record = services.publish(req.requester_id, req.comment, address_ids, flow_ids, expected=req.expected,
                              approved_by_id=approver_id)
    req.status, req.decided_by_id, req.decided_at, req.record_id = "approved", approver_id, utcnow(), record.id
    db.session.flush()
    return record


def decline(request_id: int, user_id: int, reason: str) -> PublishRequest:
    """Decline with a reason (the caller commits). Raises `ApprovalError`."""
    reason = (reason or "").strip()
    if not reason:
        raise ApprovalError("Write why you decline this Publish request.")
    req = _pending(request_id)
    if req.requester_id == user_id:
        raise ApprovalError("You asked for this Publish: withdraw it instead.")
    req.status, req.decided_by_id, req.decided_at, req.reason = "declined", user_id, utcnow(), reason[:2000]
    db.session.flush()
    return req


def withdraw(request_id: int, user_id: int) -> PublishRequest:
    """The requester takes back their own request (the caller commits). Raises `ApprovalError`."""
    req = _pending(request_id)
    if req.requester_id != user_id:
        raise ApprovalError("Only the admin who asked can withdraw this request; approve or decline it.")
    req.status, req.decided_by_id, req.decided_at = "withdrawn", user_id, utcnow()
    db.session.flush()
    return req
