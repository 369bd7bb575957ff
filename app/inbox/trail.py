"""The conversation's trail as the workspace reads it: its event lines for the thread
(`EventLine`, shown between the messages at their time) and the CSV export, of one
conversation or of every conversation in a date range (supervisors and admins).

The lines are written by `app.runtime.trail.record_event` where each change happens.
"""
from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import bindparam, text

from app.extensions import db
from app.inbox.access import NotAllowed, get_conversation, get_user
from app.models._types import UTCDateTime, ordered_columns
from app.models.auth import Role, User
from app.runtime.trail import KINDS


class EventLine(NamedTuple):
    """One line of the trail: plain values (the thread's fragments are keyed by them)."""
    id: int
    conversation_id: int
    kind: str
    text: str
    created_at: datetime


EVENTS_SQL = ordered_columns(text(
    "SELECT id, conversation_id, kind, text, created_at FROM conversation_events "
    "WHERE conversation_id = :conversation_id ORDER BY created_at, id"), "id conversation_id kind text created_at",
    created_at=UTCDateTime())
RANGE_SQL = text(
    "SELECT e.created_at, e.conversation_id, c.subject, e.kind, coalesce(u.name, u.email, 'Automation'), e.text "
    "FROM conversation_events e JOIN conversations c ON c.id = e.conversation_id "
    "LEFT JOIN users u ON u.id = e.actor_id "
    "WHERE e.created_at >= :start AND e.created_at < :end ORDER BY e.created_at, e.id LIMIT :cap"
).bindparams(bindparam("start", type_=UTCDateTime()), bindparam("end", type_=UTCDateTime())).columns(
    created_at=UTCDateTime())
CONVERSATION_EXPORT_SQL = text(
    "SELECT e.created_at, e.conversation_id, c.subject, e.kind, coalesce(u.name, u.email, 'Automation'), e.text "
    "FROM conversation_events e JOIN conversations c ON c.id = e.conversation_id "
    "LEFT JOIN users u ON u.id = e.actor_id WHERE e.conversation_id = :conversation_id ORDER BY e.created_at, e.id"
).columns(created_at=UTCDateTime())

#: The most lines one range export holds (a narrower range gets the rest).
EXPORT_CAP = 100_000
HEADER = ["time (UTC)", "conversation", "subject", "kind", "by", "event"]


def events_of(conversation_id: int, since_id: int = 0) -> list[EventLine]:
    """The conversation's lines, oldest first (the caller has checked that the user may see it);
    `since_id`: only lines newer than that one."""
    lines = [EventLine(*r) for r in db.session.execute(EVENTS_SQL, {"conversation_id": conversation_id})]
    return [e for e in lines if e.id > since_id] if since_id else lines


def last_event_id() -> int:
    """The newest line of any conversation's trail (0: none yet)."""
    return db.session.scalar(text("SELECT max(id) FROM conversation_events")) or 0


def _csv(rows) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    for when, cid, subject, kind, by, line in rows:
        # A cell a spreadsheet would run as a formula is written as text.
        cells = [when.strftime("%Y-%m-%d %H:%M:%S"), cid, subject, KINDS.get(kind, kind), by, line]
        writer.writerow([f"'{c}" if isinstance(c, str) and c[:1] in ("=", "+", "-", "@") else c for c in cells])
    return out.getvalue()


def conversation_csv(user: User | int, conversation_id: int) -> str:
    """The conversation's trail as CSV. Raises `NotFound` unless the user may see it."""
    conversation = get_conversation(get_user(user), conversation_id)
    return _csv(db.session.execute(CONVERSATION_EXPORT_SQL, {"conversation_id": conversation.id}))


def range_csv(user: User | int, start: datetime, end: datetime) -> str:
    """Every conversation's lines from `start` (included) to `end` (excluded), as CSV; supervisors and
    admins only (`NotAllowed` otherwise)."""
    user = get_user(user)
    if not user.has_role(Role.SUPERVISOR):
        raise NotAllowed("Only supervisors and admins export the trail of every conversation.")
    return _csv(db.session.execute(RANGE_SQL, {"start": start, "end": end, "cap": EXPORT_CAP}))
