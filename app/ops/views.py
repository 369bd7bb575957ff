"""`/healthz` (public JSON), the Ops page (admins), Metrics (the `/metrics` figures as tables), Inbound mail with Poll now, Suppressions (addresses whose
mail bounced) with Clear, the admins' banner of failing mailboxes (on every page), and the development Outbox
(`/ops/outbox`)."""
from __future__ import annotations

import io

from flask import (Blueprint, abort, current_app, flash, jsonify, make_response, redirect, request, send_file,
                   url_for)
from flask_login import current_user
from redis.exceptions import RedisError

from app.blobs import BlobNotFound, blob_store
from app.extensions import db
from app.mail import sink
from app.mail.html import sanitize_html
from app.models.auth import Role
from app.models.inbound import InboundRaw
from app.ops import figures, jobs, services
from app.mail.bounce.status import status_meaning
from app.ops.forms import OutboxFilterForm, SuppressionFilterForm
from app.runtime import mailbox_alerts, oauth_alerts, suppression
from app.runtime.ingest import AddressNotReceiving
from app.runtime.poll import NotPollable, poll_now
from app.security import MAIL_FRAME_CSP, restrict_blueprint
from app.web import is_htmx, render

bp = Blueprint("ops", __name__)
restrict_blueprint(bp, Role.ADMIN, public=("ops.healthz",))

#: The Outbox's HTML part is framed by our own page only.
OUTBOX_FRAME_CSP = str(MAIL_FRAME_CSP.extend(frame_ancestors=("'self'",)))


@bp.app_context_processor
def _mailbox_alert_banner():
    """`failing_mailboxes()` and `sign_in_needed()` for the banner of every page (templates/_mailbox_alerts.html):
    admins only."""
    def admin() -> bool:
        return current_user.is_authenticated and current_user.has_role(Role.ADMIN)

    def failing_mailboxes():
        return mailbox_alerts.failing_mailboxes() if admin() else []

    def sign_in_needed():
        return oauth_alerts.sign_in_needed() if admin() else []

    return {"failing_mailboxes": failing_mailboxes, "sign_in_needed": sign_in_needed}


@bp.route("/healthz")
def healthz():
    report = services.health()
    response = jsonify(report)
    response.status_code = 200 if report["ok"] else 503
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/ops/")
def index():
    return render("ops/index.html", block="status", report=services.health())


# --- Inbound mail ----------------------------------------------------------------------------------

@bp.route("/ops/inbound/")
def inbound():
    return render("ops/inbound.html", block="inbound", mailboxes=services.mailbox_statuses(),
                  problems=services.inbound_problems())


@bp.route("/ops/inbound/<int:raw_id>/raw")
def inbound_raw(raw_id: int):
    """The raw message as received, as a download (never rendered)."""
    row = db.session.get(InboundRaw, raw_id) or abort(404)
    try:
        data = blob_store().get(row.raw_sha256)
    except BlobNotFound:
        abort(404)
    response = send_file(io.BytesIO(data), mimetype="application/octet-stream", as_attachment=True,
                         download_name=f"inbound-{row.id}.eml")
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.route("/ops/inbound/mailboxes/<int:address_id>/poll", methods=["POST"])
def inbound_poll_now(address_id: int):
    """The "Poll now" button of a mailbox row: poll it at once, whatever its error backoff says."""
    try:
        poll_now(address_id)
    except NotPollable as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        db.session.commit()
        flash("Polling now; the row updates in a moment.", "success")
    if is_htmx():
        return render("ops/inbound.html", block="inbound", mailboxes=services.mailbox_statuses(),
                      problems=services.inbound_problems())
    return redirect(url_for("ops.inbound"), 303)


NOT_RECEIVING = ("Its address does not receive mail now (unpublished, disabled or outbound-only): "
                 "publish it, then try again.")

#: What "Ingest again" says about each outcome (`InboundRaw.status`).
AGAIN_OUTCOME = {
    "created": "Ingested again: it opened conversation #{conversation_id}.",
    "threaded": "Ingested again: it joined conversation #{conversation_id}.",
    "duplicate": "Ingested again: it is a copy of a message stored already.",
    "bounce": "Ingested again: it is a delivery report; the outgoing message it names is marked.",
    "stored_with_error": "Still stored with an error: {error}",
}


@bp.route("/ops/inbound/<int:raw_id>/ingest", methods=["POST"])
def inbound_ingest_again(raw_id: int):
    """The "Ingest again" button (a form with its CSRF token): the stored raw bytes through ingest again."""
    try:
        result = services.ingest_again(raw_id)
    except (services.NotIngestable, AddressNotReceiving) as exc:  # (AddressNotReceiving is a LookupError too)
        reason = str(exc) if isinstance(exc, services.NotIngestable) else NOT_RECEIVING
        return render("ops/inbound.html", block="inbound", status=422, mailboxes=services.mailbox_statuses(),
                      problems=services.inbound_problems(), error=reason, error_id=raw_id)
    except LookupError:
        abort(404)
    failed = result.status == "stored_with_error"
    flash(AGAIN_OUTCOME[result.status].format(conversation_id=result.conversation_id, error=result.error),
          "error" if failed else "success")
    if is_htmx():
        return render("ops/inbound.html", block="inbound", mailboxes=services.mailbox_statuses(),
                      problems=services.inbound_problems())
    return redirect(url_for("ops.inbound"), 303)


# --- Jobs: queue figures, workers, failed jobs with Requeue ---------------------------------------

def _jobs_page(status: int = 200):
    try:
        figures, workers, failed, error = jobs.queue_figures(), jobs.workers(), jobs.failed_jobs(), None
    except RedisError as exc:
        figures, workers, failed, error = [], [], [], services._describe(exc)
    return render("ops/jobs.html", block="jobs", figures=figures, workers=workers, failed=failed,
                  redis_error=error, status=status)


@bp.route("/ops/jobs/")
def jobs_index():
    return _jobs_page()


@bp.route("/ops/jobs/requeue", methods=["POST"])
def jobs_requeue():
    """"Requeue" of one failed job, or of every failed job of a queue (no job id)."""
    queue, job_id = request.form.get("queue", ""), request.form.get("job_id", "")
    try:
        if job_id:
            jobs.requeue(queue, job_id)
            flash(f"Job {job_id} is back on the {queue} queue.", "success")
        else:
            count = jobs.requeue_all(queue)
            flash(f"{count} failed job{'s' if count != 1 else ''} of the {queue} queue went back on it.", "success")
    except LookupError:
        flash("That job is no longer among the failed jobs (requeued already, or expired).", "error")
    except RedisError as exc:
        flash(f"Redis did not answer: {services._describe(exc)}", "error")
    if is_htmx():
        return _jobs_page()
    return redirect(url_for("ops.jobs_index"), 303)


# --- Metrics: every family of a `/metrics` scrape, as tables ------------------------------------

@bp.route("/ops/metrics/")
def metrics_index():
    tables = figures.tables()
    down = [row.labels[0] for table in tables if table.name == "pigeonhole_up" for row in table.rows
            if not row.value]
    return render("ops/metrics.html", block="figures", tables=tables, down=down, number=figures.number)


# --- Suppressions ---------------------------------------------------------------------------------

def _suppressions(form: SuppressionFilterForm, status: int = 200):
    entries = suppression.search(form.q.data or "") if not form.q.errors else []
    return render("ops/suppressions.html", block="suppressions", form=form, entries=entries,
                  meaning=status_meaning, status=status)


@bp.route("/ops/suppressions/")
def suppressions():
    """Addresses on the suppression list, newest bounce first, with the reason; search by address or reason."""
    form = SuppressionFilterForm(request.args)
    return _suppressions(form, 200 if form.validate() else 422)


@bp.route("/ops/suppressions/<int:suppression_id>/clear", methods=["POST"])
def suppression_clear(suppression_id: int):
    """"Clear": mail to the address goes out without a warning again (the entry keeps its history)."""
    try:
        row = suppression.clear(suppression_id, current_user.id)
    except LookupError:
        abort(404)
    db.session.commit()
    flash(f"{row.email} is no longer suppressed: agents are not warned and automatic mail goes to it again.",
          "success")
    if is_htmx():
        form = SuppressionFilterForm(request.args)
        form.validate()
        return _suppressions(form)
    return redirect(url_for("ops.suppressions"), 303)


# --- Outbox: development only, the SMTP sink's messages ----------------------------------------

def _outbox_dir() -> str:
    """The sink's folder; the Outbox pages do not exist (404) unless OUTBOX_DIR is configured."""
    directory = current_app.config.get("OUTBOX_DIR")
    if not directory:
        abort(404)
    return directory


def _from_outbox(reader: str, *args):
    """Call `app.mail.sink.<reader>(OUTBOX_DIR, *args)`; an unknown message or part is a 404."""
    try:
        return getattr(sink, reader)(_outbox_dir(), *args)
    except FileNotFoundError:
        abort(404)


@bp.route("/ops/outbox/")
def outbox():
    form = OutboxFilterForm(request.args)
    if not form.validate():
        _outbox_dir()
        return render("ops/outbox.html", block="outbox", form=form, entries=[], status=422)
    return render("ops/outbox.html", block="outbox", form=form, entries=_from_outbox("list_outbox", form.q.data or ""))


@bp.route("/ops/outbox/<name>")
def outbox_message(name: str):
    return render("ops/outbox_message.html", message=_from_outbox("read_outbox", name))


@bp.route("/ops/outbox/<name>/body.html")
def outbox_html(name: str):
    """The HTML part, sanitised, for a sandboxed frame on the message page (never scripts, no remote images)."""
    body = sanitize_html(_from_outbox("read_outbox", name).html or "", remote_images=False)
    response = make_response(f'<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>{body}</body></html>')
    response.headers["Content-Type"] = "text/html; charset=utf-8"
    response.headers["Content-Security-Policy"] = OUTBOX_FRAME_CSP
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


@bp.route("/ops/outbox/<name>/raw")
def outbox_raw(name: str):
    return _download(_from_outbox("read_raw", name), f"{name}.eml", "message/rfc822")


@bp.route("/ops/outbox/<name>/parts/<int:index>")
def outbox_part(name: str, index: int):
    filename, content_type, data = _from_outbox("read_part", name, index)
    return _download(data, filename, content_type)


def _download(data: bytes, filename: str, content_type: str):
    response = send_file(io.BytesIO(data), mimetype=content_type, as_attachment=True, download_name=filename,
                         max_age=0)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    return response
