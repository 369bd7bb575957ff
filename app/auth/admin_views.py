"""Admin › Users and Admin › Audit log (admins only).

The list searches as one types (HTMX swaps the `user_list` block). Creating an account or
asking for a reset link answers with the one-time link, shown once and never again (the
database keeps only its hash), or mailed to the user through the platform relay. Deactivate
is a dialog that asks what happens to the user's open conversations.
"""
from __future__ import annotations

from flask import Blueprint, abort, flash, request, url_for
from flask_login import current_user
from sqlalchemy import select
from wtforms.fields.choices import SelectChoice

from app.auth import accounts, audit, resets
from app.auth.forms import DeactivateForm, UserForm
from app.extensions import db
from app.models.auth import Queue, Role, User
from app.runtime.notices import send_notice
from app.security import restrict_blueprint
from app.web import fragment_of, navigate, render

bp = Blueprint("users", __name__, url_prefix="/admin")
restrict_blueprint(bp, Role.ADMIN)

STATUSES = ("active", "deactivated", "all")


def _user_or_404(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    return user


@bp.route("/users/")
def index():
    q = request.args.get("q", "").strip()[:200]
    show = request.args.get("status", "active")
    show = show if show in STATUSES else "active"
    users = accounts.search_accounts(q, show)
    return render("users/index.html", block="user_list", users=users, q=q, show=show, statuses=STATUSES)


def _user_form(user: User | None = None) -> UserForm:
    form = UserForm(obj=user) if request.method == "GET" and user is not None else UserForm()
    form.queues.choices = [SelectChoice(q.id, q.name) for q in db.session.scalars(select(Queue).order_by(Queue.name))]
    if request.method == "GET" and user is not None:
        form.queues.data = [q.id for q in user.queues]
    elif form.queues.data is None:
        form.queues.data = []
    return form


def _fields(form: UserForm) -> accounts.AccountFields:
    return accounts.AccountFields(name=form.name.data or "", email=form.email.data or "", role=form.role.data or "",
                                  queue_ids=tuple(form.queues.data or ()), email_capacity=form.email_capacity.data)


def _refused(form: UserForm, exc: accounts.AccountError) -> None:
    db.session.rollback()
    getattr(form, exc.field or "name", form.name).errors.append(exc.message)


@bp.route("/users/new", methods=["GET", "POST"])
def new_user():
    """Create an account; the answer is its one-time link to set a password."""
    form = _user_form()
    if form.validate_on_submit():
        try:
            user = accounts.create_account(current_user, _fields(form))
            token = resets.issue_link(user, current_user)
        except accounts.AccountError as exc:
            _refused(form, exc)
        else:
            db.session.commit()
            return _link_answer(user, token, created=True)
    status = 422 if request.method == "POST" else 200
    return render("users/form.html", block="user_form", form=form, user=None, status=status)


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
def edit_user(user_id: int):
    user = _user_or_404(user_id)
    form = _user_form(user)
    if form.validate_on_submit():
        try:
            accounts.edit_account(current_user, user.id, _fields(form))
        except accounts.AccountError as exc:
            _refused(form, exc)
        else:
            db.session.commit()
            return navigate(url_for(".index"), f"{user.name} saved.")
    status = 422 if request.method == "POST" else 200
    return render("users/form.html", block="user_form", form=form, user=user, status=status,
                  working=accounts.working_conversations(user.id))


def _deactivate_form(user: User) -> DeactivateForm:
    form = DeactivateForm()
    others = db.session.scalars(select(User).where(User.active.is_(True), User.id != user.id)
                                .order_by(User.name, User.id))
    form.reassign_to.choices = [SelectChoice(0, "Choose an agent")] + [SelectChoice(u.id, f"{u.name} ({u.role})")
                                                                       for u in others]
    return form


@bp.route("/users/<int:user_id>/deactivate", methods=["GET", "POST"])
@fragment_of(lambda user_id: url_for("users.edit_user", user_id=user_id))
def deactivate_user(user_id: int):
    """The dialog (GET, from the user's page) and the deactivation (POST)."""
    user = _user_or_404(user_id)
    form = _deactivate_form(user)
    error = None
    if form.validate_on_submit():
        try:
            done = accounts.deactivate_account(current_user, user.id, form.conversations.data,
                                               form.reassign_to.data or None)
        except accounts.AccountError as exc:
            db.session.rollback()
            error = exc.message
        else:
            db.session.commit()
            where = f"to {done['to']}" if done["to"] else "to their queues"
            moved = (f" {done['conversations']} open conversation{'s' if done['conversations'] != 1 else ''} "
                     f"went {where}." if done["conversations"] else "")
            return navigate(url_for(".index"), f"{user.name} is deactivated and signed out everywhere.{moved}")
    status = 422 if request.method == "POST" else 200
    return render("users/deactivate.html", block="dialog", form=form, user=user, error=error, status=status,
                  working=accounts.working_conversations(user.id))


@bp.route("/users/<int:user_id>/reactivate", methods=["POST"])
def reactivate_user(user_id: int):
    user = _user_or_404(user_id)
    try:
        accounts.reactivate_account(current_user, user.id)
    except accounts.AccountError as exc:
        return navigate(url_for(".edit_user", user_id=user.id), exc.message, "error")
    db.session.commit()
    return navigate(url_for(".edit_user", user_id=user.id), f"{user.name} is active again and can sign in.")


@bp.route("/users/<int:user_id>/reset-link", methods=["POST"])
def reset_link(user_id: int):
    """A new one-time link to set the password (earlier ones stop working): shown once, or mailed."""
    user = _user_or_404(user_id)
    try:
        token = resets.issue_link(user, current_user)
    except ValueError as exc:
        return navigate(url_for(".edit_user", user_id=user.id), str(exc), "error")
    db.session.commit()
    return _link_answer(user, token, created=False)


def _link_answer(user: User, token: str, *, created: bool):
    link = url_for("auth.reset_password", token=token, _external=True)
    if request.form.get("delivery") == "mail":
        hours = resets.valid_hours()
        body = (f"Hello {user.name},\n\n"
                f"{'An account on Pigeonhole was made for you' if created else 'Your Pigeonhole administrator made a link to set your password'}."
                f"\nSet your password here (the link works once, for {hours} hours):\n\n{link}\n\n"
                "If you did not expect this, tell your administrator.\n")
        if send_notice([user.email], "Set your Pigeonhole password", body):
            done = "created; a link to set a password was mailed to them" if created else "was mailed a new link"
            return navigate(url_for(".edit_user", user_id=user.id), f"{user.name} {done}.")
        flash("The link could not be mailed (the platform relay refused it or is not set). Give it to them "
              "yourself instead.", "error")
    response = render("users/link.html", block="link_panel", user=user, link=link, created=created,
                      hours=resets.valid_hours())
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/audit/")
def audit_log():
    """Every change to an account, newest first; `user` filters by the account concerned (or acting)."""
    user_id = request.args.get("user", type=int)
    before = request.args.get("before", type=int)
    entries = audit.entries(user_id, before)
    people = list(db.session.scalars(select(User).order_by(User.name, User.id)))
    return render("users/audit.html", block="entries", entries=entries, user_id=user_id, people=people,
                  actions=audit.ACTIONS, more=len(entries) == audit.PAGE_SIZE)
