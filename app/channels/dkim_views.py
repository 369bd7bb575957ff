"""Channels › DKIM Configuration: add (Generate or paste), publish the shown record, Verify Domain, Make active.

Plain forms with redirects (PRG); the checks of a domain (SPF, DMARC, MX, besides the DKIM
status stored by Verify Domain) are looked up when the page shows that domain
(`?domain=...`). Services: `app.runtime.dkim`. Private keys are never shown again.
"""
from __future__ import annotations

from flask import abort, flash, redirect, request, url_for

from app.channels.forms import DkimKeyForm
from app.channels.views import bp
from app.extensions import db
from app.models.dkim import DkimKey
from app.runtime import dkim
from app.web import render


def _key_or_404(key_id: int) -> DkimKey:
    return db.session.get(DkimKey, key_id) or abort(404)


@bp.route("/dkim/")
def dkim_index():
    keys = dkim.keys_of()
    domains = sorted({k.domain for k in keys})
    records = {k.id: dkim.record_of(k) for k in keys}
    shown = (request.args.get("domain") or "").lower()
    checks = dkim.dns_checks(shown) if shown in domains else []
    return render("channels/dkim.html", keys=keys, domains=domains, records=records, shown=shown, checks=checks)


@bp.route("/dkim/new", methods=["GET", "POST"])
def dkim_new():
    form = DkimKeyForm()
    if request.method == "GET":
        form.domain.data = form.domain.data or request.args.get("domain") or dkim.platform_domain()
        form.selector.data = dkim.next_selector(form.domain.data)
    if form.validate_on_submit():
        generate = "generate" in request.form
        if not generate and not (form.private_key.data or "").strip():
            form.private_key.errors.append("Paste a private key in PEM format, or press Generate.")
        else:
            try:
                key = dkim.add_key(form.domain.data, form.selector.data, None if generate else form.private_key.data)
            except dkim.DkimError as exc:
                db.session.rollback()
                target = form.private_key if "key" in str(exc).lower() and "selector" not in str(exc) else form.selector
                if "domain name" in str(exc):
                    target = form.domain
                target.errors.append(str(exc))
            else:
                db.session.commit()
                flash(f"Key {key.selector} for {key.domain} added. Publish the record below, then press Verify Domain.")
                return redirect(url_for("channels.dkim_index", domain=key.domain, _anchor=f"key-{key.id}"))
    return render("channels/dkim_new.html", form=form, status=422 if request.method == "POST" else 200)


@bp.route("/dkim/<int:key_id>/verify", methods=["POST"])
def dkim_verify(key_id: int):
    key = _key_or_404(key_id)
    check = dkim.verify_key(key)
    db.session.commit()
    flash(f"{check.name}: {check.status}. {check.detail}")
    return redirect(url_for("channels.dkim_index", domain=key.domain, _anchor=f"key-{key.id}"))


@bp.route("/dkim/<int:key_id>/activate", methods=["POST"])
def dkim_activate(key_id: int):
    key = _key_or_404(key_id)
    try:
        dkim.make_active(key)
    except dkim.DkimError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        db.session.commit()
        flash(f"{key.selector}._domainkey.{key.domain} signs the mail of {key.domain} from now on.")
    return redirect(url_for("channels.dkim_index", domain=key.domain))


@bp.route("/dkim/<int:key_id>/delete", methods=["POST"])
def dkim_delete(key_id: int):
    key = _key_or_404(key_id)
    domain = key.domain
    try:
        dkim.delete_key(key)
    except dkim.DkimError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        db.session.commit()
        flash(f"Key {key.selector} of {domain} deleted.")
    return redirect(url_for("channels.dkim_index", domain=domain))
