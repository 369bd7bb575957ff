"""A seeded history for the reports and the dashboard: conversations and messages with known times.

`seed_history(start, days)` writes conversations (created, first agent reply, resolved) spread over
the days from `start` with a fixed pseudo-random sequence, stores their messages, and fills the
facts by the backfill; it returns the plain list of what it wrote (`Seeded`), from which the tests
compute the expected figures on their own.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone

from app.extensions import db
from app.models.inbox import Conversation
from app.runtime.backfill import backfill
from tests.factories import make_address, make_conversation, make_message, make_queue, make_user


@dataclass
class Seeded:
    id: int
    queue: str
    agent: str | None
    address: str
    created: datetime
    replied: datetime | None
    resolved: datetime | None


def seed_history(start, days: int, per_day: int = 6, seed: int = 17) -> list[Seeded]:
    rng = random.Random(seed)
    queues = [make_queue("Billing"), make_queue("Returns")]
    agents = [make_user("agent", name="Ann Agent"), make_user("agent", name="Bob Agent")]
    addresses = [make_address("billing@mail.pigeonhole.test"), make_address("help@mail.pigeonhole.test")]
    seeded = []
    base = datetime.combine(start, time.min, timezone.utc)
    for day in range(days):
        for _ in range(per_day):
            created = base + timedelta(days=day, minutes=rng.randrange(0, 24 * 60 - 1))
            queue, address = rng.choice(queues), rng.choice(addresses)
            agent = rng.choice(agents + [None])
            replied = created + timedelta(minutes=rng.randrange(1, 600)) if agent is not None else None
            resolved = (replied + timedelta(hours=rng.randrange(1, 72))) if replied and rng.random() < 0.7 else None
            conversation = make_conversation(queue=queue, address=address, assignee=agent, when=created,
                                             status="resolved" if resolved else "open")
            make_message(conversation, direction="in", when=created)
            if replied is not None:
                make_message(conversation, direction="out", when=replied, author=agent)
            if resolved is not None:
                row = db.session.get(Conversation, conversation.id)
                row.status_at = resolved
                db.session.commit()
            seeded.append(Seeded(conversation.id, queue.name, agent.name if agent else None, address.address,
                                 created, replied, resolved))
    backfill()
    return seeded
