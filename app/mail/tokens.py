"""Our Message-IDs and the conversation token they carry.

Every message Pigeonhole sends gets a Message-ID of the form

    <ph.{conversation token}.{random}@{domain}>

so a customer's reply threads back to its conversation through In-Reply-To or
References even when our Message row is unknown to the receiving side (another
address, a restored database) or the client dropped part of the chain. The token is
opaque (random, stored on `Conversation.token`) and says nothing about the customer.
"""
from __future__ import annotations

import re
import secrets

_OURS = re.compile(r"<?ph\.([A-Za-z0-9_-]{8,40})\.[A-Za-z0-9_-]+@[^>\s]+>?")


def new_conversation_token() -> str:
    return secrets.token_urlsafe(15)  # 20 characters


def make_message_id(conversation_token: str, domain: str) -> str:
    return f"<ph.{conversation_token}.{secrets.token_urlsafe(12)}@{domain}>"


def tokens_in(*header_values: str | None) -> list[str]:
    """Conversation tokens found in Message-ID-bearing headers (In-Reply-To, References), newest first."""
    found: list[str] = []
    for value in header_values:
        if not value:
            continue
        for match in reversed(_OURS.findall(value)):
            if match not in found:
                found.append(match)
    return found
