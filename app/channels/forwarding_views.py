"""Channels › Email › a platform address's "Forwarding": how to forward to it, whether mail came, confirmations.

The page (⋮ › Forwarding, and linked from the wizard's Review) gives short steps per provider
(Google Workspace / Gmail, Microsoft 365, any other) for forwarding the contact center's mailbox
to the platform address, the address's status read from inbound mail ("Forwarded mail seen from
… on …" / "Nothing received yet", `app.channels.forwarding`), and the provider's forwarding
confirmations that ingest kept (`app.runtime.forwarding`), with their link and code. Admins also
see pending confirmations in a banner on every page, each with Dismiss.
"""
from __future__ import annotations

from flask import abort, request, url_for
from flask_login import current_user

from app.channels import addresses
from app.channels.forwarding import dismiss_confirmation, forwarding_status
from app.channels.views import bp
from app.extensions import db
from app.models.auth import Role
from app.models.channels import DomainKind
from app.runtime.forwarding import pending_confirmations
from app.web import navigate, render, site_path


def _platform_address_or_404(address_id: int):
    address = addresses.get_address(address_id)
    if address is None or address.archived_at is not None or address.domain.kind != DomainKind.PLATFORM.value:
        abort(404)
    return address


@bp.route("/email/addresses/<int:address_id>/forwarding")
def forwarding(address_id: int):
    address = _platform_address_or_404(address_id)
    return render("channels/forwarding.html", address=address, target=address.live_address or address.address,
                  forwarding_status=forwarding_status([address.id])[address.id],
                  confirmations=pending_confirmations(address.id))


@bp.route("/email/forwarding-confirmations/<int:confirmation_id>/dismiss", methods=["POST"])
def dismiss_forwarding_confirmation(confirmation_id: int):
    try:
        row = dismiss_confirmation(confirmation_id, current_user.id)
    except LookupError:
        abort(404)
    back = site_path(request.form.get("next"), url_for(".forwarding", address_id=row.address_id))
    db.session.commit()
    return navigate(back, "Forwarding confirmation dismissed.", "info")


@bp.app_context_processor
def _forwarding_banner():
    """`forwarding_confirmations()` for the admins' banner on every page (templates/_forwarding_notices.html)."""
    def forwarding_confirmations():
        if not (current_user.is_authenticated and current_user.has_role(Role.ADMIN)):
            return []
        return pending_confirmations()

    return {"forwarding_confirmations": forwarding_confirmations}
