"""Channels › Email › an address's "Send test email": the form, and the test's delivery status.

The form (one Recipient, the admin's own address by default) queues a test email through
the normal outbound path (`app.runtime.outbound.queue_send_test`) and redirects (PRG) to
the test's page, whose status block refreshes itself over HTMX (`every 1s`) until the
status is final (sent, failed); the same URL with `HX-Request` answers that block alone.
Only a published address that may send can send a test; the page says why otherwise.
"""
from __future__ import annotations

from flask import abort, redirect, request, url_for
from flask_login import current_user

from app.channels import addresses
from app.channels.forms import SendTestForm
from app.channels.views import bp
from app.extensions import db
from app.mail.dkim import record_tags
from app.models.send_tests import SendTest
from app.runtime.outbound import (CannotSend, InvalidRecipient, cannot_send_reason, is_final, queue_send_test,
                                  recent_send_tests, tests_left)
from app.web import render


def _address_or_404(address_id: int):
    address = addresses.get_address(address_id)
    if address is None or address.archived_at is not None:
        abort(404)
    return address


@bp.route("/email/addresses/<int:address_id>/send-test", methods=["GET", "POST"])
def send_test(address_id: int):
    address = _address_or_404(address_id)
    form = SendTestForm()
    if request.method == "GET" and not form.recipient.data:
        form.recipient.data = current_user.email
    if form.validate_on_submit():
        try:
            test = queue_send_test(address.id, form.recipient.data, requested_by=current_user.id)
        except InvalidRecipient as exc:
            db.session.rollback()
            form.recipient.errors.append(str(exc))
        except CannotSend as exc:
            db.session.rollback()
            form.form_errors.append(str(exc))
        else:
            db.session.commit()
            return redirect(url_for(".send_test_status", test_id=test.id), 303)
    address = _address_or_404(address_id)  # again: a rollback above expired it
    left, again_at = tests_left(current_user.id)
    return render("channels/send_test.html", status=422 if request.method == "POST" else 200, form=form,
                  address=address, reason=cannot_send_reason(address.id), recent=recent_send_tests(address.id),
                  left=left, again_at=again_at)


@bp.route("/email/send-tests/<int:test_id>")
def send_test_status(test_id: int):
    test = db.session.get(SendTest, test_id) or abort(404)
    return render("channels/send_test_status.html", block="status", test=test, final=is_final(test.delivery_status),
                  address=addresses.get_address(test.address_id), signed_with=_signed_with(test.dkim_signature))


def _signed_with(signature: str | None) -> str | None:
    """`<selector>._domainkey.<domain>` of the DKIM-Signature a test was sent with, or None (unsigned)."""
    if not signature:
        return None
    tags = record_tags(signature.partition(":")[2])
    return f"{tags.get('s', '?')}._domainkey.{tags.get('d', '?')}"
