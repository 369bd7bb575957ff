"""Poll jobs: fetch new mail of one custom-domain mailbox (IMAP or POP3) now."""
from __future__ import annotations

from app.runtime.poll import poll_address
from jobs import app_context


def poll_mailbox(address_id: int) -> dict:
    with app_context():
        return poll_address(address_id).as_dict()
