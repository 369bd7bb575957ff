"""Publish (`/channels/publish/`): the pending changes, the two-step Publish dialog, the history.

The dialog lists every address and flow with unpublished changes; "Proceed" shows
what will go live, "Confirm" publishes exactly what was reviewed (each item's draft
version travels with the form, so a draft changed since is refused). With Publish
approvals on, Confirm records a request that another admin approves or declines on
the Publish page. Each Publish is a version (`/versions/<n>`): viewed, compared with
what is live, restored as draft (docs/publish.md).
"""
from __future__ import annotations

from flask import Blueprint, abort, flash, request, url_for
from flask_login import current_user

from app.extensions import db
from app.models.auth import Role
from app.publish import approvals, forms, restore, services, versions
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


def _approvals_context(decline_form=None, approval_errors=()) -> dict:
    settings = approvals.settings()
    req = approvals.pending_request()
    return {"approvals_on": approvals.publish_approvals_required(), "approvals_settings": settings,
            "settings_form": forms.ApprovalSettingsForm(formdata=None,
                                                        approvals_required=bool(settings and
                                                                                settings.approvals_required)),
            "publish_request": req, "request_changed": approvals.changed_since(req) if req else [],
            "recent_requests": approvals.recent_decisions(),
            "decline_form": decline_form or forms.DeclineForm(formdata=None), "action_form": forms.ActionForm(),
            "approval_errors": list(approval_errors)}


def _publish_page(status: int = 200, **context):
    page = max(1, request.args.get("page", 1, type=int))
    per_page = 20
    records = services.publish_history(limit=per_page + 1, offset=(page - 1) * per_page)
    context = {**_approvals_context(), **context}
    return render("publish/index.html", block="history", status=status, pending=services.pending_changes(),
                  records=records[:per_page], page=page, more=len(records) > per_page, **context)


@bp.route("/")
def publish():
    return _publish_page()


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
    return _publish_dialog("confirm", form=form, chosen=chosen, selected=set(items), warnings=warnings,
                           approvals_on=approvals.publish_approvals_required())


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
    if approvals.publish_approvals_required():
        return _request_publish(form, items, expected)
    try:
        record = services.publish(current_user.id, form.comment.data, address_ids, flow_ids, expected=expected)
    except (services.NothingToPublish, services.PublishError, ValueError) as exc:
        db.session.rollback()
        message = exc.message if isinstance(exc, services.PublishError) else "Select at least one change to publish."
        return _publish_dialog("select", status=422, form=form, selected=set(items), errors=[message])
    db.session.commit()
    count = len(record.changes)
    return navigate(url_for(".publish"), f"Published {count} change{'s' if count != 1 else ''}. "
                                         f"This is version {record.number}.")


def _request_publish(form, items: list[str], expected: dict[str, str]):
    """Confirm with Publish approvals on: a pending request, refused like a Publish when a draft changed since."""
    pending = {p.key: p for p in services.pending_changes()}
    stale = [pending[i].name if i in pending else i for i in items
             if i not in pending or pending[i].version != expected.get(i)]
    errors = []
    if stale:
        errors.append(f"Changed since you reviewed it: {', '.join(stale)}. Review the changes again.")
    else:
        changes = [{"kind": pending[i].kind, "id": pending[i].id, "name": pending[i].name,
                    "summary": pending[i].summary} for i in items]
        try:
            approvals.request_publish(current_user.id, form.comment.data, items, expected, changes)
        except approvals.ApprovalError as exc:
            errors.append(exc.message)
        except (services.NothingToPublish, ValueError):
            errors.append("Select at least one change to publish.")
    if errors:
        db.session.rollback()
        return _publish_dialog("select", status=422, form=form, selected=set(items), errors=errors)
    db.session.commit()
    return navigate(url_for(".publish"), "Publish requested: it goes live when another admin approves it.")


@bp.route("/settings", methods=["POST"])
def publish_settings():
    """"Publish approvals" on or off."""
    form = forms.ApprovalSettingsForm()
    if not form.validate_on_submit():
        abort(400)
    approvals.set_approvals_required(form.approvals_required.data, current_user.id)
    db.session.commit()
    return navigate(url_for(".publish"), "Publish approvals are on: another admin approves each Publish."
                    if form.approvals_required.data else "Publish approvals are off: Publish goes live at once.")


@bp.route("/requests/<int:request_id>/approve", methods=["POST"])
def approve_request(request_id: int):
    if not forms.ActionForm().validate_on_submit():
        abort(400)
    try:
        record = approvals.approve(request_id, current_user.id)
    except (approvals.ApprovalError, services.PublishError) as exc:
        db.session.rollback()
        return _publish_page(status=422, approval_errors=[exc.message])
    db.session.commit()
    return navigate(url_for(".publish"), f"Approved: published as version {record.number}.")


@bp.route("/requests/<int:request_id>/decline", methods=["POST"])
def decline_request(request_id: int):
    form = forms.DeclineForm()
    if not form.validate_on_submit():
        return _publish_page(status=422, decline_form=form)
    try:
        approvals.decline(request_id, current_user.id, form.reason.data)
    except approvals.ApprovalError as exc:
        db.session.rollback()
        return _publish_page(status=422, approval_errors=[exc.message])
    db.session.commit()
    return navigate(url_for(".publish"), "Publish request declined.")


@bp.route("/requests/<int:request_id>/withdraw", methods=["POST"])
def withdraw_request(request_id: int):
    if not forms.ActionForm().validate_on_submit():
        abort(400)
    try:
        approvals.withdraw(request_id, current_user.id)
    except approvals.ApprovalError as exc:
        db.session.rollback()
        return _publish_page(status=422, approval_errors=[exc.message])
    db.session.commit()
    return navigate(url_for(".publish"), "Publish request withdrawn.")


def _version_or_404(number: int):
    record = versions.get_version(number)
    if record is None:
        abort(404)
    return record


@bp.route("/versions/<int:number>")
def version(number: int):
    record = _version_or_404(number)
    return render("publish/version.html", record=record, latest=versions.latest_number(),
                  sections=versions.sections(record.snapshot) if record.snapshot else None)


@bp.route("/versions/<int:number>/compare")
def compare_version(number: int):
    record = _version_or_404(number)
    compared = versions.compare(record.snapshot, versions.current_snapshot()) if record.snapshot else None
    return render("publish/compare.html", record=record, sections=compared,
                  changed_only=request.args.get("all") != "1")


@bp.route("/versions/<int:number>/restore", methods=["GET", "POST"])
def restore_version(number: int):
    """"Restore as draft": the drafts become this version; nothing goes live until Publish."""
    record = _version_or_404(number)
    form = forms.ActionForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        try:
            result = restore.restore_as_draft(number)
        except restore.RestoreError as exc:
            db.session.rollback()
            return navigate(url_for(".version", number=number), str(exc),
                            "error")
        db.session.commit()
        message = (f"Version {number} restored as draft: {len(result.restored)} draft"
                   f"{'s' if len(result.restored) != 1 else ''} changed. Review them and Publish when ready.")
        for note in result.skipped:
            flash(note, "warning")
        return navigate(url_for(".publish"), message)
    in_version = {f"address:{k}" for k in (record.snapshot or {}).get("addresses", {})} | \
        {f"flow:{k}" for k in (record.snapshot or {}).get("flows", {})}
    overwritten = [p.name for p in services.pending_changes() if p.key in in_version and p.state != "Never published"]
    return render("publish/restore.html", record=record, form=form, overwritten=overwritten)


@bp.route("/history")
def publish_history():
    """History: every version with its number, who, when, Comments and what changed."""
    page = max(1, request.args.get("page", 1, type=int))
    per_page = 50
    records = services.publish_history(limit=per_page + 1, offset=(page - 1) * per_page)
    return render("publish/history.html", block="history", records=records[:per_page], page=page,
                  more=len(records) > per_page)


