"""Flows > "Start Flows": the list of flows and the "Update" dialog that attaches a flow to addresses.

The flows issue adds rules; this page only decides which email addresses each flow
serves. That choice is part of each address's draft, so it goes live on Publish.
"""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_login import login_required

from app.extensions import db
from app.flows import editing
from app.flows.forms import FlowAddressesForm
from app.models.auth import Role
from app.security import role_required
from app.web import is_htmx, render

bp = Blueprint("flows", __name__, url_prefix="/flows")


@bp.before_request
@login_required
@role_required(Role.ADMIN)
def _admins_only():
    return None


@bp.route("/")
def index():
    flows = editing.all_flows()
    return render("flows/index.html", block="flows", flows=flows,
                  served_by={f.id: editing.served_addresses(f) for f in flows},
                  states={f.id: f.publish_state for f in flows})


@bp.route("/<int:flow_id>/update", methods=["GET", "POST"])
def update(flow_id: int):
    """Select which email addresses the flow serves; moving one from another flow must be ticked."""
    try:
        flow = editing.get_flow(flow_id)
    except editing.FlowNotFound:
        abort(404)
    form = FlowAddressesForm()
    addresses = editing.assignable_addresses()
    error, conflicts = None, []
    if request.method == "POST":
        raw = request.form.getlist("address")
        ids = [int(v) for v in raw if v.isdigit()]
        selected = set(ids)
        if len(ids) != len(raw):
            error = "Select addresses from the list."
        elif form.validate_on_submit():
            try:
                attached, detached = editing.set_flow_addresses(flow.id, ids, move=form.move.data)
            except editing.FlowError as exc:
                db.session.rollback()
                error, conflicts = exc.message, exc.conflicts
                flow = editing.get_flow(flow_id)
                addresses = editing.assignable_addresses()
            else:
                db.session.commit()
                if attached or detached:
                    parts = []
                    if attached:
                        parts.append(f"now serves {', '.join(attached)}")
                    if detached:
                        parts.append(f"no longer serves {', '.join(detached)}")
                    flash(f"{flow.name} {' and '.join(parts)}. Publish to make it live.", "success")
                else:
                    flash(f"Nothing changed for {flow.name}.", "info")
                target = url_for(".index")
                if is_htmx():
                    return "", 204, {"HX-Redirect": target}
                return redirect(target, 303)
        else:
            error = "The form expired. Open the dialog again."
    else:
        selected = {a.id for a in addresses if a.flow_id == flow.id}
    any_elsewhere = any(a.flow_id not in (None, flow.id) for a in addresses)
    return render("flows/update.html", block="dialog", status=422 if error else 200, flow=flow, form=form,
                  addresses=addresses, selected=selected, error=error, conflicts=conflicts,
                  any_elsewhere=any_elsewhere, modal=is_htmx())
