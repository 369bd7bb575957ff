"""The contact panel's page (a customer, edited by supervisors and admins), internal notes' Edit and
Delete, `@mention` suggestions, and the user's notifications of every kind (the header's badge and the
Notifications page).

Services: `app.inbox.contacts`, `app.inbox.notes` and `app.inbox.notifications`; each POST commits here.
"""
from __future__ import annotations

from flask import abort, flash, g, jsonify, redirect, request, url_for
from flask_login import current_user
from markupsafe import Markup

from app.extensions import db
from app.inbox import contacts, notes, notifications as inbox_notifications
from app.inbox.access import InvalidAction, NotAllowed, get_conversation
from app.inbox.pages import bp, conversation_response, event_html, tile_html, view_of
from app.inbox.trail import events_of
from app.models.notifications import KINDS, Notification
from app.web import fragment_of, is_htmx, render


# --- Contacts ------------------------------------------------------------------------------------

def _contact_page(contact, status: int = 200, error: str | None = None, values: dict | None = None):
    contact_others = contacts.others_visible(current_user, contact.id)
    return render("inbox/contact.html", block="contact_form", contact=contact, status=status, error=error,
                  organization=contacts.organization_of(contact), others=contact_others,
                  addresses=[contact.email] + contacts.extra_addresses(contact),
                  may_edit=contacts.may_edit_contacts(current_user),
                  free_mail=contacts.domain_organization(contact.email) == "",
                  values=values or {"name": contact.name, "extra": contact.extra_addresses,
                                    "organization": contact.organization, "notes": contact.notes})


@bp.route("/inbox/contacts/<int:contact_id>", methods=["GET", "POST"])
def contact(contact_id: int):
    found = contacts.get_contact(current_user, contact_id)
    if request.method == "GET":
        return _contact_page(found)
    values = {k: request.form.get(k, "") for k in ("name", "extra", "organization", "notes")}
    try:
        contacts.update_contact(current_user, contact_id, **values)
    except NotAllowed as exc:
        db.session.rollback()
        return _contact_page(found, 403, str(exc), values)
    except InvalidAction as exc:
        db.session.rollback()
        return _contact_page(found, 422, str(exc), values)
    db.session.commit()
    flash("Contact saved.", "success")
    return redirect(url_for("inbox.contact", contact_id=contact_id), 303)


# --- Notes -----------------------------------------------------------------------------------------

def _note_page(note_id: int) -> str:
    note = notes.get_note(current_user, note_id)
    return url_for("inbox.conversation", conversation_id=note.conversation_id) + f"#message-{note.id}"


@bp.route("/inbox/c/<int:conversation_id>/mentions")
@fragment_of(lambda conversation_id: url_for("inbox.conversation", conversation_id=conversation_id))
def mentions(conversation_id: int):
    """Colleagues who may see the conversation, whose handle or name starts with `q` (JSON for notes.js)."""
    conversation = get_conversation(current_user, conversation_id)
    users = notes.mentionable_users(conversation, request.args.get("q", "")[:60])
    return jsonify([{"handle": notes.handle_of(u), "name": u.name or u.email} for u in users
                    if u.id != current_user.id])


@bp.route("/inbox/notes/<int:note_id>/edit", methods=["GET", "POST"])
@fragment_of(_note_page)
def edit_note(note_id: int):
    note = notes.get_note(current_user, note_id)
    if not notes.may_edit(current_user, note):
        abort(403)
    if request.method == "GET":
        return conversation_response(render("inbox/_note_edit.html", note=note, text=note.text))
    text = request.form.get("body", "")
    try:
        notes.edit_note(current_user, note_id, text)
    except NotAllowed:
        db.session.rollback()
        abort(403)
    except InvalidAction as exc:
        db.session.rollback()
        if not is_htmx():
            flash(str(exc), "error")
            return redirect(_note_page(note_id), 303)
        return conversation_response(render("inbox/_note_edit.html", note=note, text=text, error=str(exc),
                                             status=422))
    db.session.commit()
    if not is_htmx():
        flash("Note saved.", "success")
        return redirect(_note_page(note_id), 303)
    return conversation_response(render("inbox/_note_saved.html", tile=tile_html(view_of(note), True)))


@bp.route("/inbox/notes/<int:note_id>/delete", methods=["POST"])
def delete_note(note_id: int):
    from_event = g.get("trail_mark")  # set before every POST of the blueprint (views._trail_mark)
    try:
        conversation_id = notes.delete_note(current_user, note_id)
    except NotAllowed:
        db.session.rollback()
        abort(403)
    db.session.commit()
    if not is_htmx():
        flash("Note deleted.", "success")
        return redirect(url_for("inbox.conversation", conversation_id=conversation_id), 303)
    lines = events_of(conversation_id, from_event) if from_event is not None else []
    return conversation_response(render("inbox/_note_saved.html", tile=Markup(""),
                                        new_lines=Markup("".join(event_html.many([(e,) for e in lines])))))


# --- Notifications ---------------------------------------------------------------------------------

@bp.route("/notifications")
def notifications():
    return render("inbox/notifications.html", items=inbox_notifications.list_notifications(current_user),
                  kinds=KINDS)


@bp.route("/notifications/badge")
@fragment_of(lambda: url_for("inbox.notifications"))
def notification_badge():
    """The header link's text with the unread count (loaded by the link itself)."""
    return render("inbox/_notifications_link.html", block="badge",
                  unread=inbox_notifications.unread_count(current_user))


@bp.route("/notifications/<int:notification_id>")
def open_notification(notification_id: int):
    """Mark it read and go to the conversation (the note) it is about; one about no conversation (a queue's
    alert) back to the Notifications page."""
    n = db.session.get(Notification, notification_id)
    if n is None or n.user_id != current_user.id:
        abort(404)
    if n.conversation_id is None:
        inbox_notifications.mark_read(current_user, n.id)
        db.session.commit()
        return redirect(url_for("inbox.notifications"), 303)
    get_conversation(current_user, n.conversation_id)
    inbox_notifications.mark_read(current_user, n.id)
    db.session.commit()
    anchor = f"#message-{n.message_id}" if n.message_id else ""
    return redirect(url_for("inbox.conversation", conversation_id=n.conversation_id) + anchor, 303)


@bp.route("/notifications/read", methods=["POST"])
def read_notifications():
    """Mark as read: one (`notification`), or all of them."""
    count = inbox_notifications.mark_read(current_user, request.form.get("notification", type=int))
    db.session.commit()
    flash("Marked as read." if count else "Nothing unread.", "success")
    return redirect(url_for("inbox.notifications"), 303)
