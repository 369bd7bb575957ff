"""What the workspace knows about a customer: the contact panel beside a conversation, and the
contact page where supervisors and admins edit it.

The organisation is the contact's own override, else the domain of their address, unless that
is a free-mail domain (gmail.com, outlook.com, …: `FREE_MAIL_DOMAINS`), which says nothing about
who they work for. The customer's other conversations are only those the viewer may see
(`app.inbox.access.visibility_filter`). The caller commits.
"""
from __future__ import annotations

from dataclasses import dataclass
from email.utils import parseaddr

from typing import NamedTuple

from sqlalchemy import text

from app.extensions import db
from app.inbox.access import VISIBLE_SQL, InvalidAction, NotAllowed, NotFound, get_conversation, get_user
from app.models._types import ordered_columns
from app.models.auth import Role, User
from app.models.inbox import Contact

#: Domains of free mail services: an address there names no organisation.
FREE_MAIL_DOMAINS = frozenset({
    "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "hotmail.co.uk", "live.com", "msn.com",
    "yahoo.com", "yahoo.co.uk", "yahoo.fr", "ymail.com", "aol.com", "icloud.com", "me.com", "mac.com",
    "proton.me", "protonmail.com", "gmx.com", "gmx.de", "gmx.net", "web.de", "mail.com", "zoho.com",
    "yandex.com", "yandex.ru", "mail.ru", "fastmail.com", "hey.com", "tutanota.com", "orange.fr", "free.fr",
    "qq.com", "163.com",
})

#: How many of the customer's other conversations the panel lists.
OTHER_CONVERSATIONS = 20


def domain_organization(email: str) -> str:
    """The organisation an address names: its domain, or "" for a free-mail domain."""
    domain = email.rpartition("@")[2].strip().lower()
    if not domain or domain in FREE_MAIL_DOMAINS:
        return ""
    return domain


def organization_of(contact) -> str:
    """The organisation of a `Contact` (or anything with its `organization` and `email`)."""
    return (contact.organization or "").strip() or domain_organization(contact.email)


def extra_addresses(contact) -> list[str]:
    return [a for a in (contact.extra_addresses or "").split() if a]


def may_edit_contacts(user: User) -> bool:
    return user.has_role(Role.SUPERVISOR)


class OtherConversation(NamedTuple):
    id: int
    subject: str
    status: str


@dataclass
class ContactPanel:
    contact: object  # a `Contact`, or the conversation page's `ContactView` (id, name, email, notes, ...)
    organization: str
    addresses: list[str]
    others: list[OtherConversation]
    may_edit: bool


#: The contact's conversations that are not merged, newest first, but one (`exclude`, or 0), all or
#: (`VISIBLE_SQL`) those the user may see. SQL text, built once: see `app.inbox.lists.INBOX_SQL`.
_OTHERS = ("SELECT id, subject, status FROM conversations WHERE contact_id = :contact_id AND merged_into_id IS NULL "
           "AND id <> :exclude{} ORDER BY last_message_at DESC, id DESC LIMIT :limit")
OTHERS_SQL = {everyone: ordered_columns(text(_OTHERS.format("" if everyone else " AND " + VISIBLE_SQL.format(c=""))),
                                        "id subject status") for everyone in (False, True)}


def others_visible(user: User, contact_id: int, exclude: int | None = None) -> list[OtherConversation]:
    """The contact's conversations `user` may see, newest first (not `exclude`, nor merged ones)."""
    rows = db.session.execute(OTHERS_SQL[user.has_role(Role.SUPERVISOR)], {
        "contact_id": contact_id, "exclude": exclude or 0, "user_id": user.id, "limit": OTHER_CONVERSATIONS})
    return [OtherConversation(*r) for r in rows]


def contact_panel(user: User | int, conversation_id: int, contact=None) -> ContactPanel:
    """The contact panel of a conversation `user` may see; raises `NotFound`. `contact`: the conversation's
    contact when the caller has read it and checked that the user may see the conversation (the
    conversation page's `ContactView`): no second look-up."""
    user = get_user(user)
    if contact is None:
        contact = get_conversation(user, conversation_id).contact
    return ContactPanel(contact, organization_of(contact), [contact.email] + extra_addresses(contact),
                        others_visible(user, contact.id, exclude=conversation_id), may_edit_contacts(user))


def get_contact(user: User | int, contact_id: int) -> Contact:
    """The contact, if `user` may see one of its conversations (supervisors: any); raises `NotFound`."""
    user = get_user(user)
    contact = db.session.get(Contact, contact_id)
    if contact is None or (not user.has_role(Role.SUPERVISOR) and not others_visible(user, contact_id)):
        raise NotFound("contact")
    return contact


def _addresses(value: str, own: str) -> str:
    seen, bad = [], []
    for raw in value.replace(",", "\n").replace(";", "\n").split():
        address = parseaddr(raw)[1].strip().lower()
        local, _, domain = address.rpartition("@")
        if not local or "." not in domain or address != raw.strip().lower():
            bad.append(raw)
        elif address != own and address not in seen:
            seen.append(address)
    if bad:
        raise InvalidAction("These are not email addresses: " + ", ".join(bad[:5]) + ". Write one address a line.")
    return "\n".join(seen)


def update_contact(actor: User | int, contact_id: int, *, name: str, extra: str, organization: str,
                   notes: str) -> Contact:
    """Edit a contact (supervisors and admins). Raises `NotFound`, `NotAllowed`, `InvalidAction` (with
    every field's problem; nothing is changed then)."""
    actor = get_user(actor)
    contact = get_contact(actor, contact_id)
    if not may_edit_contacts(actor):
        raise NotAllowed("Only supervisors and admins can edit a contact.")
    problems = []
    name, organization = (name or "").strip(), (organization or "").strip()
    if len(name) > 200:
        problems.append("Name: at most 200 characters.")
    if len(organization) > 200:
        problems.append("Organisation: at most 200 characters.")
    if len(notes or "") > 20_000:
        problems.append("Notes: at most 20,000 characters.")
    try:
        extra = _addresses(extra or "", contact.email)
    except InvalidAction as exc:
        problems.append(str(exc))
    if problems:
        raise InvalidAction(" ".join(problems))
    contact.name, contact.extra_addresses, contact.organization = name, extra, organization
    contact.notes = (notes or "").replace("\r\n", "\n").strip()
    return contact
