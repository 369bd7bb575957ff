"""Page rendering shared by every area: full page or HTMX fragment, flashes, errors, navigation,
and helpers for what pages repeat: `Fragments` (a macro's HTML kept for the same data),
`id_url` (a link built once per request, the id filled in) and `cached_url_for` (the templates'
`url_for`: the same link built once per process).

One route serves both the full page and its fragment: `render(template, block=...)`
renders the whole page for a normal request and only the named block for an HTMX
request (jinja2-fragments), always with `Vary: HX-Request`. Flash messages ride
along out-of-band on fragment responses, so a partial update can still say
"Saved". Forms that fail validation come back with status 422, which our htmx
configuration swaps in (see `templates/base.html`).
"""
from __future__ import annotations

import functools
from contextvars import ContextVar
from collections.abc import Callable
from datetime import datetime, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones
from urllib.parse import urlsplit

from flask import (Flask, abort, current_app, flash, g, get_flashed_messages, has_request_context, make_response, redirect,
                   render_template, request, session, url_for)
from flask.globals import _cv_request  # the request context itself: see cached_url_for
from flask_login import current_user
from flask_wtf.csrf import generate_csrf
from jinja2_fragments.flask import render_block
from markupsafe import Markup

from app.cache import SizedLRU, plain
from app.extensions import db
from app.models.auth import Role

# (label, endpoint, lowest role that sees it)
NAVIGATION = [
    ("Inbox", "inbox.index", Role.AGENT),
    ("Channels", "channels.index", Role.ADMIN),
    ("Flows", "flows.index", Role.ADMIN),
    ("Standard Responses", "responses.index", Role.SUPERVISOR),
    ("Dashboard", "reports.dashboard", Role.SUPERVISOR),
    ("Reports", "reports.index", Role.SUPERVISOR),
    ("Publish", "publish.publish", Role.ADMIN),
    ("Ops", "ops.index", Role.ADMIN),
    ("Users", "users.index", Role.ADMIN),
]

#: The pages a user may choose in their profile as where "/" (and sign-in) leads:
#: key -> (label, endpoint, arguments, lowest role that may choose it).
LANDING_VIEWS = {
    "inbox": ("Inbox: all conversations", "inbox.index", {}, Role.AGENT),
    "inbox_mine": ("Inbox: mine", "inbox.index", {"view": "mine"}, Role.AGENT),
    "inbox_unassigned": ("Inbox: unassigned", "inbox.index", {"view": "unassigned"}, Role.AGENT),
    "drafts": ("Drafts", "inbox.drafts", {}, Role.AGENT),
    "responses": ("Standard Responses", "responses.index", {}, Role.SUPERVISOR),
    "channels": ("Channels", "channels.index", {}, Role.ADMIN),
    "flows": ("Flows", "flows.index", {}, Role.ADMIN),
    "ops": ("Ops", "ops.index", {}, Role.ADMIN),
}


def landing_url(user) -> str:
    """Where "/" leads `user`: their profile's landing view, if their role still allows it, else the inbox."""
    label, endpoint, args, role = LANDING_VIEWS.get(getattr(user, "landing_view", None) or "inbox",
                                                    LANDING_VIEWS["inbox"])
    if not user.has_role(role):
        endpoint, args = "inbox.index", {}
    return cached_url_for(endpoint, **args)


@functools.cache
def time_zones() -> frozenset[str]:
    """The IANA time zone names this machine knows."""
    return frozenset(available_timezones())


#: Set while `Fragments` renders a macro: the signed-in user is not part of the cached HTML, so a
#: time written there must name its zone (`local_time(value, fmt, zone)`); one that does not raises.
_in_fragment: ContextVar[bool] = ContextVar("in_fragment", default=False)


def viewer_zone() -> str:
    """The signed-in user's time zone (`User.shown_time_zone`: the one they chose in their profile, else
    the one their browser reported), or "UTC" outside a request or signed out."""
    zone = getattr(current_user, "shown_time_zone", None) if has_request_context() else None
    return zone or "UTC"


def local_time(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M", zone: str | None = None) -> str:
    """`value` (a UTC time) written in `zone`, or the signed-in user's time zone (UTC when unknown).

    The templates' `local_time` filter: `{{ m.created_at|local_time }}`. Macros cached by
    `Fragments` see no user and must pass `zone` among their arguments (they get it as `zone`).
    """
    if value is None:
        return ""
    if zone is None:
        if _in_fragment.get():
            raise RuntimeError("A time in a cached fragment must name its zone: local_time(value, fmt, zone).")
        zone = viewer_zone()
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(zone_info(zone)).strftime(fmt)


def time_tag(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M", zone: str | None = None, cls: str = "") -> Markup:
    """`<time datetime="(UTC, ISO 8601)" title="(full local time and zone)">(local time)</time>`: the
    templates' one way to show a moment, in `zone` or the signed-in user's (as `local_time`)."""
    if value is None:
        return Markup("")
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return Markup('<time datetime="{}" title="{}"{}>{}</time>').format(
        value.astimezone(timezone.utc).isoformat(), local_time(value, "%Y-%m-%d %H:%M %Z", zone),
        Markup(' class="{}"').format(cls) if cls else "", local_time(value, fmt, zone))


def zone_info(zone: str) -> tzinfo:
    """The time zone named `zone`; UTC for a name this machine's zoneinfo does not know."""
    try:
        return ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return timezone.utc


def start_of_day(now: datetime, zone: str) -> datetime:
    """Midnight of `now`'s day in `zone` (UTC when unknown), as a UTC time: "today" for the Dashboard's figures
    and the inbox's activity filters alike."""
    tz = zone_info(zone)
    return datetime.combine(now.astimezone(tz).date(), datetime.min.time(), tz).astimezone(timezone.utc)


def zone_label(zone: str | None = None) -> str:
    """The short name of the signed-in user's time zone now ("CET", "UTC"), to write after times."""
    return local_time(datetime.now(timezone.utc), "%Z", zone)


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


def site_path(target: str | None, default: str | None = None) -> str | None:
    """`target` if it is a path on this site (`/inbox/?q=x`), else `default`.

    The one check of where a redirect may lead, for the plain answer (`Location`) and the
    HTMX one (`HX-Redirect`) alike. It refuses anything a browser could read as another
    site: a scheme or host (`https://x`, `//x`), a backslash (browsers read `/\\x` as `//x`),
    and control characters, spaces and non-ASCII (browsers drop tabs and newlines from URLs;
    a header can carry no non-Latin-1 text).
    """
    if not target or not target.startswith("/") or target.startswith("//"):
        return default
    if "\\" in target or not all(0x21 <= ord(c) < 0x7F for c in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


def navigate(url: str, message: str | None = None, category: str = "success", status: int = 303):
    """A success that leaves the page: flash `message`, then a full navigation to `url`.

    HTMX follows `HX-Redirect` (204); a plain form gets a redirect (303 by default:
    post/redirect/get). `url` must be a path on this site (`site_path`): raises ValueError
    otherwise, for both answers.
    """
    if site_path(url) is None:
        raise ValueError(f"navigate leads only to a path on this site, not {url!r}")
    if message:
        flash(message, category)
    if is_htmx():
        return "", 204, {"HX-Redirect": url}
    return redirect(url, status)


def fragment_of(page: Callable[..., str] | None = None):
    """A GET route that serves only a piece of a page, for HTMX to swap in.

    Opened as a plain page (a pasted link, a bookmark, a reload) it has no page around it: the
    request is sent on (303) to the page the piece belongs to, `page(**view_args)`, or answers 404
    when there is none. Only GET is diverted; other methods reach the view.
    """

    def decorator(view):
        @functools.wraps(view)
        def wrapper(**values):
            if request.method == "GET" and not is_htmx():
                if page is None:
                    abort(404)
                return redirect(page(**values), 303)
            return view(**values)

        return wrapper

    return decorator


def _has_flashes() -> bool:
    # Peek without consuming: the partial pops them itself.
    return bool(session.get("_flashes"))


def navigation() -> list[tuple[str, str, bool]]:
    user = current_user._get_current_object()  # once: each use of the proxy costs a microsecond or two
    if not user.is_authenticated:
        return []
    path = request.path
    items = []
    for label, endpoint, role in NAVIGATION:
        if user.has_role(role):
            href = cached_url_for(endpoint)
            active = path == href or path.startswith(href.rstrip("/") + "/")
            items.append((label, href, active))
    return items


#: URLs kept by `cached_url_for`, with their keys: at most this many (a few thousand links), then all dropped
#: at once (a dict's look-up, where a least-recently-used map's lock and reordering cost as much again).
URL_CACHE_ITEMS = 20_000
_urls: dict[tuple, str] = {}


def cached_url_for(endpoint: str, **values) -> str:
    """`url_for` for templates (their `url_for`) and the navigation: the URL of the same endpoint and
    values under the same root is the same string, so it is built once per process and kept.

    A page's layout, tabs, filters and forms link to the same 25 to 40 URLs on every request, and
    building each again is a noticeable share of the page's rendering. The key is the request's
    root (its script name and host), the endpoint and every value with its type (`1` and `True`
    are different arguments but equal keys). Calls this cannot key exactly go to `url_for`:
    outside a request, a relative endpoint (`.name`), options (`_external`, `_anchor`, ...), values
    that are not hashable, or an app with `url_defaults` functions (they may add values from the
    request). The request is read from Flask's context variable, not through the `request` and
    `current_app` proxies: a hit costs 0.3 to 0.9 µs instead of 3.2 to 3.4 (a conversation page
    makes 39 calls).
    """
    ctx = _cv_request.get(None)
    if ctx is None or endpoint[:1] == "." or ctx.app.url_default_functions:
        return url_for(endpoint, **values)
    environ = ctx.request.environ
    if values:
        try:
            key = (environ.get("SCRIPT_NAME"), environ.get("HTTP_HOST"), endpoint,
                   *sorted((k, type(v), v) for k, v in values.items()))
            url = _urls.get(key)
        except TypeError:  # an unhashable or unorderable value
            return url_for(endpoint, **values)
    else:
        key = (environ.get("SCRIPT_NAME"), environ.get("HTTP_HOST"), endpoint)
        url = _urls.get(key)
    if url is None:
        if any(k[:1] == "_" for k in values):
            return url_for(endpoint, **values)
        url = url_for(endpoint, **values)
        if len(_urls) >= URL_CACHE_ITEMS:
            _urls.clear()
        _urls[key] = url
    return url


_ID = 918273645  # stands for the id in a URL built once per request by `id_url`


def id_url(endpoint: str, **values) -> str:
    """`url_for(endpoint, **values)` for links repeated on every row or tile: built once per request
    for the endpoint and the other values, then the id filled in (`url_for` is not cheap, and
    a page of 20 tiles has 100 such links). Exactly one value is named `*_id`: `message_id=m.id`."""
    (name, ident), = [(k, v) for k, v in values.items() if k.endswith("_id")]
    ident = int(ident)
    key = (request.script_root, endpoint, name, tuple(sorted((k, v) for k, v in values.items() if k != name)))
    cache = g.setdefault("_id_urls", {})
    parts = cache.get(key)
    if parts is None:
        parts = cache[key] = url_for(endpoint, **{**values, name: _ID}).split(str(_ID), 1)
    return f"{parts[0]}{ident}{parts[1]}"


#: Characters of rendered fragments (`Fragments`) and their keys kept per process, all together
#: (about 5000 message tiles of 3 KB, or 20 000 inbox rows).
FRAGMENT_CACHE_BYTES = 16 * 1024 * 1024
_fragments = SizedLRU(FRAGMENT_CACHE_BYTES)


def _size(value) -> int:
    """About how many bytes a key holds (its strings, plus a little per item)."""
    if isinstance(value, str):
        return len(value) + 50
    if isinstance(value, tuple):
        return sum(_size(v) for v in value) + 50
    return 30


class Fragments:
    """The HTML of one template macro for pieces a page repeats many times (inbox rows, message
    tiles), kept per process and served again for the very same data.

    `Fragments("inbox/_row.html", "row")(row, present, fresh)` calls the macro with those
    arguments, or with `prepare(*args)` when given (work that depends only on them, like a
    message's frame). The key is `plain()` of the arguments (every field; plain data only, an
    ORM object raises TypeError) with the app's root URL: changed data is another key, nothing
    is ever invalidated. The macro runs in its template's module, without the page's context:
    it sees its arguments and the environment's globals (`id_url`, `human_size`) only, and must
    not use the per-user or per-request ones (`csrf_token`; tests/unit/test_cache.py reads the
    templates). With templates reloading (development) nothing is kept.

    Times are the one thing a fragment shows per user: with `zoned=True` the macro also gets the
    viewer's time zone as its last argument (`zone`), and the zone is part of the key, so each zone
    has its own copy and one user's zone is never served to another. A contact center's agents
    share a handful of zones, so the copies stay few. A time written without its zone in a
    fragment raises (`local_time`).

    `key(*args)`, when given, makes the arguments' key instead of `plain()`, for a fragment a page
    repeats fifty times: it must stand for every value the macro reads, as `plain()` does (the inbox
    rows: a NamedTuple of plain values is hashed as it is, `app.inbox.views.row_key`).
    """

    def __init__(self, template: str, macro: str, prepare=None, zoned: bool = False, key=None) -> None:
        self.template, self.macro, self.prepare, self.zoned = template, macro, prepare, zoned
        self.key = key or (lambda *args: plain(args))

    def __call__(self, *args) -> Markup:
        return self.many([args])[0]

    def many(self, calls: list[tuple]) -> list[Markup]:
        """The HTML of each call's arguments (a page's rows: one lookup of the app and request)."""
        env = current_app.jinja_env
        root = None if env.auto_reload else request.script_root
        zone = (viewer_zone(),) if self.zoned else ()
        macro = None
        out = []
        for args in calls:
            key = None if root is None else (self.template, self.macro, root, self.key(*args), *zone)
            html = None if key is None else _fragments.get(key)
            if html is None:
                macro = macro or getattr(env.get_template(self.template).module, self.macro)
                token = _in_fragment.set(True)
                try:
                    html = macro(*(self.prepare(*args) if self.prepare else args), *zone)
                finally:
                    _in_fragment.reset(token)
                if key is not None:
                    _fragments.put(key, html, len(html) + _size(key))
            out.append(html)
        return out


def csrf_token() -> str:
    """The templates' `csrf_token()`: Flask-WTF's `generate_csrf`, asked once per request. It keeps the
    token for the request itself, but a call still read the config, `g` and the session through Flask's
    proxies (about 6 µs), and a conversation page's forms asked twelve times."""
    ctx = _cv_request.get(None)
    if ctx is None:
        return generate_csrf()
    environ = ctx.request.environ
    token = environ.get("pigeonhole.csrf_token")
    if token is None:
        token = environ["pigeonhole.csrf_token"] = generate_csrf()
    return token


def init_app(app: Flask) -> None:
    # After CSRFProtect's own (app/__init__.py), which puts `generate_csrf` in every page's context too.
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.context_processor(lambda: {"csrf_token": csrf_token})
    app.jinja_env.globals["navigation"] = navigation
    app.jinja_env.globals["url_for"] = cached_url_for
    app.jinja_env.globals["id_url"] = id_url
    app.jinja_env.globals["get_flashed_messages"] = get_flashed_messages
    app.jinja_env.globals["zone_label"] = zone_label
    app.jinja_env.globals["time_tag"] = time_tag
    app.jinja_env.filters["local_time"] = local_time

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
            db.session.rollback()
        return render("errors/error.html", code=code, title=title, text=text, status=code)

    return handler
