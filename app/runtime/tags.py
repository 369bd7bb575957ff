"""A conversation's tags: one normal form and one writer, for agents and flows alike.

A tag is trimmed, its inner spaces folded to one, lower-cased ("Refund " and "refund" are one
tag) and at most `MAX_TAG` characters. `set_tags` writes `Conversation.tags` (shown on the page)
and the `conversation_tags` rows (the inbox's filter) together.
"""
from __future__ import annotations

from sqlalchemy import delete, func, select

from app.extensions import db
from app.models.inbox import Conversation
from app.models.organize import ConversationTag

MAX_TAG = 50
MAX_TAGS = 20


class TagError(ValueError):
    """A tag that cannot be kept; the message says why, in the user's words."""


def normal_tag(value: str) -> str:
    """The tag's normal form ("" for nothing); raises `TagError` when longer than `MAX_TAG`."""
    tag = " ".join((value or "").split()).lower().strip(",")
    if len(tag) > MAX_TAG:
        raise TagError(f"A tag may have at most {MAX_TAG} characters.")
    return tag


def set_tags(conversation: Conversation, tags: list[str]) -> tuple[list[str], list[str]]:
    """Give the conversation exactly these tags (normalised, duplicates dropped, order kept).
    Returns (added, removed). Raises `TagError` for a tag too long or too many tags."""
    wanted = list(dict.fromkeys(t for t in (normal_tag(v) for v in tags) if t))
    if len(wanted) > MAX_TAGS:
        raise TagError(f"A conversation may have at most {MAX_TAGS} tags.")
    before = list(conversation.tags or [])
    added = [t for t in wanted if t not in before]
    removed = [t for t in before if t not in wanted]
    if not added and not removed and before == wanted:
        return [], []
    conversation.tags = wanted
    if conversation.id is None:
        db.session.flush()
    if removed:
        db.session.execute(delete(ConversationTag).where(ConversationTag.conversation_id == conversation.id,
                                                         ConversationTag.tag.in_(removed)))
    for tag in added:
        db.session.merge(ConversationTag(conversation_id=conversation.id, tag=tag))
    return added, removed


def add_tags(conversation: Conversation, tags: list[str]) -> list[str]:
    """Add tags to those the conversation has; returns the ones that were new."""
    added, _ = set_tags(conversation, [*(conversation.tags or []), *tags])
    return added


def known_tags(prefix: str = "", limit: int = 20) -> list[str]:
    """Tags in use that start with `prefix`, most used first (the suggestions while an agent types one).
    A range on the (tag, conversation) index, not LIKE, so that only the matching entries are read."""
    try:
        prefix = normal_tag(prefix)
    except TagError:
        return []
    query = select(ConversationTag.tag).group_by(ConversationTag.tag)
    if prefix:
        query = query.where(ConversationTag.tag >= prefix, ConversationTag.tag < prefix + "\U0010ffff")
    return list(db.session.scalars(query.order_by(func.count().desc(), ConversationTag.tag).limit(limit)))
