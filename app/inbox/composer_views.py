"""The composer's routes: start a draft (Reply, Reply All, Forward, New Mail), autosave, attachments,
Send, the recipient checks and suggestions, and the Standard Responses picker.

They share the workspace blueprint (`app.inbox.pages.bp`) and its page helpers; the services they
call (`drafts`, `sending`, `response_picker`) never commit, these routes do.
"""
from __future__ import annotations

from flask import abort, flash, jsonify, redirect, request, url_for
from flask_login import current_user

from app.extensions import db
from app.inbox import drafts as inbox_drafts
from app.inbox.access import InvalidAction, get_conversation
from app.inbox.lists import list_drafts
from app.inbox.recipients import parse_addresses
from app.inbox.response_picker import draft_values, preview_paragraphs
from app.inbox.sending import (DraftInvalid, NewerMessage, SuppressedRecipients, recipient_warnings,
                               send_draft)
from app.inbox.suggestions import suggest_contacts
from app.inbox.pages import bp, composer_context, conversation_response, draft_page, images_asked, tile_html, view_of
from app.responses import services as responses
from app.web import fragment_of, is_htmx, navigate, render


def _composer(draft, status: int = 200, **extra):
    return conversation_response(render("inbox/_composer.html", block="composer", status=status,
                                         **composer_context(draft, **extra)))


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
    images = images_asked()
    if draft.conversation_id is not None and not is_htmx():
        return redirect(url_for("inbox.conversation", conversation_id=draft.conversation_id, draft=draft.id,
                                images=1 if images else None) + f"#composer-{draft.id}")
    if is_htmx():
        return _composer(draft)
    return conversation_response(render("inbox/new_mail.html", **composer_context(draft, show_images=images)),
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
    if closing and draft.blank:  # nothing written (a Forward as it opened): no draft to keep
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
@fragment_of(draft_page)
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
    return conversation_response(render(
        "inbox/conversation.html", block="sent", c=conversation, tile=tile_html(view_of(message), True),
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
            q = request.args[field].replace(";", ",").split(",")[-1]  # the address being typed
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


