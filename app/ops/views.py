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


# --- Outbox (outbound, issue 5): development only, the SMTP sink's messages ---------------------

def _outbox_dir() -> str:
    """The sink's folder; the Outbox pages do not exist (404) unless OUTBOX_DIR is configured."""
    directory = current_app.config.get("OUTBOX_DIR")
    if not directory:
        abort(404)
    return directory


@bp.route("/ops/outbox/")
@login_required
@role_required(Role.ADMIN)
def outbox():
    from app.mail.sink import list_outbox
    from app.ops.forms import OutboxFilterForm

    directory = _outbox_dir()
    form = OutboxFilterForm(request.args)
    if not form.validate():
        return render("ops/outbox.html", block="outbox", form=form, entries=[], directory=directory, status=422)
    entries = list_outbox(directory, form.q.data or "")
    return render("ops/outbox.html", block="outbox", form=form, entries=entries, directory=directory)


@bp.route("/ops/outbox/<name>")
@login_required
@role_required(Role.ADMIN)
def outbox_message(name: str):
    from app.mail.sink import read_outbox

    try:
        message = read_outbox(_outbox_dir(), name)
    except FileNotFoundError:
        abort(404)
    return render("ops/outbox_message.html", message=message)


@bp.route("/ops/outbox/<name>/body.html")
@login_required
@role_required(Role.ADMIN)
def outbox_html(name: str):
    """The HTML part, sanitised, for a sandboxed frame on the message page (never scripts, no remote images)."""
    from app.mail.html import sanitize_html
    from app.mail.sink import read_outbox

    try:
        message = read_outbox(_outbox_dir(), name)
    except FileNotFoundError:
        abort(404)
    body = sanitize_html(message.html or "", remote_images=False)
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
    from app.mail.sink import read_raw

    try:
        data = read_raw(_outbox_dir(), name)
    except FileNotFoundError:
        abort(404)
    return _download(data, f"{name}.eml", "message/rfc822")


@bp.route("/ops/outbox/<name>/parts/<int:index>")
@login_required
@role_required(Role.ADMIN)
def outbox_part(name: str, index: int):
    from app.mail.sink import read_part

    try:
        filename, content_type, data = read_part(_outbox_dir(), name, index)
    except FileNotFoundError:
        abort(404)
    return _download(data, filename, content_type)


def _download(data: bytes, filename: str, content_type: str):
    import io

    from flask import send_file

    response = send_file(io.BytesIO(data), mimetype=content_type, as_attachment=True, download_name=filename,
                         max_age=0)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    return response
