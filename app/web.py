"""Page rendering shared by every area: full page or HTMX fragment, flashes, errors, navigation.

One route serves both the full page and its fragment: `render(template, block=...)`
renders the whole page for a normal request and only the named block for an HTMX
request (jinja2-fragments), always with `Vary: HX-Request`. Flash messages ride
along out-of-band on fragment responses, so a partial update can still say
"Saved". Forms that fail validation come back with status 422, which our htmx
configuration swaps in (see `templates/base.html`).
"""
from __future__ import annotations

from flask import Flask, get_flashed_messages, make_response, render_template, request, url_for
from flask_login import current_user
from jinja2_fragments.flask import render_block

from app.models.auth import Role

# (label, endpoint, lowest role that sees it)
NAVIGATION = [
    ("Inbox", "inbox.index", Role.AGENT),
    ("Channels", "channels.index", Role.ADMIN),
    ("Flows", "flows.index", Role.ADMIN),
    ("Standard Responses", "responses.index", Role.SUPERVISOR),
    ("Publish", "channels.publish", Role.ADMIN),
    ("Ops", "ops.index", Role.ADMIN),
]


def is_htmx() -> bool:
    return bool(getattr(request, "htmx", False)) and not request.htmx.history_restore_request


def render(template: str, block: str | None = None, status: int = 200, **context):
    """The full page, or just `block` when HTMX asked; flashes out-of-band on fragments."""
    if block and is_htmx():
        body = render_block(template, block, **context)
        if _has_flashes():
            body += render_template("_flashes.html", oob=True)
    else:
        body = render_template(template, **context)
    response = make_response(body, status)
    response.vary.add("HX-Request")
    return response


def _has_flashes() -> bool:
    # Peek without consuming: the partial pops them itself.
    from flask import session

    return bool(session.get("_flashes"))


def navigation() -> list[tuple[str, str, bool]]:
    if not current_user.is_authenticated:
        return []
    items = []
    for label, endpoint, role in NAVIGATION:
        if current_user.has_role(role):
            href = url_for(endpoint)
            active = request.path == href or request.path.startswith(href.rstrip("/") + "/")
            items.append((label, href, active))
    return items


def init_app(app: Flask) -> None:
    app.jinja_env.globals["navigation"] = navigation
    app.jinja_env.globals["get_flashed_messages"] = get_flashed_messages

    for code in (403, 404, 405, 500):
        app.register_error_handler(code, _error_page(code))


_TITLES = {
    403: ("Not allowed", "Your role does not give you access to this page."),
    404: ("Not found", "There is nothing at this address."),
    405: ("Not allowed", "This page does not take that kind of request."),
    500: ("Something went wrong", "The error was logged. Try again in a moment."),
}


def _error_page(code: int):
    def handler(error):
        title, text = _TITLES[code]
        if code == 500:
            from app.extensions import db

            db.session.rollback()
        return render("errors/error.html", code=code, title=title, text=text, status=code)

    return handler
