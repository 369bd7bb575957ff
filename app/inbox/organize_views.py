"""The workspace's organising tools: the Organize card of a conversation (priority, tags, snooze,
merge), Split on a message, and the trail's CSV exports.

Each POST calls one service of `app.inbox.organize` or `app.inbox.merging`, commits, and answers
the Organize card (HTMX) with the trail's new lines out of band, or redirects (a plain form).
"""
from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import Response, flash, g, redirect, request, url_for
from flask_login import current_user
from markupsafe import Markup

from app.extensions import db
from app.inbox import merging, organize
from app.inbox.access import InvalidAction, get_conversation, get_message
from app.inbox.pages import bp, conversation_response, event_html
from app.inbox.trail import conversation_csv, events_of, range_csv
from app.models.auth import Role
from app.models.organize import PRIORITIES
from app.web import fragment_of, is_htmx, navigate, render, viewer_zone

PRIORITY_CHOICES = [(str(k), v) for k, v in sorted(PRIORITIES.items(), reverse=True)]


def organize_context(conversation, earlier=None) -> dict:
    """What the Organize card shows: the priorities and the conversations it may merge into (`earlier`: the
    page's rows of the customer's other conversations, when it has them: no second query)."""
    merge_choices = [e for e in earlier if e.merged_into_id is None] if earlier is not None \
        else merging.merge_candidates(current_user, conversation)
    return {"priority_choices": PRIORITY_CHOICES, "merge_choices": merge_choices}


@bp.route("/inbox/tags/suggest")
@fragment_of(lambda: url_for("inbox.index"))
def suggest_tags():
    """The tags in use that start with what is typed (`tag`), as the `<option>`s of a tag field's datalist."""
    return render("inbox/_tag_options.html", tags=organize.suggested_tags(request.args.get("tag", "")[:60]))


def _card(conversation, status: int = 200, error: str | None = None):
    """The Organize card, with the trail's new lines (and the status badge) out of band."""
    lines = events_of(conversation.id, g.trail_mark) if g.get("trail_mark") is not None else []
    return conversation_response(render(
        "inbox/conversation.html", block="organize", c=conversation, status=status, organize_error=error,
        oob=status == 200, new_lines=Markup("".join(event_html.many([(e,) for e in lines]))),
        **organize_context(conversation)))


def _done(conversation, message: str):
    db.session.commit()
    flash(message, "success")
    if is_htmx():
        return _card(conversation)
    return redirect(url_for("inbox.conversation", conversation_id=conversation.id), 303)


def _refused(conversation, exc: Exception):
    db.session.rollback()
    conversation = get_conversation(current_user, conversation.id)
    if is_htmx():
        return _card(conversation, 422, str(exc))
    flash(str(exc), "error")
    return redirect(url_for("inbox.conversation", conversation_id=conversation.id), 303)


@bp.route("/inbox/c/<int:conversation_id>/priority", methods=["POST"])
def set_priority(conversation_id: int):
    conversation = get_conversation(current_user, conversation_id)
    try:
        organize.set_priority(current_user, conversation_id, int(request.form.get("priority", "x")))
    except ValueError as exc:
        return _refused(conversation, exc if isinstance(exc, InvalidAction) else
                        InvalidAction("Choose low, normal, high or urgent."))
    return _done(conversation, f"Priority set to {PRIORITIES[conversation.priority]}.")


@bp.route("/inbox/c/<int:conversation_id>/tags", methods=["POST"])
def add_tag(conversation_id: int):
    conversation = get_conversation(current_user, conversation_id)
    try:
        organize.add_tag(current_user, conversation_id, request.form.get("tag", ""))
    except InvalidAction as exc:
        return _refused(conversation, exc)
    return _done(conversation, "Tags saved.")


@bp.route("/inbox/c/<int:conversation_id>/tags/remove", methods=["POST"])
def remove_tag(conversation_id: int):
    conversation = get_conversation(current_user, conversation_id)
    organize.remove_tag(current_user, conversation_id, request.form.get("tag", ""))
    return _done(conversation, "Tag removed.")


def _snooze_until(value: str, zone: str) -> datetime | None:
    """The time of the snooze form (`datetime-local`, in the agent's zone), or None for "until the
    customer answers". Raises `InvalidAction` for what is not a time."""
    if value == "reply":
        return None
    local = ZoneInfo(zone)
    presets = {"later": None, "tomorrow": time(9, 0), "next_week": time(9, 0)}
    now = datetime.now(local)
    if value == "later":
        return now + timedelta(hours=3)
    if value == "tomorrow":
        return datetime.combine(now.date() + timedelta(days=1), presets["tomorrow"], local)
    if value == "next_week":
        return datetime.combine(now.date() + timedelta(days=7 - now.weekday()), presets["next_week"], local)
    try:
        return datetime.fromisoformat(value).replace(tzinfo=local)
    except ValueError:
        raise InvalidAction("Type the date and time to snooze until.") from None


@bp.route("/inbox/c/<int:conversation_id>/snooze", methods=["POST"])
def snooze(conversation_id: int):
    conversation = get_conversation(current_user, conversation_id)
    zone = viewer_zone()
    choice = request.form.get("until") or ""
    typed = (request.form.get("until_time") or "").strip()
    if choice == "time" or typed:  # a time typed in the field is the agent's choice, whatever the list says
        choice = typed
    try:
        organize.snooze(current_user, conversation_id, _snooze_until(choice, zone), zone=zone)
    except InvalidAction as exc:
        return _refused(conversation, exc)
    return _done(conversation, "Snoozed: pending until the customer answers." if choice == "reply" else "Snoozed.")


@bp.route("/inbox/c/<int:conversation_id>/merge", methods=["POST"])
def merge(conversation_id: int):
    conversation = get_conversation(current_user, conversation_id)
    try:
        target = merging.merge(current_user, conversation_id, int(request.form.get("target") or 0))
    except ValueError as exc:
        return _refused(conversation, exc if isinstance(exc, InvalidAction) else
                        InvalidAction("Choose a conversation to merge into."))
    db.session.commit()
    return navigate(url_for("inbox.conversation", conversation_id=target.id),
                    "Merged: both threads are in this conversation now.")


@bp.route("/inbox/m/<int:message_id>/split", methods=["POST"])
def split(message_id: int):
    message = get_message(current_user, message_id)
    conversation = get_conversation(current_user, message.conversation_id)
    try:
        new = merging.split(current_user, message_id)
    except InvalidAction as exc:
        return _refused(conversation, exc)
    db.session.commit()
    return navigate(url_for("inbox.conversation", conversation_id=new.id),
                    "Split: this message is a conversation of its own now.")


def _csv_response(body: str, filename: str) -> Response:
    response = Response(body, mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.route("/inbox/c/<int:conversation_id>/trail.csv")
def trail_csv(conversation_id: int):
    return _csv_response(conversation_csv(current_user, conversation_id), f"conversation-{conversation_id}-trail.csv")


@bp.route("/inbox/trail")
def trail_export():
    """Supervisors and admins: every conversation's trail in a date range (the agent's zone), as CSV."""
    if not current_user.has_role(Role.SUPERVISOR):
        return render("errors/error.html", code=403, title="Not allowed",
                      text="Only supervisors and admins export the trail of every conversation.", status=403)
    start, end = request.args.get("start", ""), request.args.get("end", "")
    error = None
    if start or end:
        zone = ZoneInfo(viewer_zone())
        try:
            first = datetime.fromisoformat(start).replace(tzinfo=zone)
            last = datetime.fromisoformat(end).replace(tzinfo=zone) + timedelta(days=1)
            if last <= first:
                raise ValueError
        except ValueError:
            error = "Choose a first and a last day, the first not after the last."
        else:
            return _csv_response(range_csv(current_user, first, last), f"trail-{start}-{end}.csv")
    return render("inbox/trail.html", start=start, end=end, error=error, status=422 if error else 200,
                  filters={"view": "trail"})
