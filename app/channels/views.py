"""Channels > Email: domains, the address wizard, Test Connection, Preview and delete (Publish: `app.publish`).

Every page works as a full page and as an HTMX fragment (`render(..., block=...)`).
Wizard steps are URLs (`/channels/email/setup/<id>/<step>`) whose state lives in an
`AddressSetup` row, so reload, back and a second tab all work. Forms that fail
answer 422 with their block; successes redirect (PRG), or for HTMX answer 204 with
`HX-Location` (next wizard step, swapped into `#wizard`) or `HX-Redirect`.
Dialogs are `<dialog>` elements loaded by `hx-get` into `#dialog-host` (see
static/channels.js); the same URLs render a plain page without JavaScript.
"""
from __future__ import annotations

import json

from flask import Blueprint, abort, current_app, flash, jsonify, make_response, redirect, request, url_for
from flask_login import current_user

from app.channels import addresses, connection_test, domains, forms, sign_in, wizard
from app.channels.forwarding import forwarding_status
from app.channels.errors import AddressError, AddressLimitReached, ChannelError
from app.channels.preview import editor_image_url, render_preview
from app.channels.validation import SECURITY_LABELS, USAGE_LABELS
from app.extensions import db
from app.mail.html import ALLOWED_STYLE_PROPERTIES
from app.mail.probe import DEFAULT_PORTS, ProbeResult
from app.mail.render import PLACEHOLDERS
from app.mail.tls import describe_ca_pem
from app.models.auth import Role
from app.models.channels import WHEN_DISABLED_LABELS, DomainKind
from app.runtime.hold import held_counts
from app.runtime.poll import NotPollable, poll_now
from app.runtime.template_images import (ImageRefused, html_for_editor, html_with_data_images, store_template_image,
                                         template_image)
from app.security import CSP, MAIL_FRAME_CSP, restrict_blueprint
from app.web import is_htmx, navigate, render

bp = Blueprint("channels", __name__, url_prefix="/channels")

#: The preview frame's own policy: mail HTML may use inline styles and images, never scripts.
PREVIEW_CSP = str(MAIL_FRAME_CSP.extend(img_src=("https:", "http:"), font_src=("data:",), sandbox=(),
                                        frame_ancestors=("'self'",), base_uri=("'none'",), form_action=("'none'",)))


restrict_blueprint(bp, Role.ADMIN)


def _next_step(url: str):
    """Go to another wizard step: HTMX swaps it into #wizard and pushes the URL; otherwise 303."""
    if is_htmx():
        return "", 204, {"HX-Location": json.dumps({"path": url, "target": "#wizard"})}
    return redirect(url, 303)


def _field_error(form, exc: ChannelError, only_new_fields: bool = False) -> None:
    """Put the error (each of `AddressErrors`) beside its field; with `only_new_fields`, skip fields that
    already show one (the form's own check said it first)."""
    for one in getattr(exc, "errors", None) or [exc]:
        field = getattr(form, one.field, None) if one.field else None
        if field is not None:
            if not (only_new_fields and field.errors) and one.message not in (field.errors or []):
                field.errors = list(field.errors or []) + [one.message]
        elif one.message not in form.form_errors:
            form.form_errors.append(one.message)


def _all_errors(form, check) -> None:
    """The form failed its own checks: run the service's too (never saved) so every problem shows at once."""
    if form.csrf_token.errors:
        return
    try:
        check()
    except ChannelError as exc:
        _field_error(form, exc, only_new_fields=True)
    finally:
        db.session.rollback()


def _change(setup_id: str, form, change, closes: bool = False):
    """Run one service change of a wizard and commit: (wizard, result, True).

    A `ChannelError` rolls back, puts its message on the form field it names, and
    gives (the wizard reloaded, None, False) for the 422 page. With `closes` (the
    change ends the wizard) the first item is None on success.
    """
    try:
        result = change()
    except ChannelError as exc:
        db.session.rollback()
        _field_error(form, exc)
        return _setup_or_404(setup_id), None, False
    db.session.commit()
    return (None if closes else _setup_or_404(setup_id)), result, True


# --- the Email channel page --------------------------------------------------------------------

def _index(status: int = 200, errors: dict | None = None):
    """The Email channel page; `errors` maps a domain id to a message shown in its section."""
    platform, custom = domains.domains()
    ids = [a.id for d in custom for a in d.addresses]
    return render("channels/index.html", status=status, platform=platform, custom=custom,
                  platform_name=domains.platform_domain_name(), limit=domains.address_limit(),
                  live_count=domains.live_address_count, usage_labels=USAGE_LABELS,
                  limit_message=domains.limit_reached_message,
                  mailbox=addresses.mailbox_status(ids), pollable=addresses.polling_ids(), errors=errors or {},
                  credentials=sign_in.credentials(ids), held=held_counts(), when_disabled_labels=WHEN_DISABLED_LABELS,
                  forwarding=forwarding_status([a.id for a in platform.addresses] if platform else []))


@bp.route("/email/")
def index():
    return _index()


@bp.route("/email/domains/new", methods=["GET", "POST"])
def new_domain():
    form = forms.DomainForm()
    if form.validate_on_submit():
        try:
            domain = domains.create_domain(form.name.data, form.exchange())
        except ChannelError as exc:
            db.session.rollback()
            _field_error(form, exc)
        else:
            db.session.commit()
            # No #anchor: from the Email channel page itself, a hash-only change would not reload it.
            return navigate(url_for(".index"), f"Domain {domain.name} created.")
    status = 422 if request.method == "POST" else 200
    return render("channels/domain_new.html", block="dialog", status=status, form=form, modal=is_htmx())


@bp.route("/email/domains/<int:domain_id>/exchange", methods=["GET", "POST"])
def domain_exchange(domain_id: int):
    """The domain's type and Microsoft Exchange app-only sign-in (Tenant ID, Client ID, Client Secret)."""
    domain = domains.get_domain(domain_id)
    if domain is None or domain.kind != DomainKind.CUSTOM.value:
        abort(404)
    form = forms.ExchangeAppForm()
    if form.validate_on_submit():
        try:
            app_only = form.exchange()
            changed = domains.set_microsoft_exchange(domain, *app_only) if app_only \
                else domains.clear_microsoft_exchange(domain)
        except ChannelError as exc:
            db.session.rollback()
            _field_error(form, exc)
        else:
            db.session.commit()
            words = (f"{domain.name} is a Microsoft Exchange domain" + (" with a new app." if changed else "."))\
                if app_only else f"{domain.name} is a custom domain" + (" again." if changed else ".")
            return navigate(url_for(".index"), words)
    elif request.method == "GET":
        form.domain_type.data = "exchange" if domain.microsoft_exchange else "custom"
        form.tenant_id.data, form.client_id.data = domain.ms_app_tenant or "", domain.ms_app_client_id or ""
    return render("channels/domain_exchange.html", block="dialog", status=422 if request.method == "POST" else 200,
                  form=form, domain=domain, modal=is_htmx())


@bp.route("/email/domains/<int:domain_id>/delete", methods=["GET", "POST"])
def delete_domain(domain_id: int):
    domain = domains.get_domain(domain_id)
    if domain is None or domain.kind != DomainKind.CUSTOM.value:
        abort(404)
    form = forms.ConfirmDeleteForm()
    error = None
    if request.method == "POST":
        if form.validate_on_submit() and form.confirm.data == domain.name:
            try:
                name = domains.delete_domain(domain.id)
            except ChannelError as exc:
                db.session.rollback()
                error = exc.message
            else:
                db.session.commit()
                return navigate(url_for(".index"), f"Domain {name} deleted.")
        else:
            error = "The confirmation does not match this domain. Open the dialog again."
    form.confirm.data = domain.name
    return render("channels/domain_delete.html", block="dialog", status=422 if error else 200, form=form,
                  domain=domain, blocker=domains.domain_delete_blocker(domain), error=error, modal=is_htmx())


@bp.route("/email/platform/addresses/new", methods=["POST"])
def new_platform_address():
    domain = domains.ensure_platform_domain()
    setup = wizard.start_setup(domain.id, current_user.id)
    db.session.commit()
    return redirect(url_for(".setup_address", setup_id=setup.token), 303)


@bp.route("/email/domains/<int:domain_id>/addresses/new", methods=["POST"])
def new_address(domain_id: int):
    domain = domains.get_domain(domain_id)
    if domain is None:
        abort(404)
    try:
        setup = wizard.start_setup(domain.id, current_user.id)
    except AddressLimitReached as exc:  # the button was disabled; a stale page still lands on a GET
        db.session.rollback()
        return navigate(url_for(".index", _anchor=f"domain-{domain.id}"), exc.message, "error")
    db.session.commit()
    return redirect(url_for(".setup_address", setup_id=setup.token), 303)


@bp.route("/email/addresses/<int:address_id>/edit")
def edit_address(address_id: int):
    try:
        setup = wizard.start_edit(address_id, current_user.id)
    except AddressError:
        abort(404)
    db.session.commit()
    return redirect(url_for(".setup_address", setup_id=setup.token), 303)


@bp.route("/email/addresses/<int:address_id>/delete", methods=["GET", "POST"])
def delete_address(address_id: int):
    address = addresses.get_address(address_id)
    if address is None or address.archived_at is not None:
        abort(404)
    form = forms.ConfirmDeleteForm()
    error = None
    if request.method == "POST":
        if form.validate_on_submit() and form.confirm.data == address.address:
            name = address.address
            outcome = addresses.delete_address(address.id)
            db.session.commit()
            if outcome == "archived":
                return navigate(url_for(".index"), f"{name} has conversations, so it was archived: they stay readable, "
                                                "and it no longer receives or sends.")
            return navigate(url_for(".index"), f"{name} deleted.")
        error = "The confirmation does not match this address. Open the dialog again."
    form.confirm.data = address.address
    return render("channels/address_delete.html", block="dialog", status=422 if error else 200, form=form,
                  address=address, will_archive=addresses.has_history(address), error=error, modal=is_htmx())


@bp.route("/email/addresses/<int:address_id>/poll", methods=["POST"])
def poll_address_now(address_id: int):
    """The "Poll now" button of an address: poll its mailbox at once, whatever its error backoff says."""
    address = addresses.get_address(address_id)
    if address is None or address.archived_at is not None:
        abort(404)
    back = url_for(".index", _anchor=f"address-{address.id}")
    try:
        poll_now(address.id)
    except NotPollable as exc:
        db.session.rollback()
        return navigate(back, f"{address.address}: {exc}", "error")
    db.session.commit()
    return navigate(back, f"Polling {address.address} now; its last poll and last error update in a moment.")


# --- the address wizard ------------------------------------------------------------------------

def _setup_or_404(setup_id: str):
    setup = wizard.get_setup(setup_id, current_user.id)
    if setup is None:
        abort(404)
    return setup


def _address_form(setup, formdata=True):
    cls = forms.PlatformAddressForm if setup.domain.kind == DomainKind.PLATFORM.value else forms.CustomAddressForm
    if formdata and request.method == "POST":
        form = cls()
    else:
        form = cls(formdata=None)
        form.fill(setup.values or {})
    if hasattr(form, "mailbox_kind"):
        form.offer_kinds((k.key, k.label) for k in sign_in.mailbox_kinds(setup.domain))
    return form


def _test_results(setup):
    result = setup.test_result
    if not result:
        return None
    return {"ok": result["ok"], "at": result["at"],
            "results": [ProbeResult.from_dict(r) for r in result.get("results", [])]}


def _ports_json() -> str:
    """Default ports for static/channels.js: {"imap": {"ssl": 993, ...}, ...}."""
    ports: dict = {}
    for (protocol, security), port in DEFAULT_PORTS.items():
        ports.setdefault(protocol, {})[security] = port
    return json.dumps(ports)


def _setup_page(setup, step: str, block: str | None = "wizard", status: int = 200, **extra):
    context = {
        "setup": setup, "step": step, "domain": setup.domain, "values": setup.values or {},
        "is_platform": setup.domain.kind == DomainKind.PLATFORM.value, "steps": wizard.SETUP_STEPS,
        "complete": wizard.setup_complete(setup), "editing": setup.address_id is not None,
        "has_password": wizard.stored_password(setup) is not None,
        "has_smtp_password": wizard.stored_smtp_password(setup) is not None, "usage_labels": USAGE_LABELS,
        "security_labels": SECURITY_LABELS, "when_disabled_labels": WHEN_DISABLED_LABELS, "ports_json": _ports_json(), "placeholders": PLACEHOLDERS,
        "restores": wizard.setup_restores(setup),
        "ca_description": describe_ca_pem((setup.values or {}).get("tls_ca_pem")),
    }
    if not context["is_platform"]:
        kinds = sign_in.mailbox_kinds(setup.domain)
        context.update(kinds={k.key: k for k in kinds}, presets_json=json.dumps(sign_in.SERVER_PRESETS),
                       signed_in={k.key: sign_in.signed_in_as(setup, k.key) for k in kinds if k.provider_name})
    if step == "address":
        context.setdefault("form", extra.pop("form", None) or _address_form(setup, formdata=False))
        # A page filled from the stored values shows only a test of exactly those settings: a test of
        # values typed and never saved goes away with them on reload (a POST re-shows both).
        shown = request.method == "POST" or connection_test.setup_test_outcome(setup) is not None
        context["test"] = extra.pop("test", None) or (_test_results(setup) if shown else None)
    elif step == "design":
        context["form"] = extra.pop("form", None) or forms.DesignForm(
            formdata=None, data={"template_enabled": bool((setup.values or {}).get("template_enabled"))})
        context["preview"] = extra.pop("preview", None) or render_preview(setup, store=False)
    else:
        context["test_outcome"] = connection_test.setup_test_outcome(setup)
        context["flow"] = setup.address.flow if setup.address is not None else None
    context.update(extra)
    return render("channels/setup.html", block=block, status=status, **context)


@bp.route("/email/setup/<setup_id>/address", methods=["GET", "POST"])
def setup_address(setup_id: str):
    setup = _setup_or_404(setup_id)
    form = _address_form(setup)
    if request.method == "POST" and form.validate_on_submit():
        password = form.password.data if hasattr(form, "password") else None
        smtp_password = form.smtp_password.data if hasattr(form, "smtp_password") else None
        setup, _, ok = _change(setup_id, form, lambda: wizard.update_address_step(setup, form.values(), password,
                                                                                  smtp_password))
        if ok:
            return _next_step(url_for(".setup_design", setup_id=setup.token))
    elif request.method == "POST":
        _all_errors(form, lambda: wizard.update_address_step(
            setup, form.values(), getattr(form, "password", None) and form.password.data,
            getattr(form, "smtp_password", None) and form.smtp_password.data))
        setup = _setup_or_404(setup_id)
    status = 422 if request.method == "POST" else 200
    return _setup_page(setup, "address", status=status, form=form)


@bp.route("/email/setup/<setup_id>/test", methods=["POST"])
def setup_test(setup_id: str):
    """Test Connection with the unsaved values of the form (nothing is saved but the outcome)."""
    setup = _setup_or_404(setup_id)
    if setup.domain.kind != DomainKind.CUSTOM.value:
        abort(404)
    form = forms.CustomAddressForm()
    errors = []
    form.validate_on_submit()
    for field in form:  # only the connection's fields matter here (no Display Name needed to test)
        if field.name not in forms.CONNECTION_FIELDS:
            field.errors = []
    if form.is_submitted() and not any(field.errors for field in form) and not form.form_errors:
        setup, _, ok = _change(setup_id, form,
                               lambda: connection_test.run_connection_test(setup, form.values(), form.password.data,
                                                                           form.smtp_password.data))
        if ok:
            return _setup_page(setup, "address", block="test_results", form=form)
    for field in form:
        errors += [f"{field.label.text}: {e}" for e in field.errors]
    errors += list(form.form_errors)
    return _setup_page(setup, "address", block="test_results", status=422, form=form, test_errors=errors,
                       test={"ok": False, "results": [], "at": None})


@bp.route("/email/setup/<setup_id>/design", methods=["GET", "POST"])
def setup_design(setup_id: str):
    setup = _setup_or_404(setup_id)
    if not wizard.setup_complete(setup):
        return _next_step(url_for(".setup_address", setup_id=setup.token)) if request.method == "POST" else \
            redirect(url_for(".setup_address", setup_id=setup.token))
    form = forms.DesignForm()
    if request.method == "POST":
        action = request.form.get("action", "next")
        if action not in ("toggle", "next"):
            form.form_errors.append("Unknown action.")
        elif form.validate_on_submit():
            wizard.update_design_step(setup, form.template_enabled.data)
            db.session.commit()
            if action == "toggle":
                return _setup_page(setup, "design")
            return _next_step(url_for(".setup_review", setup_id=setup.token))
        return _setup_page(setup, "design", status=422, form=form)
    return _setup_page(setup, "design")


@bp.route("/email/setup/<setup_id>/design/<any(header, footer):part>", methods=["GET", "POST"])
def setup_template_part(setup_id: str, part: str):
    """The "Edit Header" / "Edit Footer" editor (a dialog), with its own live preview."""
    setup = _setup_or_404(setup_id)
    if not wizard.setup_complete(setup):
        abort(404)
    form = forms.TemplatePartForm()
    if request.method == "POST":
        if form.validate_on_submit():
            setup, _, ok = _change(setup_id, form, lambda: wizard.set_template_part(
                setup, part, form.html.data or "", editor_image_url, current_user.id))
            if ok:
                flash(f"{part.title()} saved.", "success")
                if is_htmx():
                    return "", 204, {"HX-Trigger": json.dumps({"designChanged": True, "closeDialog": True})}
                return redirect(url_for(".setup_design", setup_id=setup.token), 303)
    else:
        form.html.data = html_for_editor((setup.values or {}).get(f"{part}_html") or "", editor_image_url)
    preview = render_preview(setup, {f"{part}_html": form.html.data or "", "template_enabled": True},
                                      store=request.method == "POST")
    if request.method == "POST":
        db.session.commit()
    return render("channels/template_editor.html", block="dialog", status=422 if request.method == "POST" else 200,
                  setup=setup, part=part, form=form, preview=preview, placeholders=PLACEHOLDERS,
                  allowed_styles=sorted(ALLOWED_STYLE_PROPERTIES), modal=is_htmx())


@bp.route("/email/template-images", methods=["POST"])
def upload_template_image():
    """An image uploaded in the rich-text editor: 201 with the URL the editor shows it from, or 422 with why not.

    The form field is `image`; the CSRF token comes in `X-CSRFToken` (static/editor.js) or the form.
    """
    upload = request.files.get("image")
    if upload is None or not upload.filename:
        return jsonify(error="Choose an image file to upload."), 422
    try:
        image = store_template_image(upload.read(), upload.filename, current_user.id)
    except ImageRefused as exc:
        db.session.rollback()
        return jsonify(error=str(exc)), 422
    db.session.commit()
    return jsonify(url=editor_image_url(image.sha256), name=image.filename, size=image.size), 201


@bp.route("/email/template-images/<sha256>")
def template_image_file(sha256: str):
    """An uploaded image, for the editor and the Preview (never for customers: they get it inline)."""
    found = template_image(sha256)
    if found is None:
        abort(404)
    image, data = found
    response = make_response(data)
    response.headers["Content-Type"] = image.content_type
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, max-age=86400, immutable"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@bp.route("/email/setup/<setup_id>/preview", methods=["POST"])
def setup_preview(setup_id: str):
    """The live Preview: the sample reply rendered by the sender's renderer with unsaved values."""
    setup = _setup_or_404(setup_id)
    if not wizard.setup_complete(setup):
        abort(404)
    form = forms.PreviewForm()
    if not form.validate_on_submit():
        errors = [e for field in form for e in field.errors]
        return _setup_page(setup, "design", block="preview", status=422,
                           preview=render_preview(setup, store=False), preview_errors=errors)
    overrides = {}
    if form.part.data:
        overrides = {f"{form.part.data}_html": form.html.data or "", "template_enabled": True}
    preview = render_preview(setup, overrides, store=True)
    db.session.commit()
    return _setup_page(setup, "design", block="preview", preview=preview)


@bp.route("/email/setup/<setup_id>/preview/<int:version>")
def setup_preview_document(setup_id: str, version: int):
    """The HTML part of the Preview, for a sandboxed frame (its own strict policy, no scripts)."""
    setup = _setup_or_404(setup_id)
    if version == 0 or version != setup.preview_version:
        # The saved design (`on=1`: as if the template were switched on, for the editors).
        overrides = {"template_enabled": True} if request.args.get("on") == "1" else None
        html = render_preview(setup, overrides, store=False).html
    else:
        html = setup.preview_html
    response = make_response(html_with_data_images(html))
    response.headers["Content-Type"] = "text/html; charset=utf-8"
    response.headers["Content-Security-Policy"] = PREVIEW_CSP
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/email/setup/<setup_id>/review", methods=["GET", "POST"])
def setup_review(setup_id: str):
    setup = _setup_or_404(setup_id)
    if not wizard.setup_complete(setup):
        return redirect(url_for(".setup_address", setup_id=setup.token), 303 if request.method == "POST" else 302)
    form = forms.SaveForm()
    if request.method == "POST" and form.validate_on_submit():
        setup_or_none, saved, ok = _change(setup_id, form, lambda: addresses.save_setup(setup), closes=True)
        if ok:
            address, what = saved
            messages = {
                "created": f"Email address {address.address} saved. Publish to make it live.",
                "restored": f"Email address {address.address} restored with its earlier conversations. "
                            "Publish to make it live.",
                "updated": f"Email address {address.address} updated. Publish to make the changes live.",
                "unchanged": f"Nothing changed for {address.address}.",
            }
            return navigate(url_for(".index", _anchor=f"address-{address.id}"), messages[what],
                         "info" if what == "unchanged" else "success")
        setup = setup_or_none
    return _setup_page(setup, "review", status=422 if request.method == "POST" else 200, save_form=form)


@bp.route("/email/setup/<setup_id>/discard", methods=["POST"])
def setup_discard(setup_id: str):
    setup = _setup_or_404(setup_id)
    wizard.discard_setup(setup)
    db.session.commit()
    return navigate(url_for(".index"), "Changes discarded.", "info")


@bp.after_request
def _sign_in_forms_may_leave(response):
    """Forms here that sign in ("Sign in with …", "Try again", "Sign in again") are redirected to the
    provider's consent page: allow its origin in `form-action` (pages with a policy of their own keep it)."""
    origins = sign_in.provider_origins()
    if origins and "Content-Security-Policy" not in response.headers:
        response.headers["Content-Security-Policy"] = str(CSP.extend(form_action=origins))
    return response


@bp.context_processor
def _channel_helpers():
    return {"probe_timeout": current_app.config.get("PROBE_TIMEOUT_SECONDS")}


# --- "Sign in with …" (OAuth 2.0), docs/oauth.md ------------------------------------------------

def _to_provider(url: str):
    """Send the browser to the provider's consent page (a full navigation, also from HTMX)."""
    if is_htmx():
        return "", 204, {"HX-Redirect": url}
    return redirect(url, 303)


def _callback_uri() -> str:
    """The redirect URI registered at the provider: `PUBLIC_BASE_URL` + the callback's path when set
    (behind a proxy that terminates TLS the request's own URL would say http://), else this request's host."""
    base = (current_app.config.get("PUBLIC_BASE_URL") or "").rstrip("/")
    return base + url_for("channels.oauth_callback") if base else url_for("channels.oauth_callback", _external=True)


def _sign_in_failed(message: str, setup_id: str | None, status: int = 400):
    return render("channels/sign_in_failed.html", status=status, message=message, setup_id=setup_id,
                  retry=forms.SaveForm())


@bp.route("/email/setup/<setup_id>/sign-in", methods=["POST"])
def setup_sign_in(setup_id: str):
    """"Sign in with …": save the Email Address step as typed (no sign-in needed yet), then go to the provider."""
    setup = _setup_or_404(setup_id)
    if setup.domain.kind != DomainKind.CUSTOM.value:
        abort(404)
    form = _address_form(setup)
    if form.validate_on_submit():
        setup, url, ok = _change(setup_id, form, lambda: (
            wizard.update_address_step(setup, form.values(), form.password.data, form.smtp_password.data,
                                       signing_in=True),
            sign_in.begin_sign_in(setup, _callback_uri()))[1])
        if ok:
            return _to_provider(url)
    return _setup_page(setup, "address", status=422, form=form)


@bp.route("/email/setup/<setup_id>/sign-in/again", methods=["POST"])
def setup_sign_in_again(setup_id: str):
    """"Try again" after a failed sign-in: the same provider with the step as saved."""
    setup = _setup_or_404(setup_id)
    form = forms.SaveForm()
    if not form.validate_on_submit():
        return _sign_in_failed("The form expired. Go back to the wizard and sign in again.", setup.token)
    try:
        url = sign_in.begin_sign_in(setup, _callback_uri())
    except ChannelError as exc:
        db.session.rollback()
        return _sign_in_failed(exc.message, setup.token, status=422)
    db.session.commit()
    return _to_provider(url)


@bp.route("/email/addresses/<int:address_id>/sign-in", methods=["POST"])
def address_sign_in(address_id: int):
    """"Sign in again" on an address whose sign-in is gone: its Edit wizard, straight to the provider."""
    form = forms.SaveForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        setup = wizard.start_edit(address_id, current_user.id)
        url = sign_in.begin_sign_in(setup, _callback_uri())
    except ChannelError as exc:
        db.session.rollback()
        return navigate(url_for(".index"), exc.message, "error")
    db.session.commit()
    return _to_provider(url)


@bp.route("/oauth/callback")
def oauth_callback():
    """Where the provider sends the admin back: keep the tokens on the wizard, or say what went wrong."""
    try:
        setup = sign_in.finish_sign_in(current_user.id, request.args, request.url, _callback_uri())
    except sign_in.SignInFailed as exc:
        db.session.commit()  # the attempt is forgotten; earlier tokens stay
        return _sign_in_failed(exc.message, exc.setup_id)
    db.session.commit()
    found = sign_in.signed_in_as(setup, sign_in.kind_of(setup.values or {}))
    who = found[0] if found and found[0] else "the mailbox"
    flash(f"Signed in as {who}.", "success")
    return redirect(url_for(".setup_address", setup_id=setup.token, _anchor="mailbox-kind"), 303)
