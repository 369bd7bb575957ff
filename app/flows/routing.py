"""Queues and routing: business-hours calendars, agents' email capacity, assignment.

Calendars
---------
A queue's business hours are stored as JSON (`Queue.business_hours`)::

    {"mon": [["09:00", "17:00"]], ..., "sun": [], "holidays": ["2026-12-25"]}

in the queue's own time zone (`Queue.time_zone`, an IANA name read with `zoneinfo`,
so daylight-saving changes are handled). ``None`` means always open. An interval
whose end is not after its start runs past midnight (``["22:00", "06:00"]`` on
Monday covers Monday 22:00 to Tuesday 06:00). Holidays are closed all day.
Admins write the hours as lines such as ``Mon-Fri 09:00-17:00``
(`parse_hours` / `format_hours`).

Assignment
----------
An agent's *load* is the number of conversations assigned to them that are not
resolved or closed (open or pending). An agent has *room* while the load is below
their email capacity (`User.email_capacity`, 1–15). A new conversation goes to the
queue member with room who has the smallest load, then the one idle the longest
(`User.last_assigned_at`, never-assigned first), then the lowest id. A customer's
reply goes back to the agent who handled the conversation when that agent has
room; otherwise the conversation is unassigned and waits in its queue, where every
member sees it. Inactive users are never chosen.

Two workers routing at the same moment cannot overfill an agent: the agent's user
row is locked (``SELECT ... FOR UPDATE`` on PostgreSQL) before the load is counted,
and the load is counted again after the assignment is flushed (on SQLite the first
flush takes the database's write lock, so the second count sees every committed
assignment); an overfull result is undone and the next candidate tried.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from sqlalchemy import func, select

from app.extensions import db
from app.models.auth import Queue, User, queue_members
from app.models.inbox import Conversation

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
ACTIVE_STATUSES = ("open", "pending")
MIN_CAPACITY, MAX_CAPACITY = 1, 15
_TIME = re.compile(r"^([01]?\d|2[0-4]):([0-5]\d)$")


class HoursError(ValueError):
    """Business hours that cannot be read; the message says which line and why."""


# --- calendars ----------------------------------------------------------------------------------

def _minutes(value: str) -> int:
    match = _TIME.match(value.strip())
    if not match:
        raise HoursError(f"“{value}” is not a time like 09:00")
    minutes = int(match.group(1)) * 60 + int(match.group(2))
    if minutes > 24 * 60:
        raise HoursError(f"“{value}” is after 24:00")
    return minutes


def check_time_zone(name: str) -> str:
    """The IANA time zone name. Raises `HoursError` for an unknown one."""
    name = (name or "").strip()
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise HoursError(f"“{name}” is not a time zone (use a name such as Europe/Berlin)") from None
    return name


def time_zone_names() -> list[str]:
    return sorted(available_timezones())


@dataclass(frozen=True)
class Calendar:
    time_zone: str = "UTC"
    hours: dict | None = None  # None: always open

    @classmethod
    def of(cls, queue: Queue) -> Calendar:
        return cls(queue.time_zone or "UTC", queue.business_hours)

    def is_open(self, at: datetime | None = None) -> bool:
        """Whether the queue is open at `at` (aware; default now)."""
        if not self.hours:
            return True
        at = at or datetime.now(timezone.utc)
        if at.tzinfo is None:
            at = at.replace(tzinfo=timezone.utc)
        local = at.astimezone(ZoneInfo(self.time_zone))
        today = local.date()
        minute = local.hour * 60 + local.minute
        holidays = set(self.hours.get("holidays") or [])
        if today.isoformat() not in holidays:
            for start, end in self.hours.get(DAYS[today.weekday()]) or []:
                s, e = _minutes(start), _minutes(end)
                if (s < e and s <= minute < e) or (e <= s and minute >= s):
                    return True
        yesterday = today - timedelta(days=1)
        if yesterday.isoformat() not in holidays:
            for start, end in self.hours.get(DAYS[yesterday.weekday()]) or []:
                s, e = _minutes(start), _minutes(end)
                if e <= s and minute < e:  # the overnight tail of yesterday's interval
                    return True
        return False


def parse_hours(text: str, holidays_text: str = "") -> dict | None:
    """Read lines like ``Mon-Fri 09:00-17:00`` (several intervals: ``Sat 10:00-12:00, 13:00-15:00``).

    Empty text means always open (None). Raises `HoursError` naming the bad line.
    """
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    holidays = []
    for raw in re.split(r"[\s,]+", holidays_text or ""):
        if raw:
            try:
                holidays.append(date.fromisoformat(raw).isoformat())
            except ValueError:
                raise HoursError(f"Holiday “{raw}” is not a date like 2026-12-25") from None
    if not lines:
        if holidays:
            raise HoursError("Holidays need business hours; enter the opening hours too.")
        return None
    hours: dict = {d: [] for d in DAYS}
    for n, line in enumerate(lines, 1):
        match = re.match(r"^([A-Za-z]{3})(?:\s*-\s*([A-Za-z]{3}))?\s+(.+)$", line)
        if not match:
            raise HoursError(f"Line {n} (“{line}”): write days then hours, like Mon-Fri 09:00-17:00")
        first, last = match.group(1).lower(), (match.group(2) or match.group(1)).lower()
        if first not in DAYS or last not in DAYS:
            raise HoursError(f"Line {n} (“{line}”): days are Mon, Tue, Wed, Thu, Fri, Sat, Sun")
        i, j = DAYS.index(first), DAYS.index(last)
        days = [DAYS[k % 7] for k in range(i, i + ((j - i) % 7) + 1)]
        intervals = []
        for part in match.group(3).split(","):
            start, sep, end = part.strip().partition("-")
            if not sep:
                raise HoursError(f"Line {n} (“{line}”): hours are written 09:00-17:00")
            try:
                s, e = _minutes(start), _minutes(end)
            except HoursError as exc:
                raise HoursError(f"Line {n}: {exc}") from None
            if s == e:
                raise HoursError(f"Line {n} (“{line}”): an interval cannot start and end at the same time")
            intervals.append([start.strip().zfill(5), end.strip().zfill(5)])
        for day in days:
            hours[day].extend(intervals)
    hours["holidays"] = sorted(set(holidays))
    return hours


def format_hours(hours: dict | None) -> tuple[str, str]:
    """(hours text, holidays text) for the form; the inverse of `parse_hours`."""
    if not hours:
        return "", ""
    lines = []
    for i, day in enumerate(DAYS):
        intervals = hours.get(day) or []
        if intervals:
            lines.append(f"{DAY_NAMES[i]} " + ", ".join(f"{s}-{e}" for s, e in intervals))
    return "\n".join(lines), "\n".join(hours.get("holidays") or [])


# --- capacity and assignment ------------------------------------------------------------------

def agent_loads(user_ids: list[int] | None = None) -> dict[int, int]:
    """Open (not resolved/closed) conversations assigned per agent."""
    query = (select(Conversation.assignee_id, func.count())
             .where(Conversation.assignee_id.is_not(None), Conversation.status.in_(ACTIVE_STATUSES))
             .group_by(Conversation.assignee_id))
    if user_ids is not None:
        query = query.where(Conversation.assignee_id.in_(user_ids))
    return {uid: n for uid, n in db.session.execute(query)}


def load_of(user_id: int, exclude_conversation_id: int | None = None) -> int:
    query = select(func.count()).select_from(Conversation).where(
        Conversation.assignee_id == user_id, Conversation.status.in_(ACTIVE_STATUSES))
    if exclude_conversation_id is not None:
        query = query.where(Conversation.id != exclude_conversation_id)
    return db.session.scalar(query) or 0


def candidates(queue_id: int) -> list[User]:
    """Members of the queue with room, best first: fewest assigned, longest idle, lowest id."""
    members = list(db.session.scalars(
        select(User).join(queue_members, queue_members.c.user_id == User.id)
        .where(queue_members.c.queue_id == queue_id, User.active.is_(True))))
    loads = agent_loads([m.id for m in members])
    never = datetime.min.replace(tzinfo=timezone.utc)
    free = [m for m in members if loads.get(m.id, 0) < m.email_capacity]
    return sorted(free, key=lambda m: (loads.get(m.id, 0), m.last_assigned_at or never, m.id))


def _lock(user_id: int) -> User | None:
    return db.session.scalar(select(User).where(User.id == user_id).with_for_update())


def try_assign(conversation: Conversation, user_id: int, now: datetime | None = None) -> bool:
    """Assign if the agent (still) has room; False, with nothing changed, when not."""
    user = _lock(user_id)
    if user is None or not user.active:
        return False
    if load_of(user.id, conversation.id) >= user.email_capacity:
        return False
    previous = conversation.assignee_id
    conversation.assignee_id = user.id
    db.session.flush()
    if load_of(user.id) > user.email_capacity:  # someone else filled the last slot meanwhile
        conversation.assignee_id = previous
        db.session.flush()
        return False
    if previous != user.id:
        user.last_assigned_at = now or datetime.now(timezone.utc)
    return True


def assign_least_loaded(conversation: Conversation, queue_id: int | None = None,
                        now: datetime | None = None) -> User | None:
    """Give the conversation to the best member of its queue with room; None when nobody has room."""
    queue_id = queue_id or conversation.queue_id
    if queue_id is None:
        return None
    for user in candidates(queue_id):
        if try_assign(conversation, user.id, now):
            return user
    return None


def last_agent_of(conversation: Conversation) -> int | None:
    """The agent who last handled this customer: this conversation's, else their latest other one's."""
    if conversation.assignee_id:
        return conversation.assignee_id
    return db.session.scalar(
        select(Conversation.assignee_id)
        .where(Conversation.contact_id == conversation.contact_id, Conversation.id != conversation.id,
               Conversation.assignee_id.is_not(None))
        .order_by(Conversation.last_message_at.desc(), Conversation.id.desc()).limit(1))


def route_reply(conversation: Conversation, now: datetime | None = None) -> str:
    """A customer's reply: back to its agent when they have room, else it waits in the queue.

    Returns what happened, for the run log.
    """
    if conversation.status in ("resolved", "closed"):
        conversation.status = "open"
    if conversation.assignee_id is None:
        return "waits in the queue (unassigned)"
    user = db.session.get(User, conversation.assignee_id)
    if user is not None and try_assign(conversation, user.id, now):
        return f"stays with {user.name or user.email}"
    name = user.name if user else "the agent"
    conversation.assignee_id = None
    return f"{name} has no room: waits in the queue"


class NoRoom(Exception):
    """The agent has no free slot (email capacity reached); a supervisor may override."""


def reassign(conversation: Conversation, user_id: int, *, override: bool = False,
             now: datetime | None = None) -> User:
    """Give a conversation to another agent (workspace reassignment and transfer).

    Respects the agent's email capacity unless `override` (a supervisor's choice).
    Raises `NoRoom` when the agent is full, `LookupError` for an unknown or inactive
    agent. The caller commits.
    """
    user = db.session.get(User, user_id)
    if user is None or not user.active:
        raise LookupError(user_id)
    if override:
        conversation.assignee_id = user.id
        user.last_assigned_at = now or datetime.now(timezone.utc)
        return user
    if not try_assign(conversation, user.id, now):
        raise NoRoom(f"{user.name or user.email} has no room ({user.email_capacity} open conversations)")
    return user
