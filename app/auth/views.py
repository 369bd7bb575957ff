"""Sign-in, sign-out, the one-time reset link's page, and the profile (name, signature, time zone or the browser's,
start page, change password, sign out everywhere)."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from wtforms.fields.choices import SelectChoice

from app.auth import accounts, password_rules, resets, services, sessions
from app.auth.forms import ChangePasswordForm, LoginForm, NewPasswordForm, ProfileForm
from app.extensions import db
from app.models.auth import User
from app.web import landing_url, navigate, render, site_path, time_zones

bp = Blueprint("auth", __name__)

BUSY = "Many people are signing in right now. Try again in a few seconds."


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(landing_url(current_user))
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
            return navigate(site_path(request.args.get("next"), landing_url(done.user)), status=302)
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


def _profile_form() -> ProfileForm:
    form = ProfileForm(obj=current_user) if request.method == "GET" else ProfileForm()
    if request.method == "GET":
        form.time_zone.data = current_user.time_zone or ""  # "": nothing chosen, the browser's zone
    detected = current_user.browser_time_zone or "not detected yet: UTC meanwhile"
    form.time_zone.choices = [SelectChoice("", f"Browser's time zone ({detected})")] + [
        SelectChoice(zone, zone) for zone in sorted(time_zones())]
    form.landing_view.choices = [SelectChoice(key, label) for key, label in accounts.landing_views_for(current_user)]
    return form


def _profile(password_form: ChangePasswordForm | None = None, profile_form: ProfileForm | None = None,
             block: str = "password_form", status: int = 200, error: str | None = None):
    return render("auth/profile.html", block=block, form=password_form or ChangePasswordForm(),
                  profile_form=profile_form or _profile_form(), error=error, status=status,
                  sessions=sessions.list_sessions(current_user.id), is_current=sessions.is_current,
                  password_hint=password_rules.hint())


@bp.route("/profile", methods=["GET", "POST"])
def profile():
    """The profile page; POST saves name, signature, time zone and start page."""
    form = _profile_form()
    if request.method == "GET":
        return _profile(profile_form=form)
    if form.validate_on_submit():
        try:
            accounts.update_profile(current_user, name=form.name.data, signature_html=form.signature_html.data or "",
                                    time_zone=form.time_zone.data, landing_view=form.landing_view.data)
        except accounts.AccountError as exc:
            db.session.rollback()
            getattr(form, exc.field or "name").errors.append(exc.message)
        else:
            db.session.commit()
            return navigate(url_for("auth.profile"), "Profile saved.")
    return _profile(profile_form=form, block="profile_form", status=422)


@bp.route("/profile/browser-zone", methods=["POST"])
def browser_zone():
    """The time zone the browser reports (`static/zone.js`, sent while the user has chosen none): kept
    as theirs (204), or 400 with no page for a name zoneinfo does not know. A chosen zone stays."""
    if not accounts.note_browser_zone(current_user, (request.form.get("zone") or "").strip()):
        return "", 400
    db.session.commit()
    return "", 204


@bp.route("/profile/password", methods=["POST"])
def change_password():
    """Change one's password (the current one is asked); every other session ends."""
    form = ChangePasswordForm()
    if not form.validate_on_submit():
        return _profile(form, status=422)
    try:
        ended = services.change_password(current_user, form.current_password.data, form.new_password.data,
                                         keep_session=sessions.current_key(), actor=current_user)
    except services.AuthError:
        form.current_password.errors.append("That is not your current password.")
        return _profile(form, status=422)
    except services.WeakPassword as exc:
        form.new_password.errors.append(str(exc))
        return _profile(form, status=422)
    except services.HashingBusy as exc:
        response = _profile(form, status=429, error=BUSY)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    db.session.commit()
    others = f" {_plural(ended, 'other session')} ended." if ended else ""
    return navigate(url_for("auth.profile"), f"Password changed.{others}")


@bp.route("/profile/sign-out-everywhere", methods=["POST"])
def sign_out_everywhere():
    """End every session of the user, this one included, and every "Keep me signed in"."""
    services.sign_out_everywhere(current_user, actor=current_user)
    db.session.commit()
    _sign_out_here()
    return navigate(url_for("auth.login"), "You are signed out everywhere.", "info")


@bp.route("/password/<token>", methods=["GET", "POST"])
def reset_password(token: str):
    """The page a one-time link opens (no sign-in needed): set a new password, then sign in.

    Opening it changes nothing (mail scanners open links); only the form's POST spends it.
    """
    form = NewPasswordForm()
    try:
        link = resets.find_link(token)
    except resets.InvalidLink:
        response = render("auth/reset.html", form=None, status=404)
        response.headers["Cache-Control"] = "no-store"
        return response
    error, status, headers = None, 422 if request.method == "POST" else 200, {"Cache-Control": "no-store"}
    if form.validate_on_submit():
        try:
            owner = resets.use_link(token, form.new_password.data)
        except password_rules.WeakPassword as exc:
            db.session.rollback()
            form.new_password.errors.append(str(exc))
        except resets.InvalidLink:
            db.session.rollback()
            return render("auth/reset.html", form=None, status=404)
        except services.HashingBusy as exc:
            db.session.rollback()
            error, status = BUSY, 429
            headers["Retry-After"] = str(exc.retry_after)
        else:
            db.session.commit()
            if current_user.is_authenticated and current_user.id == owner.id:  # its session just ended
                _sign_out_here()
            return navigate(url_for("auth.login"), "Your password is set. Sign in with it.", "info")
    response = render("auth/reset.html", block="reset_form", form=form, user=db.session.get(User, link.user_id),
                      error=error, status=status, password_hint=password_rules.hint())
    response.headers.update(headers)
    return response
