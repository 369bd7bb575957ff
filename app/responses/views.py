from __future__ import annotations

from flask import Blueprint
from flask_login import login_required

from app.models.auth import Role
from app.responses import services
from app.security import role_required
from app.web import render

bp = Blueprint("responses", __name__, url_prefix="/responses")


@bp.before_request
@login_required
@role_required(Role.SUPERVISOR)
def _supervisors_only():
    return None


@bp.route("/")
def index():
    return render("responses/index.html", groups=services.all_groups())
