"""`/healthz` (public JSON), the Ops page (admins), and the development Outbox (`/ops/outbox`)."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, jsonify, make_response, request
from flask_login import login_required

from app.models.auth import Role
from app.ops import services
from app.security import role_required
from app.web import render

bp = Blueprint("ops", __name__)


@bp.route("/healthz")
def healthz():
    report = services.health()
    response = jsonify(report)
    response.status_code = 200 if report["ok"] else 503
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/ops/")
@login_required
@role_required(Role.ADMIN)
def index():
    return render("ops/index.html", block="status", report=services.health())


# --- Inbound mail (issue 4) ------------------------------------------------------------------------

@bp.route("/ops/inbound/")
@login_required
@role_required(Role.ADMIN)
def inbound():
    return render("ops/inbound.html", block="inbound", mailboxes=services.mailbox_statuses(),
                  problems=services.inbound_problems())


@bp.route("/ops/inbound/<int:raw_id>/raw")
@login_required
@role_required(Role.ADMIN)
def inbound_raw(raw_id: int):
    """The raw message as received, as a download (never rendered)."""
    from flask import abort, send_file
    import io

    from app.blobs import BlobNotFound, blob_store
    from app.extensions import db
    from app.models.inbound import InboundRaw

    row = db.session.get(InboundRaw, raw_id) or abort(404)
    try:
        data = blob_store().get(row.raw_sha256)
    except BlobNotFound:
        abort(404)
    response = send_file(io.BytesIO(data), mimetype="application/octet-stream", as_attachment=True,
                         download_name=f"inbound-{row.id}.eml")
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.route("/ops/inbound/<int:raw_id>/retry", methods=["POST"])
@login_required
@role_required(Role.ADMIN)
def inbound_retry(raw_id: int):
    from flask import abort, flash, redirect, url_for

    from app.extensions import db
    from app.runtime.poll import enqueue_once
    from app.web import is_htmx

    try:
        services.retry_inbound(raw_id)
    except LookupError:
        abort(404)
    except services.NotRetryable as exc:
        return render("ops/inbound.html", block="inbound", status=422, mailboxes=services.mailbox_statuses(),
                      problems=services.inbound_problems(), error=str(exc), error_id=raw_id)
    db.session.commit()
    enqueue_once("ingest", "jobs.ingest.ingest_raw", raw_id, job_id=f"ingest-raw-{raw_id}")
    flash("Queued for another try.", "success")
    if is_htmx():
        return render("ops/inbound.html", block="inbound", mailboxes=services.mailbox_statuses(),
                      problems=services.inbound_problems())
    return redirect(url_for("ops.inbound"))
# --- Outbox (outbound): development only, the SMTP sink's messages ------------------------------

def _outbox_dir() -> str:
    """The sink's folder; the Outbox pages do not exist (404) unless OUTBOX_DIR is configured."""
    directory = current_app.config.get("OUTBOX_DIR")
    if not directory:
        abort(404)
    return directory


def _from_outbox(reader: str, *args):
    """Call `app.mail.sink.<reader>(OUTBOX_DIR, *args)`; an unknown message or part is a 404."""
    from app.mail import sink

    try:
        return getattr(sink, reader)(_outbox_dir(), *args)
    except FileNotFoundError:
        abort(404)


@bp.route("/ops/outbox/")
@login_required
@role_required(Role.ADMIN)
def outbox():
    from app.ops.forms import OutboxFilterForm

    form = OutboxFilterForm(request.args)
    if not form.validate():
        _outbox_dir()
        return render("ops/outbox.html", block="outbox", form=form, entries=[], status=422)
    return render("ops/outbox.html", block="outbox", form=form, entries=_from_outbox("list_outbox", form.q.data or ""))


@bp.route("/ops/outbox/<name>")
@login_required
@role_required(Role.ADMIN)
def outbox_message(name: str):
    return render("ops/outbox_message.html", message=_from_outbox("read_outbox", name))


@bp.route("/ops/outbox/<name>/body.html")
@login_required
@role_required(Role.ADMIN)
def outbox_html(name: str):
    """The HTML part, sanitised, for a sandboxed frame on the message page (never scripts, no remote images)."""
    from app.mail.html import sanitize_html

    body = sanitize_html(_from_outbox("read_outbox", name).html or "", remote_images=False)
    response = make_response(f'<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>{body}</body></html>')
    response.headers["Content-Type"] = "text/html; charset=utf-8"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'self'")
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


@bp.route("/ops/outbox/<name>/raw")
@login_required
@role_required(Role.ADMIN)
def outbox_raw(name: str):
    return _download(_from_outbox("read_raw", name), f"{name}.eml", "message/rfc822")


@bp.route("/ops/outbox/<name>/parts/<int:index>")
@login_required
@role_required(Role.ADMIN)
def outbox_part(name: str, index: int):
    filename, content_type, data = _from_outbox("read_part", name, index)
    return _download(data, filename, content_type)


def _download(data: bytes, filename: str, content_type: str):
    import io

    from flask import send_file

    response = send_file(io.BytesIO(data), mimetype=content_type, as_attachment=True, download_name=filename,
                         max_age=0)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    return response
