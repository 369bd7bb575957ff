"""Account life cycle, as admins run it (Admin › Users) and as each user sets their profile.

An admin creates an account (name, email, role, queues, email capacity) without a password:
the new user sets one through a one-time link (`app.auth.resets`), so no password is ever
typed by, shown to, or mailed by anyone but its owner. An admin edits accounts, deactivates
them, reactivates them; every change is in the audit log (`app.auth.audit`).

Deactivating signs the user out everywhere at once (their `UserSession` rows go, which ends
every browser and "Keep me signed in"), spends their unused reset links, and hands their open
and pending conversations back to their queues (unassigned, for routing and supervisors) or
to one chosen agent. Nothing of theirs is deleted: messages, notes and the audit log keep
their name, and reactivating gives the account back as it was (without the conversations).

Each function raises `AccountError` (a message for the person, and the form field it is about)
and leaves committing to the caller.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import func, or_, select, update

from app.auth import audit, sessions
from app.auth.passwords import UNUSABLE
from app.auth.services import normalise_email
from app.extensions import db
from app.mail.html import sanitize_html
from app.models.auth import PasswordReset, Queue, Role, User
from app.models.inbox import Conversation
from app.web import LANDING_VIEWS, time_zones

#: An agent's email capacity: how many open conversations routing gives them at most.
MIN_CAPACITY, MAX_CAPACITY = 1, 15
#: Conversations an agent is working on (routing's load): what deactivating hands on.
WORKING_STATUSES = ("open", "pending")
RELEASE, REASSIGN = "release", "reassign"


class AccountError(ValueError):
    """A change that is refused: `message` for the person, `field` the form field it is about."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message, self.field = message, field


@dataclass(frozen=True)
class AccountFields:
    """What an admin sets on an account."""

    name: str
    email: str
    role: str
    queue_ids: tuple[int, ...]
    email_capacity: int


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _get(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        raise LookupError(user_id)
    return user


def _clean(fields: AccountFields, user_id: int | None) -> tuple[str, str, Role, list[Queue], int]:
    name = " ".join((fields.name or "").split())
    if not name:
        raise AccountError("Enter a name.", "name")
    email = normalise_email(fields.email or "")
    local, at, domain = email.partition("@")
    if not (local and at and "." in domain) or any(c.isspace() for c in email) or len(email) > 320:
        raise AccountError("Enter an email address like name@example.com.", "email")
    taken = db.session.scalar(select(User.id).where(func.lower(User.email) == email))
    if taken is not None and taken != user_id:
        raise AccountError("Another account has this email address.", "email")
    try:
        role = Role(fields.role)
    except ValueError:
        raise AccountError("Choose a role.", "role") from None
    queues = list(db.session.scalars(select(Queue).where(Queue.id.in_(list(fields.queue_ids))).order_by(Queue.name)))
    if len(queues) != len(set(fields.queue_ids)):
        raise AccountError("Choose queues from the list.", "queues")
    try:
        capacity = int(fields.email_capacity)
    except (TypeError, ValueError):
        capacity = 0
    if not MIN_CAPACITY <= capacity <= MAX_CAPACITY:
        raise AccountError(f"Email capacity is between {MIN_CAPACITY} and {MAX_CAPACITY}.", "email_capacity")
    return name, email, role, queues, capacity


def create_account(actor: User, fields: AccountFields) -> User:
    """A new active account with no password yet (send its owner a reset link). Raises `AccountError`."""
    name, email, role, queues, capacity = _clean(fields, None)
    user = User(email=email, name=name, role=role.value, email_capacity=capacity, password_hash=UNUSABLE,
                queues=queues)
    db.session.add(user)
    db.session.flush()
    audit.record("create", user, actor, name=name, email=email, role=role.value,
                 queues=[q.name for q in queues], email_capacity=capacity)
    return user


def edit_account(actor: User, user_id: int, fields: AccountFields) -> User:
    """Change an account's name, email, role, queues, capacity. Raises `AccountError`, `LookupError`.

    An admin cannot take away their own admin role (nobody could give it back from the app).
    """
    user = _get(user_id)
    name, email, role, queues, capacity = _clean(fields, user.id)
    if user.id == actor.id and role != Role.ADMIN:
        raise AccountError("You cannot take away your own admin role; ask another admin.", "role")
    changes = {key: [old, new] for key, old, new in (("name", user.name, name), ("email", user.email, email),
                                                     ("email_capacity", user.email_capacity, capacity)) if old != new}
    if changes:
        audit.record("edit", user, actor, changes=changes)
    if user.role != role.value:
        audit.record("role_change", user, actor, old=user.role, new=role.value)
    old_queues, new_queues = sorted(q.name for q in user.queues), [q.name for q in queues]
    if old_queues != new_queues:
        audit.record("queues_change", user, actor, added=sorted(set(new_queues) - set(old_queues)),
                     removed=sorted(set(old_queues) - set(new_queues)))
    user.name, user.email, user.role, user.email_capacity, user.queues = name, email, role.value, capacity, queues
    db.session.flush()
    return user


def working_conversations(user_id: int) -> int:
    """How many open or pending conversations are assigned to the user."""
    return db.session.scalar(select(func.count()).select_from(Conversation).where(
        Conversation.assignee_id == user_id, Conversation.status.in_(WORKING_STATUSES))) or 0


def deactivate_account(actor: User, user_id: int, conversations: str = RELEASE,
                       reassign_to: int | None = None) -> dict:
    """Deactivate: signed out everywhere, reset links spent, open conversations released or reassigned.

    `conversations`: `RELEASE` (back to their queues, unassigned) or `REASSIGN` to the active
    user `reassign_to`, who must be a member of every queue involved (or a supervisor or admin);
    capacity does not stop an admin's choice. Returns what happened: `sessions_ended`,
    `conversations`, `to` (the new assignee's name or None). Raises `AccountError`, `LookupError`.
    """
    user = _get(user_id)
    if user.id == actor.id:
        raise AccountError("You cannot deactivate your own account.")
    if not user.active:
        raise AccountError(f"{user.name} is already deactivated.")
    if user.role == Role.ADMIN.value and _active_admins() <= 1:
        raise AccountError("This is the only active admin; make someone else an admin first.")
    working = select(Conversation).where(Conversation.assignee_id == user.id,
                                         Conversation.status.in_(WORKING_STATUSES)).order_by(Conversation.id)
    target = None
    if conversations == REASSIGN:
        target = db.session.get(User, reassign_to) if reassign_to else None
        if target is None or not target.active or target.id == user.id:
            raise AccountError("Choose an active agent to take the conversations.", "reassign_to")
        if not target.has_role(Role.SUPERVISOR):
            member_of = {q.id for q in target.queues}
            outside = sorted({c.queue.name for c in db.session.scalars(working)
                              if c.queue_id is not None and c.queue_id not in member_of})
            if outside:
                raise AccountError(f"{target.name} is not a member of {', '.join(outside)}; choose another agent "
                                   "or release the conversations to their queues.", "reassign_to")
    elif conversations != RELEASE:
        raise AccountError("Choose what happens to the open conversations.", "conversations")
    moved = db.session.execute(update(Conversation).where(
        Conversation.assignee_id == user.id, Conversation.status.in_(WORKING_STATUSES)).values(
        assignee_id=target.id if target else None).execution_options(synchronize_session="fetch")).rowcount
    ended = sessions.end_sessions(user.id)
    db.session.execute(update(PasswordReset).where(PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None))
                       .values(used_at=_now()))
    user.active, user.deactivated_at = False, _now()
    done = {"sessions_ended": ended, "conversations": moved, "to": target.name if target else None}
    audit.record("deactivate", user, actor, sessions_ended=ended, conversations=moved,
                 conversations_to=(f"{target.name} <{target.email}>" if target else "their queues"))
    return done


def reactivate_account(actor: User, user_id: int) -> User:
    """Let a deactivated account sign in again (with its old password). Raises `AccountError`, `LookupError`."""
    user = _get(user_id)
    if user.active:
        raise AccountError(f"{user.name} is active.")
    user.active, user.deactivated_at = True, None
    audit.record("reactivate", user, actor)
    return user


def _active_admins() -> int:
    return db.session.scalar(select(func.count()).select_from(User).where(
        User.role == Role.ADMIN.value, User.active.is_(True))) or 0


def search_accounts(q: str = "", status: str = "active") -> list[User]:
    """Accounts whose name or email contains `q`, by name; `status`: "active", "deactivated" or "all"."""
    query = select(User).order_by(func.lower(User.name), User.id)
    q = (q or "").strip().lower()
    if q:
        query = query.where(or_(func.lower(User.name).contains(q, autoescape=True),
                                func.lower(User.email).contains(q, autoescape=True)))
    if status == "active":
        query = query.where(User.active.is_(True))
    elif status == "deactivated":
        query = query.where(User.active.is_(False))
    return list(db.session.scalars(query))


# --- the profile: what each user sets for themselves ---------------------------------------------

#: The longest signature kept (HTML, after sanitising).
MAX_SIGNATURE = 5000


def update_profile(user: User, *, name: str, signature_html: str, time_zone: str | None, landing_view: str) -> User:
    """Save the user's own name, signature, time zone and landing view. Raises `AccountError`.

    `time_zone` empty (or None) is "Browser's time zone": nothing chosen, the browser's is used."""
    name = " ".join((name or "").split())
    if not name:
        raise AccountError("Enter your name.", "name")
    if len(name) > 200:
        raise AccountError("Use at most 200 characters.", "name")
    signature = sanitize_html(signature_html or "").strip()
    if len(signature) > MAX_SIGNATURE:
        raise AccountError(f"Keep the signature under {MAX_SIGNATURE} characters.", "signature_html")
    time_zone = time_zone or None
    if time_zone is not None and time_zone not in time_zones():
        raise AccountError("Choose a time zone from the list.", "time_zone")
    if landing_view not in {key for key, *_ in landing_views_for(user)}:
        raise AccountError("Choose a page from the list.", "landing_view")
    changed = [key for key, old, new in (("name", user.name, name), ("signature", user.signature_html, signature),
                                         ("time_zone", user.time_zone, time_zone),
                                         ("landing_view", user.landing_view, landing_view)) if old != new]
    if changed:
        audit.record("profile_edit", user, user, fields=changed)
    user.name, user.signature_html, user.time_zone, user.landing_view = name, signature, time_zone, landing_view
    return user


def note_browser_zone(user: User, zone: str) -> bool:
    """Keep `zone`, the time zone the user's browser reports, as theirs while they have chosen none.

    False (nothing kept) for a name this machine's zoneinfo does not know; a chosen zone is never
    replaced (the browser's is then not kept either). Not audited: the user changed nothing."""
    if zone not in time_zones():
        return False
    if user.time_zone is None and user.browser_time_zone != zone:
        user.browser_time_zone = zone
    return True


def landing_views_for(user: User) -> list[tuple[str, str]]:
    """(key, label) of the pages the user may choose as their landing view."""
    return [(key, label) for key, (label, _endpoint, _args, role) in LANDING_VIEWS.items() if user.has_role(role)]
