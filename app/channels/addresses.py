"""Email addresses: their draft, its published snapshot, saving the wizard, archive and delete, mailbox status.

An `EmailAddress` row's columns are the admin's draft, and only the admin's draft:
`save_setup()` writes a closed wizard into it (creating, restoring or updating the
address) and `snapshot()` is what publishing (`app.publish`) stores as its published
version, which live mail reads through `app.runtime.live`, so an unpublished edit
never changes live traffic. Passwords are encrypted at rest (`app.crypto`) and travel
in the snapshot encrypted.

Delete: an address with conversations, messages or received raw mail is archived
(kept, readable, no longer live, its published version dropped), since nothing
received is ever lost; any other address is erased. Either way it stops receiving
and sending at once, without a publish.

Services raise `AddressError` (`AddressLimitReached` when saving a new address on a full
custom domain) and flush but never commit: the caller commits.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, exists, select, update
from sqlalchemy.exc import IntegrityError

from app.channels.connection_test import connection_fingerprint, connection_key
from app.channels.domains import check_room_for_address
from app.channels.errors import AddressError
from app.channels.sign_in import keep_tokens
from app.channels.wizard import WIZARD_FIELDS, address_values, check_unique, setup_complete
from app.crypto import decrypt_secret
from app.extensions import begin_nested, db
from app.models._types import utcnow
from app.models.channels import AddressSetup, Domain, DomainKind, EmailAddress, MailboxState
from app.models.inbound import InboundRaw
from app.models.inbox import Conversation, Draft, Message
from app.runtime.live import published_addresses
from app.runtime.poll import pollable

#: The draft columns that make up a published snapshot.
SNAPSHOT_FIELDS = (
    "address", "display_name", "usage", "send_vcard", "enabled", "when_disabled", "template_enabled", "header_html",
    "footer_html", "forwarded_from", "username", "incoming_protocol", "incoming_host", "incoming_port",
    "incoming_security", "outgoing_host", "outgoing_port", "outgoing_security", "use_reply_to_identity",
    "channel_sessions", "flow_id", "auth_method", "oauth_provider", "tls_ca_pem", "smtp_username", "save_to_sent",
    "allow_plaintext_auth", "smtp_no_auth",
)


def snapshot(address: EmailAddress) -> dict:
    """The draft as a JSON-able dict (what publishing stores)."""
    data = {name: getattr(address, name) for name in SNAPSHOT_FIELDS}
    data["domain_kind"] = address.domain.kind
    # The encrypted password travels in the snapshot so a draft password edit is not live either.
    data["password_encrypted"] = address.password_encrypted.decode("ascii") if address.password_encrypted else None
    data["smtp_password_encrypted"] = address.smtp_password_encrypted.decode("ascii") \
        if address.smtp_username and address.smtp_password_encrypted else None
    return data


def get_address(address_id: int) -> EmailAddress | None:
    return db.session.get(EmailAddress, address_id)


def has_history(address: EmailAddress) -> bool:
    """True when conversations, stored messages or received raw mail refer to the address
    (it must then be archived, not erased: nothing received is ever lost)."""
    return bool(db.session.scalar(select(
        exists().where(Conversation.address_id == address.id) | exists().where(Message.address_id == address.id)
        | exists().where(InboundRaw.address_id == address.id))))


def archive_address(address: EmailAddress) -> None:
    """Keep the row (and its conversations) but take it out of live traffic at once."""
    address.archived_at = utcnow()
    address.published = None  # restoring it later must not bring back an old published version
    address.live_address = None
    # `published_at` stays: it was live once, so a restored address reads "Unpublished changes", not
    # "Never published" (app/models/channels.py `publish_state`).
    db.session.execute(delete(AddressSetup).where(AddressSetup.address_id == address.id))
    db.session.flush()


def delete_address(address_id: int) -> str:
    """Delete an address: "archived" when it has conversations or messages, otherwise "deleted".

    Either way it stops receiving and sending immediately (no publish needed).
    Raises `AddressError` for an unknown or already archived address.
    """
    address = db.session.get(EmailAddress, address_id, with_for_update=True)
    if address is None:
        raise AddressError("This email address no longer exists.")
    if address.archived_at is not None:
        raise AddressError(f"{address.address} is already archived.")
    if has_history(address):
        archive_address(address)
        return "archived"
    db.session.execute(update(Draft).where(Draft.from_address_id == address.id).values(from_address_id=None))
    db.session.execute(delete(AddressSetup).where(AddressSetup.address_id == address.id))
    db.session.execute(delete(MailboxState).where(MailboxState.address_id == address.id))
    try:
        with begin_nested():
            db.session.delete(address)
            db.session.flush()
    except IntegrityError:
        # Something else we do not know about still refers to it: keep it, archived.
        address = db.session.get(EmailAddress, address_id)
        archive_address(address)
        return "archived"
    return "deleted"


@dataclass(frozen=True)
class MailboxStatus:
    last_success_at: datetime | None
    last_poll_at: datetime | None
    last_error: str | None


def mailbox_status(address_ids: list[int]) -> dict[int, MailboxStatus]:
    """Last successful poll and last error per address, from the inbound side's `MailboxState` rows."""
    out: dict[int, MailboxStatus] = {}
    if not address_ids:
        return out
    rows = db.session.scalars(select(MailboxState).where(MailboxState.address_id.in_(address_ids)))
    for row in rows:
        seen = out.get(row.address_id)
        success = max((t for t in (row.last_success_at, seen and seen.last_success_at) if t), default=None)
        poll = max((t for t in (row.last_poll_at, seen and seen.last_poll_at) if t), default=None)
        error = row.last_error or (seen.last_error if seen else None)
        out[row.address_id] = MailboxStatus(success, poll, error)
    return out


def polling_ids() -> set[int]:
    """The ids of the addresses whose published version polls a mailbox (they get a "Poll now" button); a
    disabled one that holds new mail polls it too."""
    return {a.id for a in published_addresses("custom", holding=True) if pollable(a)}


def _fingerprint(address: EmailAddress) -> str:
    """What a Test Connection of the address's current draft would prove (`connection_fingerprint`)."""
    return connection_fingerprint(address_values(address), decrypt_secret(address.password_encrypted) or "",
                                  decrypt_secret(address.smtp_password_encrypted) or "")


def save_setup(setup: AddressSetup) -> tuple[EmailAddress, str]:
    """Write the wizard into the address's draft and close the wizard.

    Returns (address, what) with what in "created", "updated", "restored",
    "unchanged". Raises `AddressError` (incomplete, taken) or `AddressLimitReached`.
    """
    if not setup_complete(setup):
        raise AddressError("Fill in the Email Address step first.")
    domain = db.session.get(Domain, setup.domain_id, with_for_update=True)  # serialise the limit check
    values = dict(setup.values)
    restore = check_unique(values["address"], setup)
    if setup.address_id is None:
        check_room_for_address(domain)
        address = restore or EmailAddress(domain=domain)
        if restore is None:
            db.session.add(address)
        what = "restored" if restore is not None else "created"
    else:
        address = setup.address
        if address is None or address.archived_at is not None:
            raise AddressError("This email address no longer exists or is archived.")
        what = "updated"
    before = snapshot(address) if what == "updated" else None
    old_connection = connection_key(address_values(address), address.password_encrypted,
                                    address.smtp_password_encrypted) if what == "updated" else None
    # A restored address keeps its last Test Connection outcome when its servers, logins and passwords (typed
    # again, so compared by fingerprint) are the ones it had.
    old_fingerprint = _fingerprint(address) if what == "restored" else None

    for key in WIZARD_FIELDS:
        if key in values:
            setattr(address, key, values[key])
    if setup.password_encrypted:
        address.password_encrypted = setup.password_encrypted
    if setup.smtp_password_encrypted:
        address.smtp_password_encrypted = setup.smtp_password_encrypted
    if not address.smtp_username or address.smtp_no_auth:
        address.smtp_password_encrypted = None  # signs in to SMTP as the mailbox, or not at all
    if restore is not None:
        address.archived_at = None
        address.domain = domain
    db.session.flush()
    keep_tokens(setup, address)

    new_connection = connection_key(address_values(address), address.password_encrypted,
                                    address.smtp_password_encrypted)
    result = setup.test_result
    tested = result and domain.kind == DomainKind.CUSTOM.value and result.get("fingerprint") == connection_fingerprint(
        address_values(address), decrypt_secret(address.password_encrypted) or "",
        decrypt_secret(address.smtp_password_encrypted) or "")
    if tested:
        address.last_test_ok = bool(result["ok"])
        address.last_test_at = datetime.fromisoformat(result["at"])
        address.last_test_message = result.get("summary")
    elif what == "restored" and old_fingerprint == _fingerprint(address):
        pass
    elif old_connection != new_connection:
        address.last_test_ok = address.last_test_at = address.last_test_message = None

    if what != "updated" or snapshot(address) != before:
        address.touch_draft()
    elif what == "updated":
        what = "unchanged"
    db.session.delete(setup)
    db.session.flush()
    return address, what
