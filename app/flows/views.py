from __future__ import annotations

from flask import Blueprint
from flask_login import login_required

from app.flows import services
from app.models.auth import Role
from app.security import role_required
from app.web import render

bp = Blueprint("flows", __name__, url_prefix="/flows")


@bp.before_request
@login_required
@role_required(Role.ADMIN)
def _admins_only():
    return None


@bp.route("/")
def index():
    return render("flows/index.html", flows=services.all_flows())
