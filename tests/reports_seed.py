"""A seeded history for the reports and the dashboard: conversations and messages with known times.

`seed_history(start, days)` writes conversations (created, first agent reply, resolved, 0 to 2 tags)
spread over the days from `start` with a fixed pseudo-random sequence, stores their messages, gives the
Billing queue an SLA policy (`BILLING_FIRST_MINUTES` to the first response, `BILLING_RESOLUTION_MINUTES`
to resolution, always open) and fills the facts by the backfill; it returns the plain list of what it wrote (`Seeded`), from which the tests
compute the expected figures on their own.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone

from app.extensions import db
from app.flows.sla_policies import add_policy
from app.models.inbox import Conversation
from app.runtime.backfill import backfill
from app.runtime.tags import set_tags
from tests.factories import make_address, make_conversation, make_message, make_queue, make_user


#: The Billing queue's SLA policy (Returns has none), in minutes of an always-open calendar.
BILLING_FIRST_MINUTES = 240
BILLING_RESOLUTION_MINUTES = 24 * 60
TAGS = ("refund", "vip", "damaged")


@dataclass
class Seeded:
    id: int
    queue: str
    agent: str | None
    address: str
    created: datetime
    replied: datetime | None
    resolved: datetime | None
    tags: tuple[str, ...] = ()


def seed_history(start, days: int, per_day: int = 6, seed: int = 17) -> list[Seeded]:
    rng = random.Random(seed)
    queues = [make_queue("Billing"), make_queue("Returns")]
    add_policy(queues[0].id, name="Billing", priority=None, tag=None, first_response_minutes=BILLING_FIRST_MINUTES,
               next_response_minutes=None, resolution_minutes=BILLING_RESOLUTION_MINUTES, warning_minutes=None)
    db.session.commit()
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
            tags = tuple(rng.sample(TAGS, rng.randrange(0, 3)))
            conversation = make_conversation(queue=queue, address=address, assignee=agent, when=created,
                                             status="resolved" if resolved else "open")
            if tags:
                set_tags(conversation, list(tags))
                db.session.commit()
            make_message(conversation, direction="in", when=created)
            if replied is not None:
                make_message(conversation, direction="out", when=replied, author=agent)
            if resolved is not None:
                row = db.session.get(Conversation, conversation.id)
                row.status_at = resolved
                db.session.commit()
            seeded.append(Seeded(conversation.id, queue.name, agent.name if agent else None, address.address,
                                 created, replied, resolved, tags))
    backfill()
    return seeded


def sla_expected(seeded) -> dict:
    """(first measured, first met, resolution measured, resolution met) of some seeded conversations, from the
    Billing policy alone: every Billing conversation is long past its due times, so each is measured."""
    billing = [s for s in seeded if s.queue == "Billing"]
    first_met = [s for s in billing if s.replied and s.replied - s.created < timedelta(minutes=BILLING_FIRST_MINUTES)]
    resolution_met = [s for s in billing
                      if s.resolved and s.resolved - s.created < timedelta(minutes=BILLING_RESOLUTION_MINUTES)]
    return {"first_response_measured": len(billing), "first_response_met": len(first_met),
            "resolution_measured": len(billing), "resolution_met": len(resolution_met)}
