"""The intents admins define: a name, a description and the example phrases the classifier learns.

Saving or deleting an intent changes only what the next training sees: the live model
(`app.flows.intents`) is retrained when a flow is published.
"""
from __future__ import annotations

from sqlalchemy import select

from app.extensions import db
from app.flows import intents
from app.models._types import utcnow
from app.models.flows import Intent

MAX_EXAMPLES = 1000
MAX_EXAMPLE_LENGTH = 500


def parse_examples(text: str) -> list[str]:
    """One example per line, trimmed, without duplicates. Raises `ValueError`."""
    out, seen = [], set()
    for line in (text or "").splitlines():
        line = " ".join(line.split())
        if not line or line.casefold() in seen:
            continue
        if len(line) > MAX_EXAMPLE_LENGTH:
            raise ValueError(f"An example may have at most {MAX_EXAMPLE_LENGTH} characters.")
        seen.add(line.casefold())
        out.append(line)
    if len(out) > MAX_EXAMPLES:
        raise ValueError(f"An intent may have at most {MAX_EXAMPLES} examples.")
    return out


def save_intent(intent_id: int | None, name: str, description: str, examples_text: str) -> Intent:
    """Create or change an intent. Raises `ValueError` (name empty, taken or "unknown"; bad examples)."""
    name = intents.normalise_name(name)
    if not name:
        raise ValueError("Give the intent a name.")
    if name == intents.UNKNOWN:
        raise ValueError("“unknown” is what Pigeonhole says when no intent fits; choose another name.")
    examples = parse_examples(examples_text)
    if len(examples) < intents.MIN_EXAMPLES:
        raise ValueError(f"Write at least {intents.MIN_EXAMPLES} example phrases, one per line.")
    clash = db.session.scalar(select(Intent).where(Intent.name == name))
    if clash is not None and clash.id != intent_id:
        raise ValueError("An intent with this name exists already.")
    intent = db.session.get(Intent, intent_id) if intent_id else None
    if intent_id and intent is None:
        raise LookupError(intent_id)
    if intent is None:
        intent = Intent(name=name)
        db.session.add(intent)
    intent.name, intent.description, intent.examples = name, (description or "").strip(), examples
    intent.updated_at = utcnow()
    db.session.flush()
    return intent


def delete_intent(intent_id: int) -> None:
    intent = db.session.get(Intent, intent_id)
    if intent is None:
        raise LookupError(intent_id)
    db.session.delete(intent)
