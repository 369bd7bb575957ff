"""Standard Responses in the composer: the placeholder values of a draft, and the picker's preview.

The picker and "insert" fill a response's placeholders with the same values, the ones of the
draft's conversation (its customer and address) or, for New Mail, of the draft's first To
recipient; the agent is the signed-in user. The preview is the filled response as plain text,
its paragraphs kept, so what the agent reads in the list is what Append inserts.
"""
from __future__ import annotations

from email.utils import getaddresses

from app.inbox.recipients import parse_addresses
from app.mail.html import html_to_text
from app.models.inbox import Draft
from app.models.auth import User
from app.responses import services as responses

#: How much of a response the picker shows (characters of its text).
PREVIEW_CHARS = 140


def draft_values(draft: Draft, agent: User) -> dict[str, str]:
    """Every placeholder's value for a response inserted in `draft` by `agent`."""
    name = email = ""
    address, conversation_id = None, None
    if draft.conversation is not None:
        name, email = draft.conversation.contact.name, draft.conversation.contact.email
        address, conversation_id = draft.conversation.address, draft.conversation.id
    else:
        first = parse_addresses(draft.to_addrs or "")
        if first.addresses:
            name, email = getaddresses(first.addresses[:1])[0]
    return responses.placeholder_values(name, email, agent, address=address, conversation_id=conversation_id)


def preview_paragraphs(response, values: dict[str, str], limit: int = PREVIEW_CHARS) -> list[str]:
    """The filled response as its first paragraphs of text, cut (with "…") after `limit` characters."""
    _subject, html = responses.render_response(response, values)
    paragraphs, used = [], 0
    for block in html_to_text(html).split("\n"):
        block = " ".join(block.split())
        if not block:
            continue
        if used + len(block) > limit:
            paragraphs.append(block[:max(limit - used, 1)].rstrip() + "…")
            break
        paragraphs.append(block)
        used += len(block)
    return paragraphs
