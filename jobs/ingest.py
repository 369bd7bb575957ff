"""Ingest jobs: turn raw messages the ingress stored (pending) into conversation rows."""
from __future__ import annotations

from app.runtime.ingest import ingest_pending_many
from app.runtime.ingest_jobs import BATCH_MAX
from app.transactions import retry_when_locked
from jobs import app_context


def ingest_raw(raw_id: int) -> dict | None:
    """Ingest one pending InboundRaw row, and the arrivals after it up to `BATCH_MAX` (as `ingest_raws`);
    a no-op when it was ingested already, or when another process holds its address's lock (that
    process queues a job for it once it lets the lock go)."""
    with app_context():
        results = retry_when_locked(ingest_pending_many, [raw_id], drain=BATCH_MAX,
                                     leave_to_holder=True)
        result = next((r for r in results if r.raw_id == raw_id), None)
        return None if result is None else {"status": result.status, "conversation_id": result.conversation_id}


def ingest_raws(raw_ids: list[int]) -> dict:
    """Ingest the pending rows among `raw_ids` (a burst's batch, `app.runtime.ingest_jobs.ingest_jobs`), and the
    arrivals after them up to `BATCH_MAX` (their own jobs then find them done); done ones are skipped."""
    with app_context():
        results = retry_when_locked(ingest_pending_many, raw_ids, drain=BATCH_MAX, leave_to_holder=True)
        statuses: dict[str, int] = {}
        for result in results:
            statuses[result.status] = statuses.get(result.status, 0) + 1
        return statuses
