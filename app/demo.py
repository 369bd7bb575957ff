"""The demo data `flask demo seed` creates. Idempotent: running it twice changes nothing.

Later issues extend `seed()` with what their features need in the demo.
"""
from __future__ import annotations

from flask import current_app
from sqlalchemy import select

from app.auth.services import create_user, ensure_queue
from app.channels.services import ensure_platform_domain
from app.extensions import db
from app.flows.services import ensure_flow
from app.models.auth import Role, User
from app.models.flows import Flow

DEMO_USERS = [
    ("admin@demo.test", Role.ADMIN, "Ada Admin"),
    ("supervisor@demo.test", Role.SUPERVISOR, "Sam Supervisor"),
    ("agent@demo.test", Role.AGENT, "Alex Agent"),
]


def seed() -> list[str]:
    """Create what is missing; return one line per thing created."""
    created = []
    password = current_app.config["DEMO_PASSWORD"]
    users = {}
    for email, role, name in DEMO_USERS:
        user = db.session.scalar(select(User).where(User.email == email))
        if user is None:
            user = create_user(email, password, role, name)
            created.append(f"user {email} ({role.value})")
        users[email] = user
    ensure_queue("General", members=[users["agent@demo.test"], users["supervisor@demo.test"]])
    ensure_platform_domain()
    from app.flows.examples import seed_demo as seed_flows  # flows (issue 7)

    created += seed_flows(users)
    created += _seed_channel(users["admin@demo.test"])
    return created


DEMO_HEADER = ('<p style="font-weight:bold;color:#2458c6">{{ display_name }}</p>'
               '<p>Hello {{ customer_name }},</p>')
DEMO_FOOTER = ('<p>{{ agent_name }}, {{ display_name }}<br>'
               'Reference {{ conversation_reference }} · <a href="mailto:support@demo.test">support@demo.test</a></p>')


def _seed_channel(admin: User) -> list[str]:
    """A published, enabled platform address `support@<platform domain>`, forwarded from support@demo.test,
    with a header and footer, served by the demo flow that routes by intent (published too)."""
    from app.channels.services import publish, touch_draft
    from app.mail.html import sanitize_html
    from app.models.channels import EmailAddress

    from app.flows.examples import DEMO_FLOW

    domain = ensure_platform_domain()
    flow = db.session.scalar(select(Flow).where(Flow.name == DEMO_FLOW))
    name = f"support@{domain.name}"
    if db.session.scalar(select(EmailAddress).where(EmailAddress.address == name)) is not None:
        return []
    address = EmailAddress(domain=domain, address=name, display_name="Demo Support", usage="both", enabled=True,
                           send_vcard=True, forwarded_from="support@demo.test", template_enabled=True,
                           header_html=sanitize_html(DEMO_HEADER), footer_html=sanitize_html(DEMO_FOOTER),
                           flow_id=flow.id)
    db.session.add(address)
    db.session.flush()
    touch_draft(address)
    publish(admin.id, "Demo setup: the support address and its flow", address_ids=[address.id],
            flow_ids=[flow.id] if flow.published_at is None else [])
    return [f"address {name} (published, forwarded from support@demo.test)"]
