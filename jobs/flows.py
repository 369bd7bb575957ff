"""The flow step of a conversation (intent, automation, routing).

The ingest service enqueues `run_flow(conversation_id, message_id)` on the
`flows` queue after each new customer message is committed (never for automatic
replies or delivery reports). The flow engine is the flows issue's work; until
it exists this entry point only records that the step was reached.
"""
from __future__ import annotations

import logging

from jobs import app_context

log = logging.getLogger(__name__)


def run_flow(conversation_id: int, message_id: int | None = None) -> dict:
    with app_context():
        log.info("flow step for conversation %s (message %s): no flow engine exists yet", conversation_id, message_id)
        return {"conversation_id": conversation_id, "message_id": message_id, "flow": None}
