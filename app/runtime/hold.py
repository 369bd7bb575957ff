"""Held mail: what a disabled address that holds new mail received, and routing it once it is live again.

While an address is published disabled with "When disabled: Hold new mail", the ingress,
polling and IDLE still take its mail, and ingest records each message as an
`InboundRaw` row with status `held`: the raw bytes are durable, nothing is parsed,
threaded or routed, so no flow runs and no agent sees it (`app.runtime.ingest`).

Publishing the address enabled again calls `release_held()` in the publishing
transaction: its held rows turn `pending` and, after the commit, their ingest jobs are
enqueued as the ingress does (`ingest_jobs`: deterministic ids, a job per batch). Ingest takes only
pending rows and sets their final status under the address's lock, so each held message
is routed exactly once, however often it is released or re-enqueued (cron's
`requeue_stale_pending` is the safety net for a lost enqueue). A release while the address
is still disabled, or outbound-only, does nothing.
"""
from __future__ import annotations

from sqlalchemy import func, select, update

from app.extensions import db
from app.models.inbound import InboundRaw, InboundStatus
from app.queues import enqueue_jobs
from app.runtime.ingest_jobs import ingest_jobs
from app.runtime.live import published_address
from app.transactions import on_commit


def held_counts(address_ids=None) -> dict[int, int]:
    """How many messages each address holds (addresses holding none are left out)."""
    query = select(InboundRaw.address_id, func.count()).where(InboundRaw.status == InboundStatus.HELD.value)
    if address_ids is not None:
        query = query.where(InboundRaw.address_id.in_(list(address_ids)))
    return dict(db.session.execute(query.group_by(InboundRaw.address_id)).all())


def release_held(address_ids) -> list[int]:
    """Turn the held mail of these addresses pending where they are live (published, enabled, receiving),
    and enqueue its ingest once the caller commits. Returns the released row ids, oldest first."""
    live = [i for i in address_ids if (a := published_address(i)) is not None and a.can_receive]
    if not live:
        return []
    ids = list(db.session.scalars(
        update(InboundRaw).where(InboundRaw.address_id.in_(live), InboundRaw.status == InboundStatus.HELD.value)
        .values(status=InboundStatus.PENDING.value, error=None).returning(InboundRaw.id)))
    ids.sort()
    if ids:
        on_commit(enqueue_jobs, "ingest", ingest_jobs(ids), result_ttl=0, failure_ttl=24 * 3600)
    return ids
