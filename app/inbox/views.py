"""The agent workspace pages: inbox views, the conversation, its actions, messages, downloads.

Every route serves a full page or, for HTMX, the named block that changed (see
`app.web.render`). State changes call the workspace services (`app.inbox.actions`,
`drafts`, `sending`, ...) and commit here; what a service hands to a job (a Send) is
enqueued after that commit (`app.transactions`).
"""
from __future__ import annotations

import io
import re
import time
from datetime import datetime, timedelta, timezone

import click
from flask import (Response, abort, current_app, flash, g, make_response, redirect, request, send_file,
                   url_for)
from flask_login import current_user
from markupsafe import Markup
from redis.exceptions import RedisError
from sqlalchemy import select

from app.cache import plain
from app.extensions import db
from app.inbox import live, presence
# Called through their modules: views of the same names (assign, drafts, save_draft, ...) would shadow them.
from app.inbox import actions, notes
from app.inbox.contacts import contact_panel
from app.inbox.access import (InvalidAction, NotAllowed, attachment_bytes, can_see, get_attachment,
                              get_conversation, get_message)
from app.inbox.choices import assignable_users, transfer_choices
from app.inbox.conversation import conversation_detail
from app.inbox.display import (frame_document, split_body)
from app.inbox.forms import NoteForm, StatusForm
from app.inbox.pages import (DOWNLOAD_CSP, SHOWN_FRAME_CSP, bp, composer_context, conversation_response, images_asked, tile, tile_body_html, tile_html, tiles, view_of, event_html)
from app.inbox.lists import STATUSES, list_drafts, list_inbox, mark_seen, view_counts
from app.inbox.search import reindex
from app.inbox.trail import events_of, last_event_id
from app.inbox.organize_views import PRIORITY_CHOICES, organize_context
from app.inbox.lists import InboxFilters, InboxRow
from app.inbox.choices import filter_choices
from app.models.organize import PRIORITIES
from app.runtime.tags import TagError, normal_tag
from app.runtime import sla
from app.inbox.sending import (retry_delivery)
from app.models.inbox import Message
from app.web import (LANDING_VIEWS, Fragments, fragment_of, is_htmx, landing_url, navigate, render, start_of_day,
                     viewer_zone, zone_info)
from app.models._types import utcnow

@bp.route("/")
def home():
    return redirect(landing_url(current_user))


# --- Inbox -------------------------------------------------------------------------------

#: A search word that filters by tag instead ("tag:refund").
_TAG_WORD = re.compile(r"(?:^|\s)tag:(\S+)", re.I)


def landing_inbox_view(user) -> str:
    """The inbox view `/inbox/` opens with: the one of the user's start page (agents: "Mine"), else "all"."""
    _label, endpoint, args, _role = LANDING_VIEWS.get(user.landing_view or "inbox", LANDING_VIEWS["inbox"])
    return args.get("view", "all") if endpoint == "inbox.index" else "all"


#: An activity filter's relative value: "1h" (the last hour, any number of hours), "today" (in the viewer's zone).
_HOURS = re.compile(r"^(\d{1,3})h$")


def activity_since(value: str | None, now: datetime, zone: str = "UTC") -> datetime | None:
    """The time of an activity filter (`received_since=` / `replied_since=`): "1h" (hours back from `now`),
    "today" (the start of the day in `zone`, the viewer's), or an ISO time (without an offset: in `zone`);
    None when empty or not understood (the filter is then left out)."""
    value = (value or "").strip()
    if not value:
        return None
    if found := _HOURS.match(value):
        return now - timedelta(hours=int(found.group(1)))
    if value == "today":
        return start_of_day(now, zone)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=zone_info(zone))).astimezone(timezone.utc)


def _filters() -> dict:
    """The inbox's filters from the query string; `keep`: those to carry into every link of the page
    (view tabs, Load more, polling), so that they keep each other when combined and across tabs;
    `row_keep`: the same without the search, for the live refresh of one row."""
    args = request.args
    view = args.get("view") or landing_inbox_view(current_user)
    status = args.get("status", "open")
    queue = args.get("queue", type=int)
    q = args.get("q", "").strip()[:200]
    tag = args.get("tag", "").strip()[:60]
    found = _TAG_WORD.search(q)
    if found:  # "tag:refund" in the search: the tag filter, and the rest of the words searched
        tag = tag or found.group(1)
        q = _TAG_WORD.sub(" ", q).strip()
    try:
        tag = normal_tag(tag)
    except TagError:
        tag = ""
    priority = args.get("priority", type=int)
    if priority not in PRIORITIES:
        priority = None
    assignee = args.get("assignee", type=int)
    address = args.get("address", type=int)
    unread = args.get("unread") == "1"
    sort = args.get("sort") if args.get("sort") in ("priority", "due") else ""
    sla = args.get("sla") if args.get("sla") in ("breached", "at_risk") else ""
    now, zone = utcnow(), viewer_zone()
    received = args.get("received_since", "").strip()[:40]
    replied = args.get("replied_since", "").strip()[:40]
    received_at, replied_at = activity_since(received, now, zone), activity_since(replied, now, zone)
    received, replied = (received if received_at else ""), (replied if replied_at else "")
    replied_by = args.get("replied_by", type=int) if replied_at else None
    # An older window of a search's matches ("Search older messages"); meaningless without a search.
    before = args.get("before", type=int) if q else None
    keep = {k: v for k, v in {"status": status, "queue": queue, "q": q, "tag": tag, "priority": priority,
                              "assignee": assignee, "address": address, "unread": "1" if unread else None,
                              "sort": sort, "sla": sla, "received_since": received, "replied_since": replied,
                              "replied_by": replied_by}.items() if v not in (None, "") or k == "status"}
    return {"view": view, "status": status, "queue": queue, "q": q, "before": before, "tag": tag,
            "priority": priority, "assignee": assignee, "address": address, "unread": unread, "sort": sort, "sla": sla,
            "received_since": received, "replied_since": replied, "replied_by": replied_by,
            "received_at": received_at, "replied_at": replied_at, "keep": keep, "row_keep": {k: v for k, v in keep.items() if k != "q"}}


def _inbox_filters(filters: dict) -> InboxFilters:
    return InboxFilters(assignee_id=filters["assignee"], tag=filters["tag"], priority=filters["priority"],
                        address_id=filters["address"], unread=filters["unread"], sort=filters["sort"],
                        sla=filters["sla"], received_since=filters.get("received_at"),
                        replied_since=filters.get("replied_at"), replied_by=filters.get("replied_by"))


def _filter_choices() -> dict:
    """The choices of the inbox's filters (the full page only)."""
    return {**filter_choices(current_user), "priority_choices": PRIORITY_CHOICES}


@bp.route("/inbox/")
def index():
    filters = _filters()
    if filters["view"] == "drafts":
        return redirect(url_for("inbox.drafts"))
    try:
        page = list_inbox(current_user, view=filters["view"], status=filters["status"] or None,
                          queue_id=filters["queue"], q=filters["q"], before=filters["before"],
                          cursor=request.args.get("cursor"), after=request.args.get("after"),
                          filters=_inbox_filters(filters))
    except InvalidAction as exc:
        return render("inbox/index.html", block="results", status=422, error=str(exc), page=None,
                      filters=filters, **_filter_choices())
    if request.args.get("after") is not None:
        block = "poll"
    elif request.args.get("cursor") or filters["before"] is not None:
        block = "more"  # the next rows, or a search's older window of matches, in place of the "more" row
    else:
        block = "results"
    present = presence.present_in([r.conversation.id for r in page.rows], current_user.id)
    # One Markup for all rows: the template writes it once instead of escaping-checking 50 pieces.
    rows_html = Markup("".join(_row.many([(r, present.get(r.conversation.id, []), block == "poll")
                                          for r in page.rows])))
    return render("inbox/index.html", block=block, page=page, filters=filters, error=None, rows_html=rows_html,
                  tabs_oob=block == "results" and is_htmx(),
                  **(_filter_choices() if block == "results" and not is_htmx() else {"queues": []}))


def row_key(row: InboxRow, present: list[dict], fresh: bool) -> tuple:
    """The key of a row's HTML: the row itself (a NamedTuple of plain values, hashed in C: a key of
    its fields built by `plain()` cost 2 µs a row), the others viewing it and whether it came by polling."""
    return row, plain(present) if present else (), fresh


#: One inbox row's HTML: (InboxRow, the others viewing it, whether it came by polling).
_row = Fragments("inbox/_row.html", "row", zoned=True, key=row_key)


@bp.route("/inbox/c/<int:conversation_id>/row")
@fragment_of(lambda conversation_id: url_for("inbox.index"))
def row(conversation_id: int):
    """One inbox row as it is now (a live update swaps it in place); empty when the user may no longer see
    it, or it no longer matches the list's view and filters, passed as the list's own query string (the
    row goes: a conversation resolved in a list of open ones, transferred out of the agent's queues)."""
    filters = _filters() if request.args else {"view": "all", "status": "", "queue": None, "assignee": None,
                                                "tag": "", "priority": None, "address": None, "unread": False,
                                                "sort": "", "sla": ""}
    page = list_inbox(current_user, view=filters["view"], status=filters["status"] or None,
                      queue_id=filters["queue"], filters=_inbox_filters(filters), conversation_id=conversation_id)
    if not page.rows:
        return ""
    present = presence.present_in([conversation_id], current_user.id)
    return Markup(_row(page.rows[0], present.get(conversation_id, []), False))


@bp.route("/inbox/events")
def events():
    """The user's event stream (`app.inbox.live`): server-sent events, one per change of a conversation
    they may see. 503 when Redis is down (the browser tries again, and the pages poll meanwhile)."""
    key_hash = live.sign_in_of_request()
    try:
        queues = live.audience(current_user.id, key_hash)
    except live.SignedOut:
        abort(401)
    try:
        pubsub = live.subscribe()
    except RedisError:
        return Response("retry: 5000\n\n", status=503, mimetype="text/event-stream")
    db.session.remove()  # the stream holds no database connection while it waits
    response = Response(live.event_stream(current_app._get_current_object(), pubsub, current_user.id, key_hash,
                                          queues), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return response


@bp.route("/inbox/drafts/")
def drafts():
    return render("inbox/drafts.html", block="drafts", drafts=list_drafts(current_user),
                  filters={"view": "drafts", "keep": {}, "row_keep": {}})


@bp.route("/inbox/notices")
def notices_page():
    """The old Notices page: notices are notifications now, all on one page."""
    return redirect(url_for("inbox.notifications"), 301)


@bp.route("/inbox/counts")
def counts():
    """The view tabs with their counts (loaded after the page, then polled)."""
    filters = _filters()
    return render("inbox/_tabs.html", counts=view_counts(current_user), filters=filters)


# --- Conversation ------------------------------------------------------------------------

@bp.route("/inbox/c/<int:conversation_id>")
def conversation(conversation_id: int):
    return _conversation_page(conversation_id)


def _conversation_page(conversation_id: int, status: int = 200, **actions_extra):
    """The conversation page; `actions_extra` goes to the Actions card (an action's question, `ask`)."""
    detail = conversation_detail(current_user, conversation_id)
    if detail.conversation.merged_into_id is not None:  # merged: its messages are in the other one now
        return redirect(url_for("inbox.conversation", conversation_id=detail.conversation.merged_into_id))
    if detail.unseen and mark_seen(current_user.id, conversation_id, detail.conversation.last_message_at):
        db.session.commit()
    open_draft = None
    draft_id = request.args.get("draft", type=int)
    if draft_id:
        open_draft = next((d for d in detail.drafts if d.id == draft_id), None)
    # A blank draft (a composer opened and left) is listed only while it is the one open.
    detail.drafts = [d for d in detail.drafts if not d.blank or d is open_draft]
    images = open_draft is not None and images_asked()  # the open draft's "Show images"
    return conversation_response(render(
        "inbox/conversation.html", block="conversation", detail=detail, c=detail.conversation,
        tiles=tiles(detail.messages, detail.events), open_draft=open_draft,
        composer=composer_context(open_draft, show_images=images) if open_draft else None,
        last_id=max((m.id for m in detail.messages), default=0), status=status, **actions_extra,
        events_after=max((e.id for e in detail.events), default=0), contact=contact_panel(
            current_user, conversation_id, detail.conversation.contact),
        **_action_forms(detail.conversation), **organize_context(detail.conversation, detail.earlier)), images)


STATUS_CHOICES = [(s, s.title()) for s in STATUSES]


def _action_forms(conversation) -> dict:
    """The choices of the Actions card (the template renders the lists; WTForms validates the POSTs)."""
    return {
        "assignee_choices": [("", "Unassigned")] + [(str(u.id), u.name or u.email)
                                                   for u in assignable_users(conversation)],
        "queue_choices": [(str(q[0]), q[1]) for q in transfer_choices(current_user, conversation)],
        "status_choices": STATUS_CHOICES, "note_form": NoteForm()}


def _actions_response(conversation, status: int = 200, error: str | None = None, oob: bool = False, ask=None):
    """The Actions card; with `oob` (after a change), the header's status badge and the arrival card's
    queue too, out of band, and the trail's new lines at the end of the thread; with `ask`, the
    question before overwriting a colleague's change."""
    new_lines = Markup("".join(event_html.many([(e,) for e in events_of(conversation.id, g.trail_mark)]))) \
        if oob and g.get("trail_mark") is not None else ""
    return conversation_response(render(
        "inbox/conversation.html", block="actions", c=conversation, status=status, action_error=error, oob=oob,
        ask=ask, new_lines=new_lines, sla_now=sla.timer_of(conversation), **_action_forms(conversation)))


@bp.before_request
def _trail_mark():
    """Before a change: the newest line of any trail, so the answer can show the lines it added."""
    if request.method == "POST":
        g.trail_mark = last_event_id()


def _ask_first(conversation, exc: actions.AskFirst, fields: dict):
    """A colleague's recent change: the question, and a button that sends the same change with confirm=1.

    A confirmation step (like Send's for suppressed recipients): 422; the card, the badge and the arrival
    card show the current state (the colleague's change)."""
    db.session.rollback()
    conversation = get_conversation(current_user, conversation.id)
    route = "inbox.assign" if exc.action == "assign" else "inbox.set_status"
    ask = {"question": exc.question, "url": url_for(route, conversation_id=conversation.id), "fields": fields,
           "button": "Take it anyway" if exc.action == "assign" and fields.get("assignee") == "me"
           else ("Assign anyway" if exc.action == "assign" else "Change it anyway"),
           "at": f"{time.time():.3f}"}  # what it shows is as of then: live updates announced earlier leave it be
    if not is_htmx():
        return _conversation_page(conversation.id, 422, ask=ask)
    return _actions_response(conversation, 422, ask=ask, oob=True)  # and the colleague's change, shown


@bp.route("/inbox/c/<int:conversation_id>/status", methods=["POST"])
def set_status(conversation_id: int):
    conversation = get_conversation(current_user, conversation_id)
    form = StatusForm()
    if not form.validate_on_submit():
        return _actions_response(conversation, 422, "Choose open, pending, resolved or closed.")
    try:
        actions.set_status(current_user, conversation_id, form.status.data, confirm=request.form.get("confirm") == "1")
    except actions.AskFirst as exc:
        return _ask_first(conversation, exc, {"status": form.status.data})
    db.session.commit()
    flash(f"Status set to {form.status.data}.", "success")
    return _after_action(conversation)


@bp.route("/inbox/c/<int:conversation_id>/assign", methods=["POST"])
def assign(conversation_id: int):
    conversation = get_conversation(current_user, conversation_id)
    asked = value = request.form.get("assignee", "")
    if value == "me":
        value = str(current_user.id)
    try:
        actions.assign(current_user, conversation_id, int(value) if value else None,
                       confirm=request.form.get("confirm") == "1")
    except actions.AskFirst as exc:
        return _ask_first(conversation, exc, {"assignee": asked})
    except ValueError as exc:
        db.session.rollback()
        message = str(exc) if isinstance(exc, InvalidAction) else "Choose an agent."
        return _actions_response(conversation, 422, message)
    db.session.commit()
    flash(f"Assigned to {conversation.assignee.name}." if conversation.assignee else "Unassigned.", "success")
    return _after_action(conversation)


@bp.route("/inbox/c/<int:conversation_id>/transfer", methods=["POST"])
def transfer(conversation_id: int):
    conversation = get_conversation(current_user, conversation_id)
    try:
        actions.transfer(current_user, conversation_id, int(request.form.get("queue") or 0))
    except NotAllowed as exc:
        # The Transfer list never offers such a queue: only a crafted request gets here.
        db.session.rollback()
        if not is_htmx():
            return render("errors/error.html", code=403, title="Not allowed", text=str(exc), status=403)
        return _actions_response(conversation, 403, str(exc))
    except (ValueError, InvalidAction):
        db.session.rollback()
        return _actions_response(conversation, 422, "Choose a queue.")
    db.session.commit()
    flash(f"Moved to the queue {conversation.queue.name}.", "success")
    if not can_see(current_user, conversation):
        # The agent handed it to a queue they do not work: back to the inbox.
        return navigate(url_for("inbox.index"))
    return _after_action(conversation)


@bp.route("/inbox/c/<int:conversation_id>/panel")
@fragment_of(lambda conversation_id: url_for("inbox.conversation", conversation_id=conversation_id))
def panel(conversation_id: int):
    """The Actions card, with the header's badge and the arrival card out of band, as they are now (a live
    update of the open conversation; the composer and the note are not touched)."""
    return _actions_response(get_conversation(current_user, conversation_id), oob=True)


def _after_action(conversation):
    if is_htmx():
        return _actions_response(conversation, oob=True)
    return redirect(url_for("inbox.conversation", conversation_id=conversation.id))


@bp.route("/inbox/c/<int:conversation_id>/notes", methods=["POST"])
def add_note(conversation_id: int):
    conversation = get_conversation(current_user, conversation_id)
    form = NoteForm()
    error = None
    if form.validate_on_submit():
        try:
            note = notes.write_note(current_user, conversation_id, form.body.data)  # plain text, @mentions
        except InvalidAction as exc:
            error = str(exc)
        else:
            db.session.commit()
            if not is_htmx():
                return redirect(url_for("inbox.conversation", conversation_id=conversation_id))
            return conversation_response(render(
                "inbox/conversation.html", block="note_added", c=conversation, tile=tile_html(view_of(note), True),
                note_form=NoteForm(formdata=None)))
    else:
        error = "Write the note first."
    return conversation_response(render("inbox/conversation.html", block="note_form", c=conversation,
                                         note_form=form, note_error=error, status=422))


def _message_page(message_id: int) -> str:
    """The conversation page of a message (NotFound unless the user may see it)."""
    return url_for("inbox.conversation", conversation_id=get_message(current_user, message_id).conversation_id)


@bp.route("/inbox/m/<int:message_id>/body")
@fragment_of(_message_page)
def message_body(message_id: int):
    message = get_message(current_user, message_id)
    return conversation_response(render("inbox/conversation.html", block="tile_body",
                                         body=tile_body_html(view_of(message), request.args.get("images") == "1")))


@bp.route("/inbox/m/<int:message_id>/quote")
@fragment_of(_message_page)
def message_quote(message_id: int):
    message = get_message(current_user, message_id)
    body = split_body(message.html, message.text)
    images = images_asked()
    frame = frame_document(body.quoted_html, show_images=images)
    frame_url = url_for("inbox.message_frame", message_id=message.id, part="quote") if images else None
    return conversation_response(render("inbox/conversation.html", block="quote", m=message, frame=frame,
                                         frame_url=frame_url))


@bp.route("/inbox/m/<int:message_id>/frame")
def message_frame(message_id: int):
    """The document of a message's frame with its remote images ("Show images"; `part=quote`: the
    quoted history), under `SHOWN_FRAME_CSP`: what the agent asked to see, and nothing else."""
    message = get_message(current_user, message_id)
    if request.args.get("part") == "quote":
        doc = frame_document(split_body(message.html, message.text).quoted_html, show_images=True).srcdoc
    else:
        doc = tile(message, show_images=True)["frame"].srcdoc
    response = make_response(doc)
    response.headers["Content-Security-Policy"] = SHOWN_FRAME_CSP
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    response.headers["Cache-Control"] = "private, no-store"
    return response


# Delivery status of an outgoing message and Retry by hand: the tile's status line (`delivery` in
# templates/inbox/_tiles.html), polled while the message is on its way. The one place for both.

def _outgoing(message_id: int) -> Message:
    message = get_message(current_user, message_id)  # NotFound (404) unless the user may see it
    if message.direction != "out":
        abort(404)
    return message


@bp.route("/inbox/m/<int:message_id>/status")
def message_status(message_id: int):
    message = _outgoing(message_id)
    if not is_htmx():
        return redirect(url_for("inbox.conversation", conversation_id=message.conversation_id,
                                _anchor=f"message-{message.id}"))
    return render("inbox/conversation.html", block="delivery", m=message)


@bp.route("/inbox/m/<int:message_id>/retry", methods=["POST"])
def retry(message_id: int):
    _outgoing(message_id)
    try:
        message = retry_delivery(message_id, current_user.id)
    except InvalidAction as exc:
        db.session.rollback()
        message = _outgoing(message_id)
        if not is_htmx():
            flash(str(exc), "error")
            return redirect(url_for("inbox.conversation", conversation_id=message.conversation_id,
                                    _anchor=f"message-{message.id}"), 303)
        return render("inbox/conversation.html", block="delivery", m=message, retry_error=str(exc), status=422)
    db.session.commit()
    if not is_htmx():
        flash("The message is queued to be sent again.", "success")
        return redirect(url_for("inbox.conversation", conversation_id=message.conversation_id,
                                _anchor=f"message-{message.id}"), 303)
    return render("inbox/conversation.html", block="delivery", m=message)


@bp.route("/inbox/c/<int:conversation_id>/updates")
@fragment_of(lambda conversation_id: url_for("inbox.conversation", conversation_id=conversation_id))
def updates(conversation_id: int):
    """Messages newer than `after` (a message id), as tiles to append; polled by the page."""
    get_conversation(current_user, conversation_id)
    after = request.args.get("after", type=int)
    if after is None:
        return render("inbox/conversation.html", block="updates", status=422, tiles=[], c=None, last_id=0)
    messages = list(db.session.scalars(select(Message).where(
        Message.conversation_id == conversation_id, Message.id > after).order_by(Message.id)))
    if messages:
        mark_seen(current_user.id, conversation_id)
        db.session.commit()
    conversation = get_conversation(current_user, conversation_id)
    # The trail's lines a colleague (or automation) added since `events` (the newest line shown).
    events_after = request.args.get("events", type=int)
    lines = events_of(conversation_id, events_after) if events_after is not None else []
    return conversation_response(render(
        "inbox/conversation.html", block="updates", c=conversation, tiles=tiles(messages, lines),
        last_id=max([after] + [m.id for m in messages]),
        events_after=max([events_after or 0] + [e.id for e in lines])))


@bp.route("/inbox/c/<int:conversation_id>/presence", methods=["POST"])
def presence_ping(conversation_id: int):
    conversation = get_conversation(current_user, conversation_id)
    if request.form.get("leaving") == "1":
        presence.leave(conversation_id, current_user.id)
        return "", 204
    presence.touch(conversation_id, current_user.id, current_user.name or current_user.email,
                   replying=request.form.get("replying") == "1")
    return render("inbox/conversation.html", block="presence", c=conversation,
                  others=presence.others(conversation_id, current_user.id))


@bp.route("/inbox/attachments/<int:attachment_id>")
def download(attachment_id: int):
    attachment = get_attachment(current_user, attachment_id)
    data = attachment_bytes(attachment)
    response = send_file(io.BytesIO(data), mimetype=attachment.content_type or "application/octet-stream",
                         as_attachment=True, download_name=attachment.filename or "attachment",
                         max_age=0, conditional=False)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = DOWNLOAD_CSP
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.app_template_filter("frame_height")
def _frame_height(cls: str) -> str:
    return f"frame-{cls}"


@bp.cli.command("reindex")
def reindex_command() -> None:
    """Rebuild the search index of conversations and the lists' previews, with their triggers when missing."""
    reindex()
    db.session.commit()
    click.echo("search index rebuilt")

