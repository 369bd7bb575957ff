"""Standard Responses management: groups and responses for supervisors and admins, CSV "Download".

Forms open in `<dialog>`s loaded by hx-get; an invalid form comes back in its dialog with
status 422; a saved one sends the browser back to the list (HX-Redirect) with a flash.
"""
from __future__ import annotations

from datetime import datetime, timezone

from flask import Blueprint, Response, flash, request, url_for
from sqlalchemy import select
from wtforms.fields.choices import SelectChoice

from app.extensions import db
from app.models.auth import Queue, Role
from app.responses import services
from app.responses.forms import GroupForm, ResponseForm
from app.security import restrict_blueprint
from app.web import navigate, render

bp = Blueprint("responses", __name__, url_prefix="/responses")


restrict_blueprint(bp, Role.SUPERVISOR)


@bp.errorhandler(services.NotFound)
def _not_found(_error):
    return render("errors/error.html", code=404, title="Not found", text="There is nothing at this address.",
                  status=404)


def _back():
    return navigate(url_for("responses.index"))


@bp.route("/")
def index():
    return render("responses/index.html", block="groups", groups=services.all_groups(),
                  queue_names=dict(db.session.execute(select(Queue.id, Queue.name)).all()),
                  placeholders=services.PLACEHOLDERS)


def _queue_choices():
    return [SelectChoice(q.id, q.name) for q in db.session.scalars(select(Queue).order_by(Queue.name))]


@bp.route("/groups/new", methods=["GET", "POST"], defaults={"group_id": None})
@bp.route("/groups/<int:group_id>/edit", methods=["GET", "POST"])
def edit_group(group_id: int | None):
    group = services.get_group(group_id) if group_id else None
    form = GroupForm(obj=group) if request.method == "GET" and group else GroupForm()
    if request.method == "GET" and group is None:
        form.visible_to_all.data = True
    form.queue_ids.choices = _queue_choices()
    if request.method == "GET" and group is not None:
        form.queue_ids.data = list(group.queue_ids or [])
    if form.validate_on_submit():
        try:
            saved = services.save_group(group_id, name=form.name.data, shortcut=form.shortcut.data or "",
                                        description=form.description.data or "",
                                        visible_to_all=form.visible_to_all.data, queue_ids=form.queue_ids.data)
        except services.ResponseError as exc:
            db.session.rollback()
            getattr(form, exc.field).errors = [str(exc)]
        else:
            db.session.commit()
            flash(f"Group “{saved.name}” saved.", "success")
            return _back()
    status = 422 if request.method == "POST" else 200
    return render("responses/group_form.html", block="dialog", form=form, group=group, status=status)


@bp.route("/groups/<int:group_id>/delete", methods=["GET", "POST"])
def delete_group(group_id: int):
    group = services.get_group(group_id)
    if request.method == "GET":
        return render("responses/delete.html", block="dialog", what=f"the group “{group.name}” and its "
                      f"{len(group.responses)} response(s)", action=url_for("responses.delete_group", group_id=group.id))
    name = group.name
    services.delete_group(group_id)
    db.session.commit()
    flash(f"Group “{name}” deleted.", "success")
    return _back()


@bp.route("/new", methods=["GET", "POST"], defaults={"response_id": None})
@bp.route("/<int:response_id>/edit", methods=["GET", "POST"])
def edit_response(response_id: int | None):
    response = services.get_response(response_id) if response_id else None
    form = ResponseForm(obj=response) if request.method == "GET" and response else ResponseForm()
    groups = services.all_groups()
    form.group_id.choices = [SelectChoice(g.id, g.name) for g in groups]
    if request.method == "GET" and response is None and request.args.get("group", type=int):
        form.group_id.data = request.args.get("group", type=int)
    if not groups:
        form.group_id.errors = ["Create a group first."]
    if form.validate_on_submit() and groups:
        try:
            saved = services.save_response(response_id, group_id=form.group_id.data, title=form.title.data,
                                           subject=form.subject.data or "", body=form.body.data)
        except (services.ResponseError, services.NotFound) as exc:
            db.session.rollback()
            field = getattr(exc, "field", "group_id")
            getattr(form, field).errors = [str(exc) if field != "group_id" else "Choose a group."]
        else:
            db.session.commit()
            flash(f"Response “{saved.title}” saved.", "success")
            return _back()
    status = 422 if request.method == "POST" else 200
    return render("responses/response_form.html", block="dialog", form=form, response=response, status=status,
                  placeholders=services.PLACEHOLDERS)


@bp.route("/<int:response_id>/delete", methods=["GET", "POST"])
def delete_response(response_id: int):
    response = services.get_response(response_id)
    if request.method == "GET":
        return render("responses/delete.html", block="dialog", what=f"the response “{response.title}”",
                      action=url_for("responses.delete_response", response_id=response.id))
    title = response.title
    services.delete_response(response_id)
    db.session.commit()
    flash(f"Response “{title}” deleted.", "success")
    return _back()


@bp.route("/download")
def download():
    """Every group and response as CSV ("Download")."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d")
    return Response(services.export_csv().encode("utf-8-sig"), content_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="standard-responses-{stamp}.csv"',
        "X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-store"})
