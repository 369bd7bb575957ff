"""Standard Responses: groups of canned replies, who sees them, placeholders, and the CSV export.

A group has a name, a "Shortcut Command" (typed after "/" in the composer's picker), a
description and a scope: visible to all, or only to agents of chosen queues.
Supervisors and admins see every group. A response has a title, an optional subject
and a body with placeholders written `{{customer.first_name}}` and so on
(`PLACEHOLDERS`); `render_response` fills them from the conversation and the agent,
HTML-escaped. Bodies are stored as sanitised HTML; plain text typed by a supervisor is
kept as paragraphs.

Services raise `ResponseError` (a message for the supervisor) and `NotFound`; the
caller commits.
"""
from __future__ import annotations

import csv
import html as _html
import io
import re
from datetime import datetime, timezone

from sqlalchemy import func, or_, select

from app.extensions import db
from app.mail.html import html_to_text, sanitize_html, text_to_html
from app.models.auth import Queue, Role, User, queue_members
from app.models.responses import ResponseGroup, StandardResponse

PLACEHOLDERS = {
    "customer.first_name": "the customer's first name",
    "customer.last_name": "the customer's last name",
    "customer.email": "the customer's email address",
    "agent.first_name": "your first name",
    "agent.last_name": "your last name",
    "agent.nickname": "your nickname (your first name when you have none)",
    "agent.email": "your email address",
    # The names the mail renderer (app.mail.render) and automatic replies use, accepted here too,
    # so one response reads the same whether an agent inserts it or a flow sends it.
    "customer_name": "the customer's name",
    "agent_name": "your name",
    "display_name": "the address's Display Name",
    "address": "the address the conversation came to",
    "conversation_reference": "the conversation's reference",
}
_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_.]+)\s*\}\}")
_HAS_TAG = re.compile(r"<(p|br|div|ul|ol|li|b|strong|i|em|a|h[1-6]|table|span|blockquote)\b", re.IGNORECASE)
SHORTCUT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,49}$")


class ResponseError(ValueError):
    """Invalid input; `field` names the form field it is about."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class NotFound(LookupError):
    pass


def all_groups() -> list[ResponseGroup]:
    return list(db.session.scalars(select(ResponseGroup).order_by(ResponseGroup.name)))


def get_group(group_id: int) -> ResponseGroup:
    group = db.session.get(ResponseGroup, group_id)
    if group is None:
        raise NotFound("group")
    return group


def get_response(response_id: int) -> StandardResponse:
    response = db.session.get(StandardResponse, response_id)
    if response is None:
        raise NotFound("response")
    return response


def _check_group(name: str, shortcut: str, queue_ids: list[int], visible_to_all: bool, group_id: int | None):
    name = (name or "").strip()
    if not name:
        raise ResponseError("name", "Give the group a name.")
    clash = db.session.scalar(select(ResponseGroup).where(func.lower(ResponseGroup.name) == name.lower()))
    if clash is not None and clash.id != group_id:
        raise ResponseError("name", f"A group named “{name}” exists already.")
    shortcut = (shortcut or "").strip().lstrip("/").lower()
    if shortcut and not SHORTCUT.match(shortcut):
        raise ResponseError("shortcut", "A Shortcut Command is letters, digits, - and _ (no spaces).")
    if shortcut:
        clash = db.session.scalar(select(ResponseGroup).where(ResponseGroup.shortcut == shortcut))
        if clash is not None and clash.id != group_id:
            raise ResponseError("shortcut", f"The group “{clash.name}” uses /{shortcut} already.")
    if not visible_to_all:
        known = set(db.session.scalars(select(Queue.id).where(Queue.id.in_(queue_ids or []))))
        if not known:
            raise ResponseError("queue_ids", "Choose at least one queue, or make the group visible to all.")
        queue_ids = sorted(known)
    else:
        queue_ids = []
    return name, shortcut, queue_ids


def save_group(group_id: int | None, *, name: str, shortcut: str = "", description: str = "",
               visible_to_all: bool = True, queue_ids: list[int] | None = None) -> ResponseGroup:
    """Create (group_id None) or update a group. Raises `ResponseError`, `NotFound`."""
    name, shortcut, queue_ids = _check_group(name, shortcut, queue_ids or [], visible_to_all, group_id)
    group = get_group(group_id) if group_id else ResponseGroup()
    group.name, group.shortcut, group.description = name, shortcut, (description or "").strip()
    group.visible_to_all, group.queue_ids = bool(visible_to_all), queue_ids
    db.session.add(group)
    db.session.flush()
    return group


def delete_group(group_id: int) -> None:
    group = get_group(group_id)
    for response in list(group.responses):
        db.session.delete(response)
    db.session.delete(group)


def clean_body(body: str) -> str:
    """Sanitised HTML of a response body; plain text becomes paragraphs."""
    body = (body or "").strip()
    return sanitize_html(body) if _HAS_TAG.search(body) else text_to_html(body)


def save_response(response_id: int | None, *, group_id: int, title: str, subject: str = "",
                  body: str = "") -> StandardResponse:
    """Create or update a response. Raises `ResponseError` for a missing title or body or an
    unknown placeholder, `NotFound`."""
    title = (title or "").strip()
    if not title:
        raise ResponseError("title", "Give the response a title.")
    group = get_group(group_id)
    html = clean_body(body)
    if not html_to_text(html).strip():
        raise ResponseError("body", "Write the response.")
    unknown = sorted({p for p in _PLACEHOLDER.findall(html + (subject or "")) if p not in PLACEHOLDERS})
    if unknown:
        raise ResponseError("body", "Unknown placeholder " + ", ".join("{{%s}}" % u for u in unknown)
                            + ". Known: " + ", ".join("{{%s}}" % k for k in PLACEHOLDERS) + ".")
    response = get_response(response_id) if response_id else StandardResponse()
    response.group_id, response.title = group.id, title[:200]
    response.subject, response.body = (subject or "").strip(), html
    response.updated_at = datetime.now(timezone.utc)
    db.session.add(response)
    db.session.flush()
    return response


def delete_response(response_id: int) -> None:
    db.session.delete(get_response(response_id))


def visible_groups_query(user: User):
    query = select(ResponseGroup)
    if user.has_role(Role.SUPERVISOR):
        return query
    mine = set(db.session.scalars(select(queue_members.c.queue_id).where(queue_members.c.user_id == user.id)))
    groups = [g.id for g in db.session.scalars(select(ResponseGroup))
              if g.visible_to_all or mine.intersection(g.queue_ids or [])]
    return query.where(ResponseGroup.id.in_(groups))


def visible_responses(user: User, q: str = "", limit: int = 50) -> list[StandardResponse]:
    """The responses `user` may insert, matching `q` (title, group name or Shortcut Command, body)."""
    groups = visible_groups_query(user).with_only_columns(ResponseGroup.id)
    query = (select(StandardResponse).join(ResponseGroup).where(StandardResponse.group_id.in_(groups))
             .order_by(ResponseGroup.name, StandardResponse.title))
    q = (q or "").strip().lstrip("/").lower()
    if q:
        like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(or_(func.lower(StandardResponse.title).like(like, escape="\\"),
                                func.lower(ResponseGroup.name).like(like, escape="\\"),
                                ResponseGroup.shortcut.like(q.split()[0] + "%"),
                                func.lower(StandardResponse.body).like(like, escape="\\")))
    return list(db.session.scalars(query.limit(limit)))


def split_name(name: str) -> tuple[str, str]:
    parts = (name or "").split()
    if not parts:
        return "", ""
    return parts[0], " ".join(parts[1:])


def placeholder_values(customer_name: str, customer_email: str, agent: User, *, address=None,
                       conversation_id: int | None = None) -> dict[str, str]:
    """Every placeholder's value (`address`: the conversation's address row or published snapshot)."""
    c_first, c_last = split_name(customer_name)
    a_first, a_last = split_name(agent.name)
    return {
        "customer.first_name": c_first, "customer.last_name": c_last, "customer.email": customer_email or "",
        "agent.first_name": a_first, "agent.last_name": a_last,
        "agent.nickname": agent.nickname or a_first, "agent.email": agent.email,
        "customer_name": customer_name or (customer_email or "").split("@")[0], "agent_name": agent.name or "",
        "display_name": getattr(address, "display_name", "") or "", "address": getattr(address, "address", "") or "",
        "conversation_reference": f"#{conversation_id}" if conversation_id else "",
    }


def fill(template: str, values: dict[str, str], *, escape: bool = True) -> str:
    """Replace `{{name}}` placeholders (unknown ones become empty), HTML-escaped unless `escape=False`."""
    def value(match: re.Match) -> str:
        v = values.get(match.group(1), "")
        return _html.escape(v) if escape else v

    return _PLACEHOLDER.sub(value, template or "")


def render_response(response: StandardResponse, values: dict[str, str]) -> tuple[str, str]:
    """(subject, body html) of a response with its placeholders filled."""
    return fill(response.subject, values, escape=False), sanitize_html(fill(response.body, values))


def export_csv() -> str:
    """Every group and response as CSV (one row per response; empty groups get one row too)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["group", "shortcut_command", "group_description", "visible_to", "title", "subject", "body"])
    queue_names = dict(db.session.execute(select(Queue.id, Queue.name)).all())
    for group in all_groups():
        scope = "all" if group.visible_to_all else "; ".join(
            queue_names.get(i, f"#{i}") for i in group.queue_ids or [])
        rows = group.responses or [None]
        for r in rows:
            writer.writerow([_safe(group.name), _safe(group.shortcut), _safe(group.description), _safe(scope),
                             _safe(r.title) if r else "", _safe(r.subject) if r else "", _safe(r.body) if r else ""])
    return out.getvalue()


def _safe(value: str) -> str:
    """Neutralise spreadsheet formulas (CSV injection)."""
    value = value or ""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value
