"""Publish (`/channels/publish/`): the pending changes, the two-step Publish dialog, the history.

The dialog lists every address and flow with unpublished changes; "Proceed" shows
what will go live, "Confirm" publishes exactly what was reviewed (each item's draft
version travels with the form, so a draft changed since is refused).
"""
from __future__ import annotations

from flask import Blueprint, abort, request, url_for
from flask_login import current_user

from app.extensions import db
from app.models.auth import Role
from app.publish import forms, services
from app.security import restrict_blueprint
from app.web import is_htmx, navigate, render

bp = Blueprint("publish", __name__, url_prefix="/channels/publish")
restrict_blueprint(bp, Role.ADMIN)


@bp.app_context_processor
def _unpublished_changes():
    """`unpublished_changes()` in every template: how many drafts wait for Publish (the Channels page links it)."""
    return {"unpublished_changes": lambda: len(services.pending_changes())}


def _selected(items: list[str]) -> tuple[list[int], list[int]]:
    address_ids, flow_ids = [], []
    for item in items:
        kind, _, raw = item.partition(":")
        if not raw.isdigit() or kind not in ("address", "flow"):
            raise ValueError(item)
        (address_ids if kind == "address" else flow_ids).append(int(raw))
    return address_ids, flow_ids


def _publish_dialog(step: str, status: int = 200, **context):
    pending = services.pending_changes()
    context.setdefault("selected", {p.key for p in pending})
    context.setdefault("form", forms.PublishForm(formdata=None))
    return render("publish/dialog.html", block="dialog", status=status, step=step, pending=pending,
                  modal=is_htmx(), **context)


@bp.route("/")
def publish():
    page = max(1, request.args.get("page", 1, type=int))
    per_page = 20
    records = services.publish_history(limit=per_page + 1, offset=(page - 1) * per_page)
    return render("publish/index.html", block="history", pending=services.pending_changes(),
                  records=records[:per_page], page=page, more=len(records) > per_page)


@bp.route("/new", methods=["GET", "POST"])
def publish_new():
    """Step 1 of the Publish dialog: select, write "Comments", "Proceed" (to the confirmation)."""
    if request.method == "GET":
        return _publish_dialog("select")
    form = forms.PublishForm()
    items = request.form.getlist("item")
    pending = {p.key: p for p in services.pending_changes()}
    errors = []
    if request.form.get("back"):
        return _publish_dialog("select", form=form, selected=set(items))
    valid = form.validate_on_submit()
    chosen = [pending[i] for i in items if i in pending]
    if not items:
        errors.append("Select at least one change to publish.")
    elif len(chosen) != len(items):
        errors.append("Something you selected has no unpublished changes any more. Review the list again.")
    if not valid or errors:
        return _publish_dialog("select", status=422, form=form, selected=set(items), errors=errors)
    warnings = services.publish_warnings([p.id for p in chosen if p.kind == "address"],
                                         [p.id for p in chosen if p.kind == "flow"])
    return _publish_dialog("confirm", form=form, chosen=chosen, selected=set(items), warnings=warnings)


@bp.route("/confirm", methods=["POST"])
def publish_confirm():
    """Step 2: "Confirm" publishes exactly what was reviewed, or says what changed since."""
    form = forms.PublishForm()
    items = request.form.getlist("item")
    try:
        address_ids, flow_ids = _selected(items)
    except ValueError:
        abort(400)
    expected = {i: request.form.get(f"version-{i}", "") for i in items}
    if not form.validate_on_submit():
        return _publish_dialog("select", status=422, form=form, selected=set(items))
    try:
        record = services.publish(current_user.id, form.comment.data, address_ids, flow_ids, expected=expected)
    except (services.NothingToPublish, services.PublishError, ValueError) as exc:
        db.session.rollback()
        message = exc.message if isinstance(exc, services.PublishError) else "Select at least one change to publish."
        return _publish_dialog("select", status=422, form=form, selected=set(items), errors=[message])
    db.session.commit()
    count = len(record.changes)
    return navigate(url_for(".publish"), f"Published {count} change{'s' if count != 1 else ''}.")


@bp.route("/history")
def publish_history():
    page = max(1, request.args.get("page", 1, type=int))
    per_page = 50
    records = services.publish_history(limit=per_page + 1, offset=(page - 1) * per_page)
    return render("publish/history.html", block="history", records=records[:per_page], page=page,
                  more=len(records) > per_page)


