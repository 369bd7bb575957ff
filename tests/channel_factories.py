"""Factories for the email channel tests: domains, addresses (through the wizard service), conversations."""
from __future__ import annotations

import itertools

from app.channels import addresses, domains, wizard
from app.extensions import db
from app.models.channels import Domain, EmailAddress
from app.models.inbox import Contact, Conversation

_seq = itertools.count(1)


def make_domain(name: str | None = None) -> Domain:
    domain = domains.create_domain(name or f"custom{next(_seq)}.test")
    db.session.commit()
    return domain


def platform_values(local: str = "help", **overrides) -> dict:
    values = {"address": local, "display_name": "Acme Help", "forwarded_from": "help@acme.example",
              "usage": "both", "send_vcard": False, "enabled": True}
    values.update(overrides)
    return values


def custom_values(address: str, **overrides) -> dict:
    values = {"address": address, "display_name": "Acme Support", "username": "", "usage": "both",
              "send_vcard": False, "enabled": True, "incoming_protocol": "imap", "incoming_host": "imap.example.net",
              "incoming_port": None, "incoming_security": "ssl", "outgoing_host": "smtp.example.net",
              "outgoing_port": None, "outgoing_security": "starttls"}
    values.update(overrides)
    return values


def make_address(user, domain: Domain | None = None, values: dict | None = None, password: str | None = "secret-pw",
                 header_html: str = "", footer_html: str = "") -> EmailAddress:
    """Create an address the way the wizard does (step 1, design, save) and commit it."""
    domain = domain or domains.ensure_platform_domain()
    setup = wizard.start_setup(domain.id, user.id)
    if values is None:
        values = platform_values(f"help{next(_seq)}") if domain.kind == "platform" else \
            custom_values(f"box{next(_seq)}@{domain.name}")
    wizard.update_address_step(setup, values, password if domain.kind == "custom" else None)
    if header_html or footer_html:
        wizard.update_design_step(setup, True)
        if header_html:
            wizard.set_template_part(setup, "header", header_html)
        if footer_html:
            wizard.set_template_part(setup, "footer", footer_html)
    address, _ = addresses.save_setup(setup)
    db.session.commit()
    return address


def make_conversation(address: EmailAddress, subject: str = "Where is my parcel?") -> Conversation:
    contact = Contact(email=f"customer{next(_seq)}@example.com", name="Carol Customer")
    conversation = Conversation(address=address, contact=contact, token=f"tok{next(_seq):017d}", subject=subject)
    db.session.add(conversation)
    db.session.commit()
    return conversation
