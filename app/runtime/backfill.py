"""`flask reports backfill`: every conversation's facts rebuilt from its messages, with the SLA's judgement.

`app.runtime.facts.rebuild` recomputes the times and counts; `app.runtime.sla.judge_conversation` judges
the first response, next responses and resolution against the conversation's current policy (None where
no policy measures them). A merged conversation has no facts (its messages count in the one it was merged
into). Safe to run again: each row is recomputed, not added to.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select

from app.extensions import db
from app.models._types import utcnow
from app.models.inbox import Conversation
from app.models.reports import ConversationFacts
from app.runtime import facts, sla


def rebuild_with_sla(conversation: Conversation, now: datetime) -> ConversationFacts:
    row = facts.rebuild(conversation)
    for key, judged in sla.judge_conversation(conversation, now).items():
        setattr(row, f"{key}_breached", judged)
    return row


def backfill(batch: int = 500, now: datetime | None = None) -> int:
    """Rebuild the facts of every conversation not merged into another (committing per batch); returns how
    many were rebuilt."""
    now = now or utcnow()
    done, last_id = 0, 0
    while True:
        conversations = db.session.scalars(select(Conversation).where(Conversation.id > last_id)
                                           .order_by(Conversation.id).limit(batch)).all()
        if not conversations:
            return done
        merged = [c.id for c in conversations if c.merged_into_id is not None]
        if merged:
            db.session.execute(delete(ConversationFacts).where(ConversationFacts.conversation_id.in_(merged)))
        for conversation in conversations:
            if conversation.merged_into_id is None:
                rebuild_with_sla(conversation, now)
                done += 1
        db.session.commit()
        last_id = conversations[-1].id
