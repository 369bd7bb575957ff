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
    general = ensure_queue("General", members=[users["agent@demo.test"], users["supervisor@demo.test"]])
    ensure_platform_domain()
    ensure_flow("Route to default queue", "Every new conversation goes to the General queue.")
    from app.inbox.demo import seed_workspace

    created += seed_workspace(users["agent@demo.test"], general)
    return created
