"""The agent workspace pages: inbox views, the conversation, the composer, drafts, downloads.

Every route serves a full page or, for HTMX, the named block that changed (see
`app.web.render`). State changes call the workspace services (`app.inbox.actions`,
`drafts`, `sending`, ...) and commit here; what a service hands to a job (a Send) is
enqueued after that commit (`app.transactions`).
"""
from __future__ import annotations

import io

import click
from flask import (Blueprint, abort, flash, jsonify, make_response, redirect, request, send_file,
                   url_for)
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import select

from app.blobs import blob_store
from app.extensions import db
from app.inbox import presence
# Called through their modules: views of the same names (assign, drafts, save_draft, ...) would shadow them.
from app.inbox import actions
from app.inbox import drafts as inbox_drafts
from app.inbox.access import (InvalidAction, NotAllowed, NotFound, attachment_bytes, can_see, get_attachment,
                              get_conversation, get_message)
from app.inbox.addresses import from_notice, sending_addresses
from app.inbox.choices import assignable_users, queue_choices, transfer_choices, user_queues
from app.inbox.conversation import MessageView, conversation_detail
from app.inbox.display import (FRAME_STYLE_HASH, frame_document, inline_image_data, message_display,
                               sanitized_note, split_body)
from app.inbox.forms import NoteForm, StatusForm
from app.inbox.lists import STATUSES, list_drafts, list_inbox, mark_seen, view_counts
from app.inbox.recipients import parse_addresses
from app.inbox.response_picker import draft_values, preview_paragraphs
from app.inbox.search import reindex
from app.mail.html import block_remote_images, sanitize_html
from app.inbox.sending import (DraftInvalid, NewerMessage, SuppressedRecipients, recipient_warnings, retry_delivery,
                               send_draft)
from app.inbox.suggestions import suggest_contacts
from app.models.inbox import Message
from app.responses import services as responses
from app.runtime.outbound import IN_PROGRESS
from app.security import CSP, Policy
from app.units import human_size
from app.web import Fragments, fragment_of, is_htmx, landing_url, navigate, render

bp = Blueprint("inbox", __name__)

#: The conversation page lets the message frames (which inherit it) use their one style sheet
#: and the customer's inline styles. It loads no remote image: a frame whose images the agent
#: asks for is loaded from `message_frame` with its own policy, and the composer's remote images
#: (a Forward's) wait until its "Show images" loads the page again with `CONVERSATION_CSP_IMAGES`.
_CONVERSATION_POLICY = CSP.extend(style_src=(f"'{FRAME_STYLE_HASH}'",), style_src_attr=("'unsafe-inline'",))
CONVERSATION_CSP = str(_CONVERSATION_POLICY)
CONVERSATION_CSP_IMAGES = str(_CONVERSATION_POLICY.extend(img_src=("http:", "https:")))
#: A message frame whose remote images the agent asked for, loaded by URL (a `srcdoc` frame would
#: inherit the page's policy): its own document only, in a sandbox, inside our pages only.
SHOWN_FRAME_CSP = str(Policy({"default-src": ("'none'",), "img-src": ("data:", "http:", "https:"),
                              "style-src": ("'unsafe-inline'",), "font-src": ("data:",), "form-action": ("'none'",),
                              "frame-ancestors": ("'self'",),
                              "sandbox": ("allow-popups", "allow-popups-to-escape-sandbox")}))
#: An attachment download is never a page.
DOWNLOAD_CSP = str(Policy({"default-src": ("'none'",), "sandbox": ()}))

KIND_LABELS = {"reply": "Reply", "reply_all": "Reply All", "forward": "Forward", "new": "New Mail"}


@bp.app_context_processor
def _labels():
    return {"kind_labels": KIND_LABELS}


# Globals, not context: the tiles (Fragments) render without the page's context.
bp.add_app_template_global(human_size, "human_size")
bp.add_app_template_global(IN_PROGRESS, "delivery_in_progress")


@bp.errorhandler(NotFound)
def _not_found(_error):
    # Not found and not allowed look the same: nobody learns what another queue holds.
    return render("errors/error.html", code=404, title="Not found", text="There is nothing at this address.",
                  status=404)


@bp.route("/")
def home():
    return redirect(landing_url(current_user))


# --- Inbox -------------------------------------------------------------------------------

def _filters() -> dict:
    args = request.args
    view = args.get("view", "all")
    status = args.get("status", "open")
    queue = args.get("queue", type=int)
    q = args.get("q", "").strip()[:200]
    # An older window of a search's matches ("Search older messages"); meaningless without a search.
    before = args.get("before", type=int) if q else None
    return {"view": view, "status": status, "queue": queue, "q": q, "before": before}


@bp.route("/inbox/")
def index():
    filters = _filters()
    if filters["view"] == "drafts":
        return redirect(url_for("inbox.drafts"))
    try:
        page = list_inbox(current_user, view=filters["view"], status=filters["status"] or None,
                          queue_id=filters["queue"], q=filters["q"], before=filters["before"],
                          cursor=request.args.get("cursor"), after=request.args.get("after"))
    except InvalidAction as exc:
        return render("inbox/index.html", block="results", status=422, error=str(exc), page=None,
                      filters=filters, queues=queue_choices(current_user))
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
                  queues=queue_choices(current_user) if block == "results" and not is_htmx() else [])


#: One inbox row's HTML: (InboxRow, the others viewing it, whether it came by polling).
_row = Fragments("inbox/_row.html", "row", zoned=True)


@bp.route("/inbox/drafts/")
def drafts():
    return render("inbox/drafts.html", block="drafts", drafts=list_drafts(current_user),
                  filters={"view": "drafts"})


@bp.route("/inbox/counts")
def counts():
    """The view tabs with their counts (loaded after the page, then polled)."""
    filters = _filters()
    return render("inbox/_tabs.html", counts=view_counts(current_user), filters=filters)


# --- Conversation ------------------------------------------------------------------------

def _tile(message: Message | MessageView, show_images: bool = False) -> dict:
    """What `_tiles.html` needs of a message; the body's frame comes from `message_display`'s cache."""
    m = _view(message)
    images = {}
    if any(a.content_id for a in m.attachments):
        images = inline_image_data(m.attachments, blob_store().get)
    shown = message_display(m.html, m.text, show_images=show_images, inline_images=images)
    shown_inline = {cid.lower() for cid in images}
    files = [a for a in m.attachments if not (a.content_id and a.content_id.strip("<>").lower() in shown_inline)]
    return {"message": m, "frame": shown.frame, "has_quote": shown.has_quote, "files": files,
            # Shown images load in a frame of their own (`message_frame`), not in a `srcdoc` one.
            "frame_url": url_for("inbox.message_frame", message_id=m.id) if show_images else None,
            # Notes are our agents' own HTML, shown in the page itself: sanitised again all the same.
            "note_html": sanitized_note(m.html) if m.direction == "note" and m.html else None}


#: A message's tile (MessageView, whether it is the newest: open), and its body alone ("Show images").
_tile_html = Fragments("inbox/_tiles.html", "tile", prepare=lambda m, newest: (_tile(m), newest), zoned=True)
_tile_body_html = Fragments("inbox/_tiles.html", "tile_body", prepare=lambda m, images: (_tile(m, images),))


def _tiles(messages) -> list:
    """The tiles' HTML, oldest first; the last one is open."""
    last = len(messages) - 1
    return _tile_html.many([(_view(m), i == last) for i, m in enumerate(messages)])


def _view(message: Message | MessageView) -> MessageView:
    return message if isinstance(message, MessageView) else MessageView.of(message)


def _conversation_response(response, images: bool = False):
    response.headers["Content-Security-Policy"] = CONVERSATION_CSP_IMAGES if images else CONVERSATION_CSP
    return response


def _images_asked() -> bool:
    return request.args.get("images") == "1"


@bp.route("/inbox/c/<int:conversation_id>")
def conversation(conversation_id: int):
    return _conversation_page(conversation_id)


def _conversation_page(conversation_id: int, status: int = 200, **actions_extra):
    """The conversation page; `actions_extra` goes to the Actions card (an action's question, `ask`)."""
    detail = conversation_detail(current_user, conversation_id)
    if detail.unseen and mark_seen(current_user.id, conversation_id, detail.conversation.last_message_at):
        db.session.commit()
    open_draft = None
    draft_id = request.args.get("draft", type=int)
    if draft_id:
        open_draft = next((d for d in detail.drafts if d.id == draft_id), None)
    images = open_draft is not None and _images_asked()  # the open draft's "Show images"
    return _conversation_response(render(
        "inbox/conversation.html", block="conversation", detail=detail, c=detail.conversation,
        tiles=_tiles(detail.messages), open_draft=open_draft,
        composer=_composer_context(open_draft, show_images=images) if open_draft else None,
        last_id=max((m.id for m in detail.messages), default=0), status=status, **actions_extra,
        **_action_forms(detail.conversation)), images)


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
    queue too, out of band; with `ask`, the question before overwriting a colleague's change."""
    return _conversation_response(render(
        "inbox/conversation.html", block="actions", c=conversation, status=status, action_error=error, oob=oob,
        ask=ask, **_action_forms(conversation)))


def _ask_first(conversation, exc: actions.AskFirst, fields: dict):
    """A colleague's recent change: the question, and a button that sends the same change with confirm=1.

    A confirmation step (like Send's for suppressed recipients): 422; the card, the badge and the arrival
    card show the current state (the colleague's change)."""
    db.session.rollback()
    conversation = get_conversation(current_user, conversation.id)
    route = "inbox.assign" if exc.action == "assign" else "inbox.set_status"
    ask = {"question": exc.question, "url": url_for(route, conversation_id=conversation.id), "fields": fields,
           "button": "Take it anyway" if exc.action == "assign" and fields.get("assignee") == "me"
           else ("Assign anyway" if exc.action == "assign" else "Change it anyway")}
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
            note = actions.add_note(current_user, conversation_id, form.body.data)
        except InvalidAction as exc:
            error = str(exc)
        else:
            db.session.commit()
            if not is_htmx():
                return redirect(url_for("inbox.conversation", conversation_id=conversation_id))
            return _conversation_response(render(
                "inbox/conversation.html", block="note_added", c=conversation, tile=_tile_html(_view(note), True),
                note_form=NoteForm(formdata=None)))
    else:
        error = "Write the note first."
    return _conversation_response(render("inbox/conversation.html", block="note_form", c=conversation,
                                         note_form=form, note_error=error, status=422))


def _message_page(message_id: int) -> str:
    """The conversation page of a message (NotFound unless the user may see it)."""
    return url_for("inbox.conversation", conversation_id=get_message(current_user, message_id).conversation_id)


def _draft_page(draft_id: int) -> str:
    return url_for("inbox.draft", draft_id=inbox_drafts.get_draft(current_user, draft_id).id)


@bp.route("/inbox/m/<int:message_id>/body")
@fragment_of(_message_page)
def message_body(message_id: int):
    message = get_message(current_user, message_id)
    return _conversation_response(render("inbox/conversation.html", block="tile_body",
                                         body=_tile_body_html(_view(message), request.args.get("images") == "1")))


@bp.route("/inbox/m/<int:message_id>/quote")
@fragment_of(_message_page)
def message_quote(message_id: int):
    message = get_message(current_user, message_id)
    body = split_body(message.html, message.text)
    images = _images_asked()
    frame = frame_document(body.quoted_html, show_images=images)
    frame_url = url_for("inbox.message_frame", message_id=message.id, part="quote") if images else None
    return _conversation_response(render("inbox/conversation.html", block="quote", m=message, frame=frame,
                                         frame_url=frame_url))


@bp.route("/inbox/m/<int:message_id>/frame")
def message_frame(message_id: int):
    """The document of a message's frame with its remote images ("Show images"; `part=quote`: the
    quoted history), under `SHOWN_FRAME_CSP`: what the agent asked to see, and nothing else."""
    message = get_message(current_user, message_id)
    if request.args.get("part") == "quote":
        doc = frame_document(split_body(message.html, message.text).quoted_html, show_images=True).srcdoc
    else:
        doc = _tile(message, show_images=True)["frame"].srcdoc
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
    return _conversation_response(render(
        "inbox/conversation.html", block="updates", c=conversation, tiles=_tiles(messages),
        last_id=max([after] + [m.id for m in messages])))


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


# --- Composer ----------------------------------------------------------------------------

def _composer_context(draft, errors: dict | None = None, newer=None, show_images: bool = False,
                      suppressed: list[str] | None = None, confirmed_newer: bool = False) -> dict:
    """What the composer shows. Its editor is part of the page: remote images of the draft (a
    Forward's) are held back (`data-ph-src`) until "Show images" loads the page with them.
    `suppressed`: the Send's confirmation step for suppressed recipients; `warnings`: the
    suppressed recipients already in each field (a Reply to a customer whose mail bounced)."""
    conversation = draft.conversation
    body_html, held = block_remote_images(draft.body or "", show=show_images, hold=True)
    senders = sending_addresses(current_user, conversation)
    return {
        "d": draft, "errors": errors or {}, "newer": newer, "body_html": body_html, "held_images": held,
        "images_shown": show_images, "suppressed": suppressed or [], "confirmed_newer": confirmed_newer,
        "warnings": {name: recipient_warnings(parse_addresses(getattr(draft, f"{name}_addrs") or "").emails)
                     for name in ("to", "cc", "bcc")},
        "senders": senders,
        "from_notice": from_notice(conversation, senders, draft.from_address_id),
        "queues": user_queues(current_user) if draft.kind == "new" else [],
        "locked": inbox_drafts.recipients_locked(draft),
        # What sending adds under the text (app.mail.render): shown below the editor, not part of it.
        "signature_html": Markup(sanitize_html(current_user.signature_html or "").strip()),
    }


def _composer(draft, status: int = 200, **extra):
    return _conversation_response(render("inbox/_composer.html", block="composer", status=status,
                                         **_composer_context(draft, **extra)))


@bp.route("/inbox/c/<int:conversation_id>/compose", methods=["POST"])
def compose(conversation_id: int):
    kind = request.form.get("kind", "reply")
    try:
        draft = inbox_drafts.start_draft(current_user, conversation_id, kind, request.form.get("message", type=int))
    except InvalidAction as exc:
        db.session.rollback()
        return render("inbox/conversation.html", block="compose_error", error=str(exc), status=422)
    db.session.commit()
    if not is_htmx():
        return redirect(url_for("inbox.conversation", conversation_id=conversation_id, draft=draft.id))
    return _composer(draft)


@bp.route("/inbox/new", methods=["POST"])
def new_mail():
    draft = inbox_drafts.start_new_mail(current_user)
    db.session.commit()
    return navigate(url_for("inbox.draft", draft_id=draft.id))


@bp.route("/inbox/drafts/<int:draft_id>")
def draft(draft_id: int):
    draft = inbox_drafts.get_draft(current_user, draft_id)
    images = _images_asked()
    if draft.conversation_id is not None and not is_htmx():
        return redirect(url_for("inbox.conversation", conversation_id=draft.conversation_id, draft=draft.id,
                                images=1 if images else None) + f"#composer-{draft.id}")
    if is_htmx():
        return _composer(draft)
    return _conversation_response(render("inbox/new_mail.html", **_composer_context(draft, show_images=images)),
                                  images)


def _save_from_form(draft_id: int):
    form = request.form
    from_id = form.get("from_address_id", type=int)
    queue_id = form.get("queue_id", type=int)
    forwarded = set(form.getlist("forward")) if form.get("forward_present") == "1" else None
    return inbox_drafts.save_draft(
        current_user, draft_id, to=form.get("to"), cc=form.get("cc"), bcc=form.get("bcc"),
        subject=form.get("subject"), body=form.get("body"), from_address_id=from_id, queue_id=queue_id,
        forward_included=forwarded)


@bp.route("/inbox/drafts/<int:draft_id>", methods=["POST"])
def save_draft(draft_id: int):
    """Autosave (answers the "Saved" line), or "Close" (`close=1`: the conversation's drafts list)."""
    draft = _save_from_form(draft_id)
    closing = request.form.get("close") == "1"
    conversation_id = draft.conversation_id
    if closing and inbox_drafts.is_empty(draft):
        inbox_drafts.delete_draft(current_user, draft_id)
        draft = None
    db.session.commit()
    if closing:
        if conversation_id is None:
            return navigate(url_for("inbox.drafts"))
        if not is_htmx():
            return redirect(url_for("inbox.conversation", conversation_id=conversation_id))
        return render("inbox/conversation.html", block="drafts",
                      detail={"drafts": list_drafts(current_user, conversation_id)},
                      c=get_conversation(current_user, conversation_id))
    if request.form.get("show_images") == "1":
        # The composer's "Show images": saved, then the page again with the draft's remote images.
        return navigate(url_for("inbox.draft", draft_id=draft_id, images=1))
    if not is_htmx():
        return redirect(url_for("inbox.draft", draft_id=draft_id))
    return render("inbox/_composer.html", block="saved", d=draft)


@bp.route("/inbox/drafts/<int:draft_id>/delete", methods=["GET", "POST"])
@fragment_of(_draft_page)
def delete_draft(draft_id: int):
    draft = inbox_drafts.get_draft(current_user, draft_id)
    if request.method == "GET":
        return render("inbox/_composer_parts.html", block="delete_dialog", d=draft)
    conversation_id = inbox_drafts.delete_draft(current_user, draft_id)
    db.session.commit()
    return navigate(url_for("inbox.conversation", conversation_id=conversation_id) if conversation_id
                    else url_for("inbox.drafts"), "Draft deleted.")


@bp.route("/inbox/drafts/<int:draft_id>/attachments", methods=["POST"])
def upload(draft_id: int):
    draft = inbox_drafts.get_draft(current_user, draft_id)
    files = [f for f in request.files.getlist("file") if f and f.filename]
    error = None if files else "Choose a file to attach."
    for upload_file in files:
        try:
            draft = inbox_drafts.add_draft_attachment(current_user, draft_id, upload_file.filename,
                                                      upload_file.mimetype, upload_file.stream)
        except InvalidAction as exc:
            error = str(exc)
            break
    db.session.commit()
    return render("inbox/_composer.html", block="attachments", d=draft, attachment_error=error,
                  status=422 if error else 200)


@bp.route("/inbox/drafts/<int:draft_id>/attachments/<int:index>/remove", methods=["POST"])
def remove_attachment(draft_id: int, index: int):
    try:
        draft = inbox_drafts.remove_draft_attachment(current_user, draft_id, index)
    except InvalidAction as exc:
        return render("inbox/_composer.html", block="attachments", d=inbox_drafts.get_draft(current_user, draft_id),
                      attachment_error=str(exc), status=422)
    db.session.commit()
    return render("inbox/_composer.html", block="attachments", d=draft, attachment_error=None)


@bp.route("/inbox/drafts/<int:draft_id>/send", methods=["POST"])
def send(draft_id: int):
    draft = _save_from_form(draft_id)
    db.session.commit()
    confirmed_newer = request.form.get("confirm_newer") == "1"
    try:
        message = send_draft(draft_id, current_user.id, confirm_newer=confirmed_newer,
                             confirm_suppressed=request.form.get("confirm_suppressed") == "1")
    except DraftInvalid as exc:
        db.session.rollback()
        return _composer(inbox_drafts.get_draft(current_user, draft_id), 422, errors=exc.errors)
    except NewerMessage as exc:
        db.session.rollback()
        return _composer(inbox_drafts.get_draft(current_user, draft_id), 422, newer=exc.message)
    except SuppressedRecipients as exc:
        # A confirmation step, not an error: "Send anyway" posts again with confirm_suppressed.
        db.session.rollback()
        return _composer(inbox_drafts.get_draft(current_user, draft_id), 422, suppressed=exc.warnings,
                         confirmed_newer=confirmed_newer)
    db.session.commit()
    flash("Sent: the message is queued for delivery.", "success")
    if draft.kind == "new" or not is_htmx():
        return navigate(url_for("inbox.conversation", conversation_id=message.conversation_id))
    conversation = get_conversation(current_user, message.conversation_id)
    return _conversation_response(render(
        "inbox/conversation.html", block="sent", c=conversation, tile=_tile_html(_view(message), True),
        detail={"drafts": list_drafts(current_user, conversation.id)}))


@bp.route("/inbox/recipients/check", methods=["POST"])
def check_recipients():
    field = request.form.get("field", "to")
    if field not in ("to", "cc", "bcc"):
        return render("inbox/_composer_parts.html", block="recipient_error", error="Unknown field.", status=422)
    parsed = parse_addresses(request.form.get(field, ""))
    error = " ".join(parsed.errors) or None
    return render("inbox/_composer_parts.html", block="recipient_error", error=error, status=422 if error else 200,
                  bounced=recipient_warnings(parsed.emails))


@bp.route("/inbox/contacts/suggest")
@fragment_of()
def suggest():
    q = request.args.get("q", "")
    for field in ("to", "cc", "bcc"):
        if field in request.args:
            q = request.args[field].split(",")[-1]
    field = request.args.get("field", "to")
    if field not in ("to", "cc", "bcc"):
        return render("inbox/_composer_parts.html", block="suggestions", contacts=[], field="to", status=422)
    return render("inbox/_composer_parts.html", block="suggestions", field=field,
                  contacts=suggest_contacts(current_user, q), draft_id=request.args.get("draft", type=int))


@bp.route("/inbox/responses/picker")
@fragment_of()
def picker():
    draft = inbox_drafts.get_draft(current_user, request.args.get("draft", type=int) or 0)
    q = request.args.get("q", "")
    block = "picker_results" if request.args.get("results") == "1" else "picker"
    return render("inbox/_composer_parts.html", block=block, d=draft, q=q,
                  items=responses.visible_responses(current_user, q), preview=preview_paragraphs,
                  values=draft_values(draft, current_user._get_current_object()))


@bp.route("/inbox/responses/<int:response_id>/insert")
def insert_response(response_id: int):
    """The response with its placeholders filled for this draft's conversation, as JSON."""
    draft = inbox_drafts.get_draft(current_user, request.args.get("draft", type=int) or 0)
    try:
        response = responses.get_response(response_id)
    except responses.NotFound:
        abort(404)
    if response not in responses.visible_responses(current_user, "", limit=10_000):
        abort(404)
    subject, html = responses.render_response(response, draft_values(draft, current_user._get_current_object()))
    return jsonify({"subject": subject, "html": html, "title": response.title})


@bp.app_template_filter("frame_height")
def _frame_height(cls: str) -> str:
    return f"frame-{cls}"


@bp.cli.command("reindex")
def reindex_command() -> None:
    """Rebuild the full-text search index of messages (SQLite; a no-op on PostgreSQL)."""
    reindex()
    db.session.commit()
    click.echo("search index rebuilt")
