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
