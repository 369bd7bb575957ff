"""The snooze timer: conversations whose "Pending until …" time has come go back to open.

`wake_due_snoozes()` runs on every cron tick (`app.cron.PERIODIC`). Each due conversation is
reopened by a conditional UPDATE (still pending, still snoozed until that time), so two cron
processes never wake it twice and an agent's change in between wins. It returns to the Mine
view of its assignee, or of whoever snoozed it when nobody has it, and says so in its trail and in
the reports' facts (`app.runtime.facts.synced`).
Owns its transaction (commits), like the other cron sweeps.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update

from app.extensions import db
from app.models._types import utcnow
from app.models.inbox import Conversation
from app.runtime import facts, sla
from app.runtime.trail import record_event

BATCH = 500


def wake_due_snoozes(now: datetime | None = None) -> int:
    """Reopen the conversations whose snooze is due; returns how many."""
    now = now or utcnow()
    due = db.session.execute(select(Conversation.id, Conversation.snoozed_until, Conversation.assignee_id,
                                    Conversation.snoozed_by_id)
                             .where(Conversation.snoozed_until <= now, Conversation.status == "pending")
                             .order_by(Conversation.snoozed_until).limit(BATCH)).all()
    woken = 0
    for cid, until, assignee_id, snoozed_by in due:
        back_to = assignee_id if assignee_id is not None else snoozed_by
        done = db.session.execute(
            update(Conversation).where(Conversation.id == cid, Conversation.status == "pending",
                                       Conversation.snoozed_until == until)
            .values(status="open", snoozed_until=None, snoozed_by_id=None, assignee_id=back_to, status_at=now,
                    status_by_id=None)
            .execution_options(synchronize_session=False))
        if done.rowcount:
            woken += 1
            record_event(cid, "snooze", "The snooze ended: open again", None, when=now, assignee_id=back_to)
            conversation = db.session.get(Conversation, cid)
            db.session.refresh(conversation)  # as the UPDATE left it
            sla.status_changed(conversation, now)
            facts.synced(conversation, now)
    db.session.commit()
    return woken
