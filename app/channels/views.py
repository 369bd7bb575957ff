from __future__ import annotations

from flask import Blueprint, current_app
from flask_login import login_required

from app.channels import services
from app.models.auth import Role
from app.security import role_required
from app.web import render

bp = Blueprint("channels", __name__, url_prefix="/channels")


@bp.before_request
@login_required
@role_required(Role.ADMIN)
def _admins_only():
    return None


@bp.route("/email/")
def index():
    platform, custom = services.domains()
    return render("channels/index.html", platform=platform, custom=custom,
                  platform_name=current_app.config["PLATFORM_MAIL_DOMAIN"])


@bp.route("/publish/history")
def publish_history():
    return render("channels/publish_history.html", records=services.publish_history())
