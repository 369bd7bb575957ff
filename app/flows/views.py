"""The pages of the Flows area (blueprint "flows"): the list of flows and the dialog that attaches
a flow to addresses, the flow editor (rules, publish), intents, queues and routing, the Email
Blocklist of an address, and a conversation's flow run log.

Every page is for admins (`restrict_blueprint`), but the run log, which agents see for
their own conversations and queues. Changes go through the modules of `app.flows`
named after what they change; the views commit. HTMX requests get fragments (named
blocks), invalid forms come back with status 422.
"""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, request, url_for
from flask_login import current_user
from sqlalchemy import select

from app.extensions import db
from app.flows import (blocklist, editing, engine, forms, intent_examples, intents, publishing, queues, routing, runner,
                       sla_policies)
from app.models.auth import Queue, Role, User, queue_members
from app.models.channels import EmailAddress, Usage
from app.models.flows import Intent
from app.models.inbox import Conversation
from app.models.organize import PRIORITIES
from app.models.publish import publish_approvals_required
from app.models.responses import StandardResponse
from app.security import restrict_blueprint
from app.web import is_htmx, navigate, render

bp = Blueprint("flows", __name__)
restrict_blueprint(bp, Role.ADMIN, public=("flows.run_log",))


# --- the list of flows and the addresses they serve --------------------------------------------

def _flow_or_404(flow_id: int):
    try:
        return editing.get_flow(flow_id)
    except editing.FlowNotFound:
        abort(404)


@bp.route("/flows/")
def index():
    flows = editing.all_flows()
    return render("flows/index.html", block="flows", flows=flows,
                  served_by={f.id: editing.served_addresses(f) for f in flows},
                  states={f.id: f.publish_state for f in flows})


@bp.route("/flows/<int:flow_id>/update", methods=["GET", "POST"])
def update(flow_id: int):
    """Select which email addresses the flow serves; moving one from another flow must be ticked."""
    flow = _flow_or_404(flow_id)
    form = forms.FlowAddressesForm()
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
                if not (attached or detached):
                    return navigate(url_for(".index"), f"Nothing changed for {flow.name}.", "info")
                parts = []
                if attached:
                    parts.append(f"now serves {', '.join(attached)}")
                if detached:
                    parts.append(f"no longer serves {', '.join(detached)}")
                return navigate(url_for(".index"), f"{flow.name} {' and '.join(parts)}. Publish to make it live.")
        else:
            error = "The form expired. Open the dialog again."
    else:
        selected = {a.id for a in addresses if a.flow_id == flow.id}
    any_elsewhere = any(a.flow_id not in (None, flow.id) for a in addresses)
    return render("flows/update.html", block="dialog", status=422 if error else 200, flow=flow, form=form,
                  addresses=addresses, selected=selected, error=error, conflicts=conflicts,
                  any_elsewhere=any_elsewhere, modal=is_htmx())


# --- flows and rules ----------------------------------------------------------------------------

def _choices() -> dict:
    queue_rows = queues.all_queues()
    agents = list(db.session.scalars(select(User).where(User.active.is_(True)).order_by(User.name)))
    responses = list(db.session.scalars(select(StandardResponse).order_by(StandardResponse.title)))
    return {"intents": [i.name for i in intents.all_intents()],
            "queues": [(q.id, q.name) for q in queue_rows],
            "agents": [(u.id, u.name or u.email) for u in agents],
            "responses": [(r.id, r.title) for r in responses]}


def _rule_form(rule: dict | None = None) -> forms.RuleForm:
    form = forms.RuleForm()
    form.set_choices(**_choices())
    if rule is not None and request.method == "GET":
        forms.form_from_rule(form, rule)
    return form


def _describe(rule: dict, names: dict) -> tuple[list[str], list[str]]:
    """Human sentences for a rule's conditions and actions."""
    conds = []
    for c in rule.get("conditions") or []:
        kind = c["type"]
        if kind == "sender":
            conds.append("sender is " + " or ".join(c["values"]))
        elif kind == "recipient":
            conds.append("recipient is " + " or ".join(c["values"]))
        elif kind in ("subject", "body"):
            conds.append(f"{kind} {'contains' if c['op'] == 'contains' else 'matches'} “{c['value']}”")
        elif kind == "has_attachments":
            conds.append("has attachments" if c["value"] else "has no attachments")
        elif kind == "intent":
            conf = f" (confidence ≥ {round(c.get('min_confidence', 0) * 100)}%)" if c.get("min_confidence") else ""
            conds.append(f"intent is {c['value']}{conf}")
        elif kind == "new_customer":
            conds.append("customer is new" if c["value"] else "customer is known")
        elif kind == "business_hours":
            q = names["queues"].get(c["queue_id"], "a deleted queue")
            conds.append(("within" if c["value"] else "outside") + f" {q}'s business hours")
        elif kind == "language":
            conds.append("language is " + " or ".join(c["values"]))
        elif kind == "sender_auth":
            conds.append("sender authentication " + engine.SENDER_AUTH.get(c["value"], c["value"]))
    acts = []
    for a in rule.get("actions") or []:
        kind = a["type"]
        if kind == "set_queue":
            acts.append(f"set queue {names['queues'].get(a['queue_id'], 'a deleted queue')}")
        elif kind == "set_priority":
            acts.append(f"set priority {engine.PRIORITIES.get(a['priority'], a['priority'])}")
        elif kind == "add_tags":
            acts.append("add tags " + ", ".join(a["tags"]))
        elif kind == "assign":
            if a["mode"] == "agent":
                acts.append(f"assign to {names['agents'].get(a['user_id'], 'a deleted agent')}")
            elif a["mode"] == "last_agent":
                acts.append("assign to the customer's last agent" +
                            (", else the least-loaded member" if a.get("fallback", True) else ""))
            else:
                acts.append("assign to the least-loaded member")
        elif kind == "auto_reply":
            acts.append(f"send “{names['responses'].get(a['response_id'], 'a deleted response')}” automatically")
        elif kind == "set_status":
            acts.append(f"set status {a['status']}")
        elif kind == "stop":
            acts.append("stop")
    return conds, acts


def _editor_context(flow, form=None, open_rule: str | None = None) -> dict:
    """The editor's rules in words; `open_rule` is the rule whose form is open ("new" for a new one)."""
    choices = _choices()
    names = {"queues": dict(choices["queues"]), "agents": dict(choices["agents"]),
             "responses": dict(choices["responses"])}
    rules = [{**r, "conds": _describe(r, names)[0], "acts": _describe(r, names)[1]} for r in flow.rules or []]
    return {"flow": flow, "rules": rules, "form": form, "editing": open_rule,
            "ordinary_count": sum(1 for r in rules if not r.get("always"))}


@bp.route("/flows/new", methods=["GET", "POST"])
def new_flow():
    form = forms.FlowForm()
    if form.validate_on_submit():
        try:
            flow = editing.create_flow(form.name.data, form.description.data)
        except ValueError as exc:
            form.name.errors.append(str(exc))
        else:
            db.session.commit()
            return navigate(url_for(".edit_flow", flow_id=flow.id),
                            f"Flow “{flow.name}” created. Add its rules, then publish it.")
    status = 422 if request.method == "POST" else 200
    return render("flows/new.html", block="flow_form", form=form, status=status)


@bp.route("/flows/<int:flow_id>/edit")
def edit_flow(flow_id: int):
    flow = _flow_or_404(flow_id)
    return render("flows/edit.html", block="editor", **_editor_context(flow))


@bp.route("/flows/<int:flow_id>/rules/new", methods=["GET", "POST"])
def new_rule(flow_id: int):
    flow = _flow_or_404(flow_id)
    form = _rule_form()
    if request.method == "POST" and form.validate_on_submit():
        try:
            rule = editing.add_rule(flow.id, forms.rule_from_form(form))
        except engine.RuleError as exc:
            _field_errors(form, exc)
        else:
            db.session.commit()
            flash(f"Rule “{rule['name']}” added to the draft.", "success")
            return _editor_fragment(flow)
    status = 422 if request.method == "POST" else 200
    return render("flows/edit.html", block="rule_form", status=status, **_editor_context(flow, form, "new"))


@bp.route("/flows/<int:flow_id>/rules/<rule_id>", methods=["GET", "POST"])
def edit_rule(flow_id: int, rule_id: str):
    flow = _flow_or_404(flow_id)
    try:
        rule = editing.find_rule(flow, rule_id)
    except editing.FlowNotFound:
        abort(404)
    form = _rule_form(rule)
    if request.method == "POST" and form.validate_on_submit():
        try:
            rule = editing.update_rule(flow.id, rule_id, forms.rule_from_form(form))
        except engine.RuleError as exc:
            _field_errors(form, exc)
        else:
            db.session.commit()
            flash(f"Rule “{rule['name']}” saved to the draft.", "success")
            return _editor_fragment(flow)
    status = 422 if request.method == "POST" else 200
    return render("flows/edit.html", block="rule_form", status=status, **_editor_context(flow, form, rule_id))


@bp.route("/flows/<int:flow_id>/rules/<rule_id>/move", methods=["POST"])
def move_rule(flow_id: int, rule_id: str):
    flow = _flow_or_404(flow_id)
    offset = -1 if request.form.get("direction") == "up" else 1
    try:
        editing.move_rule(flow.id, rule_id, offset)
    except editing.FlowNotFound:
        abort(404)
    db.session.commit()
    return _editor_fragment(flow)


@bp.route("/flows/<int:flow_id>/rules/<rule_id>/delete", methods=["POST"])
def delete_rule(flow_id: int, rule_id: str):
    flow = _flow_or_404(flow_id)
    try:
        editing.delete_rule(flow.id, rule_id)
    except editing.FlowNotFound:
        abort(404)
    db.session.commit()
    flash("Rule deleted from the draft.", "success")
    return _editor_fragment(flow)


def _editor_fragment(flow):
    """After a change: the whole editor block (HTMX) or the editor page (plain form post)."""
    if not is_htmx():
        return redirect(url_for(".edit_flow", flow_id=flow.id))
    response = render("flows/edit.html", block="editor", **_editor_context(flow))
    response.headers["HX-Retarget"] = "#editor"
    response.headers["HX-Reswap"] = "outerHTML"
    return response


def _field_errors(form, exc: engine.RuleError) -> None:
    for key, message in exc.errors.items():
        getattr(form, form.ERROR_FIELDS.get(key, "name")).errors.append(message)


@bp.route("/flows/<int:flow_id>/publish", methods=["GET", "POST"])
def publish_flow(flow_id: int):
    flow = _flow_or_404(flow_id)
    if publish_approvals_required():  # a second admin approves it on the channels' Publish page
        return navigate(url_for("publish.publish"), "Publish approvals are on: publish this flow from the Publish "
                        "page, where another admin approves it.", "error")
    form = forms.PublishForm()
    if form.validate_on_submit():
        changes = publishing.publish_flows([flow.id], current_user.id, form.comment.data)
        db.session.commit()
        return navigate(url_for(".edit_flow", flow_id=flow.id),
                        "Published: " + "; ".join(f"{c['name']}: {c['summary']}" for c in changes))
    status = 422 if request.method == "POST" else 200
    return render("flows/publish.html", block="dialog", flow=flow, form=form, status=status,
                  intents_changed=intents.has_unpublished_changes())


@bp.route("/flows/<int:flow_id>/delete", methods=["POST"])
def delete_flow(flow_id: int):
    flow = _flow_or_404(flow_id)
    try:
        editing.delete_flow(flow.id)
    except editing.FlowInUse as exc:
        return navigate(url_for(".edit_flow", flow_id=flow.id), str(exc), "error")
    db.session.commit()
    return navigate(url_for(".index"), f"Flow “{flow.name}” deleted.")


# --- intents ------------------------------------------------------------------------------------

def _intents_page(form, shown=None, status=200, block="intents"):
    model = intents.live_model()
    return render("flows/intents.html", block=block, status=status, form=form, editing=shown,
                  intents=intents.all_intents(), model=model, unpublished=intents.has_unpublished_changes(),
                  threshold=float(current_app.config.get("INTENT_MIN_CONFIDENCE", 0.5)))


@bp.route("/flows/intents/", methods=["GET", "POST"])
@bp.route("/flows/intents/<int:intent_id>", methods=["GET", "POST"])
def intents_page(intent_id: int | None = None):
    shown = db.session.get(Intent, intent_id) if intent_id else None
    if intent_id and shown is None:
        abort(404)
    form = forms.IntentForm()
    if request.method == "GET" and shown is not None:
        form.name.data, form.description.data = shown.name, shown.description
        form.examples.data = "\n".join(shown.examples)
    if form.validate_on_submit():
        try:
            intent = intent_examples.save_intent(intent_id, form.name.data, form.description.data, form.examples.data)
        except ValueError as exc:
            field = form.name if "name" in str(exc) or "intent" in str(exc).lower() else form.examples
            field.errors.append(str(exc))
        else:
            db.session.commit()
            return navigate(url_for(".intents_page"),
                            f"Intent “{intent.name}” saved. Publish a flow to train the classifier with it.")
    if request.method == "POST":
        return _intents_page(form, shown, status=422, block="intent_form")
    return _intents_page(form, shown, block="intents" if not shown else "intent_form")


@bp.route("/flows/intents/<int:intent_id>/delete", methods=["POST"])
def delete_intent(intent_id: int):
    try:
        intent_examples.delete_intent(intent_id)
    except LookupError:
        abort(404)
    db.session.commit()
    return navigate(url_for(".intents_page"), "Intent deleted. Publish a flow to retrain the classifier without it.")


# --- queues -------------------------------------------------------------------------------------

@bp.route("/flows/queues/")
def queues_page():
    return _queues_page(forms.DefaultQueueForm(formdata=None))


def _queues_page(default_form: forms.DefaultQueueForm, status: int = 200):
    queue_rows = queues.all_queues()
    loads = routing.agent_loads()
    default_form.queue.choices = [(q.id, q.name) for q in queue_rows]
    if default_form.queue.data is None:
        chosen = next((q for q in queue_rows if q.is_default), queue_rows[0] if queue_rows else None)
        default_form.queue.data = chosen.id if chosen else None
    return render("flows/queues.html", block="queues", status=status, queues=queue_rows, loads=loads,
                  calendars={q.id: routing.Calendar.of(q) for q in queue_rows}, default_form=default_form)


@bp.route("/flows/queues/default", methods=["POST"])
def default_queue_page():
    """"Save" of the Default queue setting on the Queues page."""
    form = forms.DefaultQueueForm()
    if form.validate_on_submit():
        try:
            queue = queues.set_default_queue(form.queue.data)
        except LookupError:
            form.queue.errors.append("That queue no longer exists. Choose another one.")
        else:
            db.session.commit()
            return navigate(url_for(".queues_page"), f"Mail that no flow routes now goes to “{queue.name}”.")
    return _queues_page(form, status=422)


def _queue_form(queue=None) -> forms.QueueForm:
    form = forms.QueueForm()
    users = list(db.session.scalars(select(User).where(User.active.is_(True)).order_by(User.name)))
    form.members.choices = forms.options((u.id, u.name or u.email) for u in users)
    outbound = list(db.session.scalars(select(EmailAddress).where(
        EmailAddress.archived_at.is_(None), EmailAddress.usage != Usage.INBOUND.value).order_by(EmailAddress.address)))
    form.outbound_addresses.choices = forms.options((a.id, a.address) for a in outbound)
    if request.method == "GET":
        if queue is not None:
            form.name.data, form.description.data = queue.name, queue.description
            form.members.data = [m.id for m in queue.members]
            form.time_zone.data = queue.time_zone
            form.hours.data, form.holidays.data = routing.format_hours(queue.business_hours)
            form.ack_enabled.data, form.ack_subject.data = queue.ack_enabled, queue.ack_subject
            form.ack_body_html.data, form.ack_interval_minutes.data = queue.ack_body_html, queue.ack_interval_minutes
            form.outbound_addresses.data = list(queue.outbound_address_ids or [])
        else:
            form.members.data, form.outbound_addresses.data = [], []
    form.users = users  # for the members table (assigned now / email capacity)
    return form


@bp.route("/flows/queues/new", methods=["GET", "POST"])
@bp.route("/flows/queues/<int:queue_id>", methods=["GET", "POST"])
def queue_page(queue_id: int | None = None):
    queue = db.session.get(Queue, queue_id) if queue_id else None
    if queue_id and queue is None:
        abort(404)
    form = _queue_form(queue)
    if form.validate_on_submit():
        try:
            saved = queues.save_queue(
                queue_id, name=form.name.data, description=form.description.data,
                member_ids=form.members.data or [], time_zone=form.time_zone.data, hours_text=form.hours.data,
                holidays_text=form.holidays.data, ack_enabled=form.ack_enabled.data,
                ack_subject=form.ack_subject.data, ack_body_html=form.ack_body_html.data,
                ack_interval_minutes=form.ack_interval_minutes.data,
                outbound_address_ids=form.outbound_addresses.data or [])
        except ValueError as exc:
            field = exc.args[1] if len(exc.args) > 1 else "name"
            target = {"hours": form.hours}.get(field) or getattr(form, field, form.name)
            target.errors.append(exc.args[0])
            db.session.rollback()
        else:
            sla_policies.recompute_queue(saved.id)  # its hours, holidays or time zone may move due times
            db.session.commit()
            return navigate(url_for(".queues_page"), f"Queue “{saved.name}” saved.")
    status = 422 if request.method == "POST" else 200
    return render("flows/queue.html", block="queue_form", status=status, form=form, queue=queue,
                  loads=routing.agent_loads(),
                  zones=routing.time_zone_names())


# --- Service levels (SLA policies of a queue) ---------------------------------------------------

def _queue_or_404(queue_id: int) -> Queue:
    queue = db.session.get(Queue, queue_id)
    if queue is None:
        abort(404)
    return queue


@bp.route("/flows/queues/<int:queue_id>/service-levels", methods=["GET", "POST"])
def service_levels_page(queue_id: int):
    queue = _queue_or_404(queue_id)
    form = forms.SlaPolicyForm()
    if form.validate_on_submit():
        try:
            policy = sla_policies.add_policy(
                queue.id, name=form.name.data, priority=int(form.priority.data) if form.priority.data else None,
                tag=form.tag.data, first_response_minutes=form.first_response_minutes.data,
                next_response_minutes=form.next_response_minutes.data,
                resolution_minutes=form.resolution_minutes.data, warning_minutes=form.warning_minutes.data)
        except sla_policies.PolicyError as exc:
            db.session.rollback()
            getattr(form, exc.args[1]).errors.append(exc.args[0])
        else:
            db.session.commit()
            return navigate(url_for(".service_levels_page", queue_id=queue.id), f"Policy “{policy.name}” saved.")
    status = 422 if request.method == "POST" else 200
    return render("flows/service_levels.html", block="sla_form",
                  status=status, queue=queue, form=form, policies=sla_policies.policies_of(queue.id),
                  calendar=routing.format_hours(queue.business_hours), priorities=PRIORITIES)


@bp.route("/flows/queues/<int:queue_id>/service-levels/<int:policy_id>/delete", methods=["POST"])
def delete_service_level(queue_id: int, policy_id: int):
    queue = _queue_or_404(queue_id)
    policy = sla_policies.delete_policy(queue.id, policy_id)
    if policy is None:
        abort(404)
    db.session.commit()
    return navigate(url_for(".service_levels_page", queue_id=queue.id), f"Policy “{policy.name}” deleted.")


# --- Email Blocklist ----------------------------------------------------------------------------

def _address_or_404(address_id: int) -> EmailAddress:
    address = db.session.get(EmailAddress, address_id)
    if address is None:
        abort(404)
    return address


def _blocklist_page(address, form=None, upload=None, summary=None, status=200, block="blocklist"):
    return render("flows/blocklist.html", block=block, status=status, address=address,
                  entries=blocklist.entries(address.id), form=form or forms.BlockForm(),
                  upload=upload or forms.BlocklistUploadForm(), summary=summary)


@bp.route("/channels/email/<int:address_id>/blocklist", methods=["GET", "POST"], endpoint="blocklist")
def blocklist_page(address_id: int):
    address = _address_or_404(address_id)
    form = forms.BlockForm()
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                entry = blocklist.add_block(address.id, form.value.data, current_user.id)
            except ValueError as exc:
                form.value.errors.append(str(exc))
            else:
                db.session.commit()
                flash(f"{entry.value} added to the Email Blocklist.", "success")
                form = forms.BlockForm(formdata=None)
                return _blocklist_page(address, form=form)
        return _blocklist_page(address, form=form, status=422, block="add_form")
    return _blocklist_page(address)


@bp.route("/channels/email/<int:address_id>/blocklist/upload", methods=["POST"])
def blocklist_upload(address_id: int):
    address = _address_or_404(address_id)
    upload = forms.BlocklistUploadForm()
    if upload.validate_on_submit():
        try:
            summary = blocklist.import_blocklist_csv(address.id, upload.file.data.read(), current_user.id)
        except ValueError as exc:
            upload.file.errors.append(str(exc))
        else:
            db.session.commit()
            return _blocklist_page(address, summary=summary)
    return _blocklist_page(address, upload=upload, status=422, block="upload_form")


@bp.route("/channels/email/<int:address_id>/blocklist/<int:entry_id>/delete", methods=["POST"])
def blocklist_delete(address_id: int, entry_id: int):
    address = _address_or_404(address_id)
    try:
        blocklist.remove_block(address.id, entry_id)
    except LookupError:
        abort(404)
    db.session.commit()
    flash("Removed from the Email Blocklist.", "success")
    return _blocklist_page(address)


# --- run log ------------------------------------------------------------------------------------

@bp.route("/flows/conversations/<int:conversation_id>/runs")
def run_log(conversation_id: int):
    """The conversation's routing and flow run log (the arrival summary); agents see their own queues'.

    Not admins only (`restrict_blueprint` lets it through): any signed-in user may ask, and
    sees it for a conversation assigned to them or in one of their queues.
    """
    conversation = db.session.get(Conversation, conversation_id)
    if conversation is None:
        abort(404)
    if not current_user.has_role(Role.SUPERVISOR) and conversation.assignee_id != current_user.id:
        member = db.session.scalar(select(queue_members.c.user_id).where(
            queue_members.c.user_id == current_user.id, queue_members.c.queue_id == conversation.queue_id))
        if member is None:
            abort(404)
    return render("flows/runs.html", block="runs", conversation=conversation,
                  runs=runner.runs_of(conversation.id))
