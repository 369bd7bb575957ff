"""Operational jobs."""
from app.ops.services import ping as ping_service
from jobs import app_context


def ping() -> dict:
    """Proves the path queue → worker → app context → database; returns what it saw."""
    with app_context():
        return ping_service()
