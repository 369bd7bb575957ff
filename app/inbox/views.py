from __future__ import annotations

from flask import Blueprint, redirect, url_for
from flask_login import current_user, login_required

from app.inbox import services
from app.web import render

bp = Blueprint("inbox", __name__)


@bp.route("/")
def home():
    return redirect(url_for("inbox.index"))


@bp.route("/inbox/")
@login_required
def index():
    conversations = services.visible_conversations(current_user)
    return render("inbox/index.html", block="conversations", conversations=conversations)
