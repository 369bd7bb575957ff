"""Ingest jobs: turn a raw message the ingress stored (pending) into conversation rows."""
from __future__ import annotations

from app.runtime.ingest import ingest_pending
from app.transactions import retry_when_locked
from jobs import app_context


def ingest_raw(raw_id: int) -> dict | None:
    """Ingest one pending InboundRaw row; a no-op when it was ingested already."""
    with app_context():
        result = retry_when_locked(ingest_pending, raw_id)
        return None if result is None else {"status": result.status, "conversation_id": result.conversation_id}
