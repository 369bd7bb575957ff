"""In-app notices to the signed-in user (a conversation taken back by Agent Inactivity, a reminder before
Auto Expire, a queue's alert or recovery): the banner on every page and its Dismiss button.

Every page (base.html) loads the banner with htmx from `GET /notices`, so the pages themselves
keep their query budgets; without JavaScript the link "Notices" opens the same list.

The notices are written by `app.flows.timers` and `app.flows.alerts` (`UserNotice`); here they are
only read and dismissed, each by its own user.
"""
from __future__ import annotations

from flask import abort, request, url_for
from flask_login import current_user
from sqlalchemy import select, update

from app.extensions import db
from app.inbox.pages import bp
from app.models._types import utcnow
from app.models.escalation import UserNotice
from app.web import navigate, render, site_path

SHOWN = 5


def my_notices() -> list[UserNotice]:
    """The signed-in user's newest notices not dismissed."""
    return list(db.session.scalars(select(UserNotice).where(
        UserNotice.user_id == current_user.id, UserNotice.dismissed_at.is_(None))
        .order_by(UserNotice.created_at.desc(), UserNotice.id.desc()).limit(SHOWN)))


@bp.route("/notices")
def notices():
    """The banner (fragment for htmx, a page otherwise); `next`: the page to come back to after Dismiss."""
    back = site_path(request.args.get("next"), url_for("inbox.index"))
    return render("notices.html", block="banner", notices=my_notices(), back=back)


@bp.route("/notices/<int:notice_id>/dismiss", methods=["POST"])
def dismiss_notice(notice_id: int):
    """Dismiss one of the user's own notices; back to the page it was dismissed on."""
    done = db.session.execute(update(UserNotice).where(
        UserNotice.id == notice_id, UserNotice.user_id == current_user.id).values(dismissed_at=utcnow())).rowcount
    if not done:
        abort(404)
    db.session.commit()
    return navigate(site_path(request.form.get("next"), url_for("inbox.index")))
