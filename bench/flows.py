"""Benchmark: what experience flows add per conversation, with 50 rules and a trained intent model.

    .venv/bin/python bench/flows.py [--conversations 400] [--splits 5] [--database-url postgresql://...]

Prints:

* intent accuracy on held-out examples: the demo intents' phrases
  (app/demo/flows.py) split 75/25 per intent, several random splits;
* in-memory cost per conversation: intent classification of subject + visible body
  plus evaluation of a 50-rule flow (the matching rules sit at the end, so all 50
  are looked at; regex, contains, sender, intent and business-hours conditions);
* end-to-end cost of `runner.run_flow` per conversation on SQLite: loading the
  conversation, published configuration, blocklist, classification, evaluation,
  queue + least-loaded assignment and the run log row, committed.

Goal (`GOAL_MS`): flows add under 10 ms p95 per conversation. Runs on a throwaway
SQLite database in a temporary folder (or the empty database of `--database-url`); needs no
Redis (no automatic mail is sent).
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.demo.flows import DEMO_INTENTS  # noqa: E402

GOAL_MS = 10.0


def split(seed: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    rng = random.Random(seed)
    train, test = [], []
    for name, (_, examples) in DEMO_INTENTS.items():
        shuffled = examples[:]
        rng.shuffle(shuffled)
        k = max(1, len(shuffled) // 4)
        test += [(t, name) for t in shuffled[:k]]
        train += [(t, name) for t in shuffled[k:]]
    return train, test


def accuracy(splits: int, threshold: float) -> tuple[list[float], list[float], float]:
    from app.flows import intents

    accs, covered, train_seconds = [], [], []
    for seed in range(splits):
        train, test = split(seed)
        started = time.perf_counter()
        clf = intents.Classifier(intents.train(train))
        train_seconds.append(time.perf_counter() - started)
        right = sum(clf.predict(t, 0.0)[0] == label for t, label in test)
        above = [clf.predict(t, threshold) for t, _ in test]
        accs.append(right / len(test))
        covered.append(sum(label != intents.UNKNOWN for label, _ in above) / len(test))
    return accs, covered, statistics.median(train_seconds)


def fifty_rules(queue_ids: dict[str, int], general_id: int) -> list[dict]:
    """45 rules that do not match ordinary mail, then one per intent, then a catch-all: 50 in all."""
    rules = []
    for i in range(45):
        kind = i % 5
        if kind == 0:
            cond = [{"type": "sender", "values": [f"partner{i}.example", f"vip{i}@corp.example"]}]
        elif kind == 1:
            cond = [{"type": "subject", "op": "matches", "value": rf"\b(order|invoice)\s*#?{1000 + i}\b"}]
        elif kind == 2:
            cond = [{"type": "body", "op": "contains", "value": f"campaign code X{i}"}]
        elif kind == 3:
            cond = [{"type": "subject", "op": "contains", "value": f"[ticket-{i}]"},
                    {"type": "has_attachments", "value": True}]
        else:
            cond = [{"type": "business_hours", "queue_id": general_id, "value": False},
                    {"type": "body", "op": "matches", "value": rf"(?i)urgent.{{0,40}}escalat\w+ {i}"}]
        rules.append({"name": f"Special {i}", "match": "all", "conditions": cond,
                      "actions": [{"type": "add_tags", "tags": [f"special-{i}"]}]})
    for intent, queue_id in queue_ids.items():
        rules.append({"name": intent, "conditions": [{"type": "intent", "value": intent, "min_confidence": 0.5}],
                      "actions": [{"type": "set_queue", "queue_id": queue_id}, {"type": "assign", "mode": "least_loaded"},
                                  {"type": "add_tags", "tags": [intent]}]})
    rules.append({"name": "Everything else", "actions": [{"type": "set_queue", "queue_id": general_id},
                                                         {"type": "assign", "mode": "least_loaded"}]})
    assert len(rules) == 50
    return rules


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--conversations", type=int, default=400)
    parser.add_argument("--splits", type=int, default=5)
    parser.add_argument("--database-url", help="an empty database to run in (default: a new SQLite file)")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="pigeonhole-bench-"))
    os.environ.setdefault("PIGEONHOLE_INSTANCE", str(tmp))
    from app import create_app
    from app.extensions import db

    app = create_app({"SQLALCHEMY_DATABASE_URI": args.database_url or f"sqlite:///{tmp / 'bench.db'}", "SECRET_KEY": "bench",
                      "BLOB_DIR": str(tmp / "blobs"), "REDIS_URL": "redis://127.0.0.1:1/0",
                      "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000"})
    with app.app_context():
        threshold = app.config["INTENT_MIN_CONFIDENCE"]
        accs, covered, train_s = accuracy(args.splits, threshold)
        n_test = len(split(0)[1])
        print(f"intent accuracy on held-out examples ({args.splits} random 75/25 splits, {n_test} held out each, "
              f"{len(DEMO_INTENTS)} intents): mean {statistics.mean(accs):.1%}, "
              f"min {min(accs):.1%}, max {max(accs):.1%}")
        print(f"  share of held-out mail above the {threshold:.0%} threshold (not \"unknown\"): "
              f"{statistics.mean(covered):.1%}; training takes {train_s * 1000:.0f} ms")

        db.create_all()
        from app.auth.services import create_user
        from app.publish.services import publish_addresses
        from app.flows import editing, engine, intents, publishing, runner
        from app.flows.routing import Calendar
        from app.models.auth import Queue
        from app.models.channels import Domain, EmailAddress
        from app.models.flows import Intent
        from app.models.inbox import Contact, Conversation, Message
        from app.mail.tokens import new_conversation_token

        train, test = split(0)
        for name in DEMO_INTENTS:
            db.session.add(Intent(name=name, examples=[t for t, label in train if label == name]))
        agents = [create_user(f"agent{i}@bench.test", "pw", "agent", f"Agent {i}") for i in range(6)]
        for agent in agents:
            agent.email_capacity = 15
        queues = {name: Queue(name=name.title(), members=agents[:3] if i % 2 else agents[3:])
                  for i, name in enumerate(DEMO_INTENTS)}
        general = Queue(name="General", members=agents)
        db.session.add_all([*queues.values(), general])
        db.session.flush()
        flow = editing.create_flow("Bench flow")
        for rule in fifty_rules({k: q.id for k, q in queues.items()}, general.id):
            editing.add_rule(flow.id, rule)
        publishing.publish_flows([flow.id], None)
        domain = Domain(name="mail.pigeonhole.test", kind="platform")
        address = EmailAddress(domain=domain, address="support@mail.pigeonhole.test", display_name="Support",
                               flow_id=flow.id)
        db.session.add(address)
        db.session.flush()
        publish_addresses([address.id], None, "bench")
        db.session.commit()

        rng = random.Random(7)
        texts = [t for t, _ in test]
        mails = []
        for i in range(args.conversations):
            body = rng.choice(texts)
            mails.append((f"Re: {body[:40]}", f"{body}\n\nThanks,\nCustomer {i}\n\nOn Mon, 2 Mar 2026, Support wrote:\n"
                                              f"> Hello, how can we help?\n> Regards\n"))

        # 1. In memory: classification + 50-rule evaluation.
        rules = flow.published_rules
        calendars = {general.id: Calendar.of(general)}
        intents.classify("warm up", "warm up")
        memory_ms = []
        for subject, body in mails:
            started = time.perf_counter()
            intent, confidence = intents.classify(subject, body)
            facts = engine.Facts(sender=f"c{rng.random()}@example.com", recipients=frozenset({address.address}),
                                 subject=subject, body=body, intent=intent, intent_confidence=confidence,
                                 calendars=calendars, now=datetime.now(timezone.utc))
            plan = engine.evaluate(rules, facts, 0.05)
            memory_ms.append((time.perf_counter() - started) * 1000)
            assert plan.matched
        total = sum(memory_ms) / 1000
        print(f"in memory, classify + evaluate 50 rules: {len(mails) / total:,.0f} conversations/s, "
              f"p50 {statistics.median(memory_ms):.2f} ms, p95 {pct(memory_ms, 95):.2f} ms, "
              f"max {max(memory_ms):.2f} ms")

        # 2. End to end: runner.run_flow on stored conversations, committed.
        conv_ids = []
        for i, (subject, body) in enumerate(mails):
            contact = Contact(email=f"customer{i}@example.com", name=f"Customer {i}")
            conv = Conversation(address_id=address.id, contact=contact, token=new_conversation_token(),
                                subject=subject)
            db.session.add(Message(conversation=conv, address_id=address.id, direction="in",
                                   from_addr=contact.email, to_addrs=address.address, subject=subject, text=body))
            db.session.flush()
            conv_ids.append(conv.id)
        db.session.commit()
        from sqlalchemy import event

        statements = [0]

        def count(*_args):
            statements[0] += 1

        event.listen(db.engine, "before_cursor_execute", count)
        run_ms = []
        started_all = time.perf_counter()
        for conv_id in conv_ids:
            started = time.perf_counter()
            run = runner.run_flow(conv_id)
            db.session.commit()
            run_ms.append((time.perf_counter() - started) * 1000)
            assert run.outcome == "ran", run.notes
        elapsed = time.perf_counter() - started_all
        event.remove(db.engine, "before_cursor_execute", count)
        commit_ms = []
        for _ in range(50):
            started = time.perf_counter()
            db.session.execute(db.text("UPDATE flows SET description = description"))
            db.session.commit()
            commit_ms.append((time.perf_counter() - started) * 1000)
        routed = db.session.query(Conversation).filter(Conversation.assignee_id.is_not(None)).count()
        label = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}.get(db.engine.dialect.name, db.engine.dialect.name)
        print(f"end to end, runner.run_flow on {label} (commit included): {len(conv_ids) / elapsed:,.0f} "
              f"conversations/s, p50 {statistics.median(run_ms):.2f} ms, p95 {pct(run_ms, 95):.2f} ms, "
              f"max {max(run_ms):.2f} ms; {routed}/{len(conv_ids)} assigned within capacity; "
              f"{statements[0] / len(conv_ids):.1f} SQL statements per conversation; "
              f"a bare one-row {label} commit here takes p50 {statistics.median(commit_ms):.2f} ms")
        p95 = pct(memory_ms, 95)
        print(f"goal: flows add < {GOAL_MS:.0f} ms p95 per conversation -> in memory {p95:.2f} ms "
              f"({p95 / GOAL_MS:.0%} of the budget), end to end {pct(run_ms, 95):.2f} ms "
              f"({pct(run_ms, 95) / GOAL_MS:.0%} of the budget)")


if __name__ == "__main__":
    main()
