"""Sign-in and sign-out pages."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, request, url_for
from flask_login import current_user, login_required, login_user, logout_user

from app.auth import services
from app.auth.forms import LoginForm
from app.extensions import db
from app.web import navigate, render, site_path

bp = Blueprint("auth", __name__)


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("inbox.index"))
    form = LoginForm()
    error = None
    if form.validate_on_submit():
        try:
            user = services.authenticate(form.email.data, form.password.data, request.remote_addr)
        except services.LoginThrottled as exc:
            error = (f"Too many failed sign-in attempts. Try again in {exc.minutes} "
                     f"minute{'s' if exc.minutes != 1 else ''}.")
        except services.AuthError:
            error = "Wrong email or password."
        else:
            db.session.commit()
            login_user(user, remember=form.remember.data)
            return navigate(site_path(request.args.get("next"), url_for("inbox.index")), status=302)
        db.session.commit()  # keep the failure count
    status = 422 if request.method == "POST" else 200
    return render("auth/login.html", block="login_form", form=form, error=error, status=status)


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    logout_user()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.login"))
