"""Sign-in, sign-out and the profile page (change password, sign out everywhere)."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, request, url_for
from flask_login import current_user, login_required, login_user, logout_user

from app.auth import services, sessions
from app.auth.forms import ChangePasswordForm, LoginForm
from app.extensions import db
from app.web import navigate, render, site_path

bp = Blueprint("auth", __name__)

BUSY = "Many people are signing in right now. Try again in a few seconds."


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("inbox.index"))
    form = LoginForm()
    error, status, headers = None, 422 if request.method == "POST" else 200, {}
    if form.validate_on_submit():
        try:
            done = services.authenticate(form.email.data, form.password.data, request.remote_addr)
        except services.LoginThrottled as exc:
            unit = "minute" if exc.retry_after > 90 else "second"
            wait = exc.minutes if unit == "minute" else exc.retry_after
            error = f"Too many failed sign-in attempts. Try again in {_plural(wait, unit)}."
            headers["Retry-After"] = str(exc.retry_after)
        except services.HashingBusy as exc:
            error, status = BUSY, 429
            headers["Retry-After"] = str(exc.retry_after)
        except services.AuthError:
            error = "Wrong email or password."
        else:
            key, remember = sessions.start_session(done.user, remember=form.remember.data,
                                                   client_address=request.remote_addr,
                                                   user_agent=request.user_agent.string)
            db.session.commit()
            login_user(done.user)
            sessions.sign_in_browser(key, remember)
            if done.failed_attempts:
                flash(f"{_plural(done.failed_attempts, 'failed sign-in attempt')} on your account since you last "
                      f"signed in, the last at {done.last_failed_at:%Y-%m-%d %H:%M} UTC. If that was not you, "
                      "change your password in your Profile.", "error")
            return navigate(site_path(request.args.get("next"), url_for("inbox.index")), status=302)
        db.session.commit()  # the account's failure count
    response = render("auth/login.html", block="login_form", form=form, error=error, status=status)
    response.headers.update(headers)
    return response


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    sessions.end_session(sessions.current_key())
    db.session.commit()
    _sign_out_here()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.login"))


def _sign_out_here() -> None:
    logout_user()
    sessions.sign_out_browser()


def _profile(form: ChangePasswordForm, status: int = 200, error: str | None = None):
    return render("auth/profile.html", block="password_form", form=form, error=error, status=status,
                  sessions=sessions.list_sessions(current_user.id), is_current=sessions.is_current)


@bp.route("/profile")
def profile():
    return _profile(ChangePasswordForm())


@bp.route("/profile/password", methods=["POST"])
def change_password():
    """Change one's password (the current one is asked); every other session ends."""
    form = ChangePasswordForm()
    if not form.validate_on_submit():
        return _profile(form, 422)
    try:
        ended = services.change_password(current_user, form.current_password.data, form.new_password.data,
                                         keep_session=sessions.current_key())
    except services.AuthError:
        form.current_password.errors.append("That is not your current password.")
        return _profile(form, 422)
    except ValueError as exc:
        form.new_password.errors.append(str(exc))
        return _profile(form, 422)
    except services.HashingBusy as exc:
        response = _profile(form, 429, BUSY)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    db.session.commit()
    others = f" {_plural(ended, 'other session')} ended." if ended else ""
    return navigate(url_for("auth.profile"), f"Password changed.{others}")


@bp.route("/profile/sign-out-everywhere", methods=["POST"])
def sign_out_everywhere():
    """End every session of the user, this one included, and every "Keep me signed in"."""
    sessions.end_sessions(current_user.id)
    db.session.commit()
    _sign_out_here()
    return navigate(url_for("auth.login"), "You are signed out everywhere.", "info")
