from __future__ import annotations

from flask import Blueprint, current_app, make_response, redirect, url_for
from flask_login import current_user, login_required

from app.inbox import services
from app.web import render

bp = Blueprint("inbox", __name__)


@bp.route("/")
def home():
    return redirect(url_for("inbox.index"))


@bp.route("/inbox/")
@login_required
def index():
    conversations = services.visible_conversations(current_user)
    return render("inbox/index.html", block="conversations", conversations=conversations)


# --- Delivery status of sent messages, and Retry (outbound, issue 5) -----------------------------
# The conversation page (workspace issue) shows `templates/inbox/delivery.html`'s "delivery" block
# in each outgoing message tile; it refreshes itself while the message is on its way.

def _outgoing_message(message_id: int):
    from flask import abort

    from app.extensions import db
    from app.models.inbox import Message

    message = db.session.get(Message, message_id)
    if message is None or message.direction != "out" or message.conversation is None \
            or not services.can_see_conversation(current_user, message.conversation):
        abort(404)
    return message


def _delivery(message, error: str | None = None, status: int = 200):
    from app.mail.outbound import PENDING_STATES

    return render("inbox/delivery.html", block="delivery", message=message, error=error, status=status,
                  pending=message.delivery_status in PENDING_STATES,
                  max_attempts=current_app.config["SEND_MAX_ATTEMPTS"])


@bp.route("/messages/<int:message_id>/delivery")
@login_required
def delivery(message_id: int):
    return _delivery(_outgoing_message(message_id))


@bp.route("/messages/<int:message_id>/retry", methods=["POST"])
@login_required
def retry_delivery(message_id: int):
    from flask import flash

    from app.extensions import db
    from app.mail.outbound import CannotSend, NotRetryable, enqueue_send, retry_message
    from app.web import is_htmx

    message = _outgoing_message(message_id)
    try:
        retry_message(message.id)
    except (NotRetryable, CannotSend) as exc:
        db.session.rollback()
        return _delivery(message, error=str(exc), status=422)
    db.session.commit()
    enqueue_send(message.id)
    if is_htmx():
        response = make_response("", 204)
        response.headers["HX-Trigger"] = "delivery-changed"
        return response
    flash("The message is queued to be sent again.", "success")
    return redirect(url_for("inbox.delivery", message_id=message.id))
