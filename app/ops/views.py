"""`/healthz` (public JSON) and the Ops page (admins)."""
from __future__ import annotations

from flask import Blueprint, jsonify
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
    from app.mail.poll import enqueue_once
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
