"""Internal notes as agents write them: plain text with line breaks, safe links and `@mentions`;
editing and deleting them (their author; admins may delete any); notifying who is mentioned.

A note is typed as plain text. `note_html()` turns it into HTML once, at write time: everything
escaped, line breaks kept, `http(s)://` and `mailto:` links made clickable (any other scheme stays
text; nh3 adds `rel="noopener noreferrer"`), and `@handle` of a colleague marked. A handle is the
local part of the user's email address (`@alex` for alex@example.com). Only colleagues who may see
the conversation (`app.inbox.access.can_see`) are mentioned, so a mention never tells anyone about a
conversation they may not open; each gets one `Notification` (kind "mention"), read on the Notifications
page (`app.inbox.notifications`).

Edits and deletes are recorded in the conversation's audit trail (`record_event`, kind "note").
The caller commits.
"""
from __future__ import annotations

import html as _html
import re

from sqlalchemy import delete, func, or_, select

from app.extensions import db
from app.inbox.access import InvalidAction, NotAllowed, NotFound, can_see, get_conversation, get_user
from app.mail.html import html_to_text, sanitize_html
from app.models._types import utcnow
from app.models.auth import Role, User, queue_members
from app.models.inbox import Conversation, Message
from app.models.notifications import Notification
from app.runtime.changes import publish_change
from app.runtime.trail import actor_name, record_event

#: Longest note accepted, in characters.
MAX_NOTE = 20_000

_LINK = re.compile(r"\b(?:https?://[^\s<>\"']+|mailto:[^\s<>\"']+)", re.I)
_MENTION = re.compile(r"(?<![\w@.])@([A-Za-z0-9][A-Za-z0-9._+-]*)")
_TRAILING = ".,;:!?)]}'\""


def handle_of(user: User) -> str:
    """The `@handle` of a user: the local part of their address, lower-cased."""
    return user.email.split("@", 1)[0].lower()


def mentionable_users(conversation: Conversation, query: str = "", limit: int = 8) -> list[User]:
    """Active colleagues who may see `conversation` (supervisors and admins, its assignee, members of its
    queue), whose handle or name starts with `query`."""
    rules = [User.role.in_([r.value for r in Role if r.rank >= Role.SUPERVISOR.rank])]
    if conversation.assignee_id is not None:
        rules.append(User.id == conversation.assignee_id)
    if conversation.queue_id is not None:
        rules.append(User.id.in_(select(queue_members.c.user_id).where(
            queue_members.c.queue_id == conversation.queue_id)))
    stmt = select(User).where(User.active.is_(True), or_(*rules)).order_by(func.lower(User.name), User.email)
    q = query.strip().lstrip("@").lower()
    users = db.session.scalars(stmt).all()
    if q:
        users = [u for u in users if handle_of(u).startswith(q) or (u.name or "").lower().startswith(q)
                 or any(part.startswith(q) for part in (u.name or "").lower().split())]
    return users[:limit]


def _mentioned(conversation: Conversation, text: str) -> dict[str, User]:
    """The colleagues `text` mentions who may see `conversation`, by handle (a handle two users share
    mentions nobody)."""
    handles = {h.lower() for h in _MENTION.findall(text)}
    if not handles:
        return {}
    found: dict[str, list[User]] = {}
    for user in mentionable_users(conversation, limit=10_000):
        if handle_of(user) in handles:
            found.setdefault(handle_of(user), []).append(user)
    return {h: users[0] for h, users in found.items() if len(users) == 1}


def note_html(text: str, mentioned: dict[str, User] | None = None) -> str:
    """The HTML of a note typed as plain text: escaped, line breaks kept, safe links, mentions marked."""
    mentioned = mentioned or {}
    out = []
    pos = 0
    for match in _LINK.finditer(text):
        url = match.group(0)
        stripped = url.rstrip(_TRAILING)
        out.append(_mark_mentions(text[pos:match.start()], mentioned))
        out.append(f'<a href="{_html.escape(stripped)}">{_html.escape(stripped)}</a>')
        out.append(_html.escape(url[len(stripped):]))
        pos = match.end()
    out.append(_mark_mentions(text[pos:], mentioned))
    body = "".join(out)
    paragraphs = re.split(r"\n\s*\n", body.strip())
    return "".join("<p>" + p.replace("\n", "<br>") + "</p>" for p in paragraphs if p.strip())


def _mark_mentions(chunk: str, mentioned: dict[str, User]) -> str:
    def mark(m: re.Match) -> str:
        user = mentioned.get(m.group(1).lower())
        if user is None:
            return _html.escape(m.group(0))
        return f'<strong class="mention" title="{_html.escape(user.name or user.email)}">@{_html.escape(m.group(1))}</strong>'
    pieces = []
    pos = 0
    for m in _MENTION.finditer(chunk):
        pieces.append(_html.escape(chunk[pos:m.start()]))
        pieces.append(mark(m))
        pos = m.end()
    pieces.append(_html.escape(chunk[pos:]))
    return "".join(pieces)


def _body(conversation: Conversation, text: str) -> tuple[str, str, dict[str, User]]:
    text = (text or "").replace("\r\n", "\n")
    if not text.strip():
        raise InvalidAction("Write the note first.")
    if len(text) > MAX_NOTE:
        raise InvalidAction(f"A note holds at most {MAX_NOTE:,} characters; this one has {len(text):,}.")
    mentioned = _mentioned(conversation, text)
    html = sanitize_html(note_html(text, mentioned))
    return html, text.strip(), mentioned


def _notify(author: User, conversation: Conversation, note: Message, mentioned: dict[str, User],
            already: set[int] = frozenset()) -> list[Notification]:
    made = []
    for user in mentioned.values():
        if user.id == author.id or user.id in already or not can_see(user, conversation):
            continue
        n = Notification(user_id=user.id, actor_id=author.id, conversation_id=conversation.id, message_id=note.id,
                         kind="mention", text=f"{actor_name(author)} mentioned you in "
                                              f"“{conversation.subject or '(no subject)'}”")
        db.session.add(n)
        made.append(n)
    return made


def write_note(author: User | int, conversation_id: int, text: str) -> Message:
    """Add an internal note typed as plain text, and notify the colleagues it mentions.
    Raises `NotFound`, `InvalidAction` (empty or too long)."""
    author = get_user(author)
    conversation = get_conversation(author, conversation_id)
    html, plain, mentioned = _body(conversation, text)
    note = Message(conversation_id=conversation.id, direction="note", author_id=author.id, html=html,
                   text=html_to_text(html).strip() or plain, from_addr=author.name or author.email,
                   subject=conversation.subject)
    db.session.add(note)
    db.session.flush()
    _notify(author, conversation, note, mentioned)
    publish_change(conversation.id, "note")
    return note


def get_note(user: User, note_id: int) -> Message:
    """The note if `user` may see its conversation; raises `NotFound`."""
    note = db.session.get(Message, note_id)
    if note is None or note.direction != "note" or note.conversation_id is None:
        raise NotFound("note")
    get_conversation(user, note.conversation_id)
    return note


def may_edit(user: User, note: Message) -> bool:
    return note.author_id == user.id


def may_delete(user: User, note: Message) -> bool:
    return note.author_id == user.id or user.has_role(Role.ADMIN)


def edit_note(actor: User | int, note_id: int, text: str) -> Message:
    """Change a note's text (its author only), mark it edited, notify newly mentioned colleagues.
    Raises `NotFound`, `NotAllowed`, `InvalidAction`."""
    actor = get_user(actor)
    note = get_note(actor, note_id)
    if not may_edit(actor, note):
        raise NotAllowed("Only its author can edit a note.")
    conversation = note.conversation
    html, plain, mentioned = _body(conversation, text)
    before = note.text
    already = set(db.session.scalars(select(Notification.user_id).where(Notification.message_id == note.id)))
    note.html, note.text, note.edited_at = html, html_to_text(html).strip() or plain, utcnow()
    record_event(conversation.id, "note", f"{actor_name(actor)} edited an internal note", actor,
                 note=note.id, before=before[:1000])
    _notify(actor, conversation, note, mentioned, already)
    return note


def delete_note(actor: User | int, note_id: int) -> int:
    """Delete a note (its author, or an admin); returns its conversation's id.
    Raises `NotFound`, `NotAllowed`."""
    actor = get_user(actor)
    note = get_note(actor, note_id)
    if not may_delete(actor, note):
        raise NotAllowed("Only its author or an admin can delete a note.")
    conversation_id = note.conversation_id
    author = note.author
    record_event(conversation_id, "note", f"{actor_name(actor)} deleted an internal note"
                 + (f" by {actor_name(author)}" if author is not None and author.id != actor.id else ""), actor,
                 note=note.id, before=note.text[:1000])
    db.session.execute(delete(Notification).where(Notification.message_id == note.id))
    db.session.delete(note)
    db.session.flush()
    return conversation_id
