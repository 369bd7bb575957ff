"""The rule engine on its own: every condition and action, first-match order, "always", the regex time limit."""
from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest

from app.flows import engine
from app.flows.engine import Facts, RuleError, evaluate, normalise_rule
from app.flows.routing import Calendar


def rule(name, conditions=(), actions=({"type": "add_tags", "tags": ["x"]},), **kw):
    return normalise_rule({"name": name, "conditions": list(conditions), "actions": list(actions), **kw})


def facts(**kw):
    base = dict(sender="carol@shop.example.com", recipients=frozenset({"support@mail.pigeonhole.test"}),
                subject="Refund for order 42", body="I was charged twice.\nThanks", has_attachments=False,
                intent="billing", intent_confidence=0.8, is_new_customer=True,
                now=datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc))
    base.update(kw)
    return Facts(**base)


def matches(cond, **kw) -> bool:
    return engine.rule_matches(rule("r", [cond]), facts(**kw))


def test_sender_address_and_domain_including_subdomains():
    assert matches({"type": "sender", "values": ["carol@shop.example.com"]})
    assert matches({"type": "sender", "values": ["example.com"]})  # subdomain of the domain
    assert matches({"type": "sender", "values": ["@shop.example.com"]})
    assert not matches({"type": "sender", "values": ["other.com", "bob@shop.example.com"]})
    assert not matches({"type": "sender", "values": ["ample.com"]})  # not a suffix on a label boundary


def test_recipient_condition():
    assert matches({"type": "recipient", "values": ["support@mail.pigeonhole.test"]})
    assert not matches({"type": "recipient", "values": ["sales@mail.pigeonhole.test"]})


def test_subject_and_body_contains_is_case_insensitive():
    assert matches({"type": "subject", "op": "contains", "value": "REFUND"})
    assert not matches({"type": "subject", "op": "contains", "value": "parcel"})
    assert matches({"type": "body", "op": "contains", "value": "charged TWICE"})
    assert not matches({"type": "body", "op": "contains", "value": "refund"})


def test_regular_expressions():
    assert matches({"type": "subject", "op": "matches", "value": r"order\s+\d+"})
    assert matches({"type": "body", "op": "matches", "value": r"^thanks$"}) is False  # no MULTILINE
    assert matches({"type": "body", "op": "matches", "value": r"(?m)^thanks$"})
    assert not matches({"type": "subject", "op": "matches", "value": r"^order"})


def test_has_attachments_new_customer_intent_and_confidence():
    assert matches({"type": "has_attachments", "value": True}, has_attachments=True)
    assert not matches({"type": "has_attachments", "value": True})
    assert matches({"type": "has_attachments", "value": False})
    assert matches({"type": "new_customer", "value": True})
    assert not matches({"type": "new_customer", "value": True}, is_new_customer=False)
    assert matches({"type": "intent", "value": "billing", "min_confidence": 0.75})
    assert not matches({"type": "intent", "value": "billing", "min_confidence": 0.85})
    assert not matches({"type": "intent", "value": "delivery"})


def test_business_hours_condition_uses_the_queue_calendar():
    berlin = Calendar("Europe/Berlin", {"mon": [["09:00", "17:00"]]})
    cond_in = {"type": "business_hours", "queue_id": 7, "value": True}
    cond_out = {"type": "business_hours", "queue_id": 7, "value": False}
    # Monday 10:00 UTC = 11:00 in Berlin: open.
    assert matches(cond_in, calendars={7: berlin}) and not matches(cond_out, calendars={7: berlin})
    # Monday 16:30 UTC = 17:30 in Berlin: closed.
    late = datetime(2026, 3, 2, 16, 30, tzinfo=timezone.utc)
    assert matches(cond_out, calendars={7: berlin}, now=late)
    # A deleted queue: no match, and the plan says why.
    plan = evaluate([rule("r", [cond_in])], facts(calendars={}))
    assert plan.matched == [] and "no longer exists" in plan.notes[0]


def test_language_is_detected_lazily_and_only_once():
    calls = []

    def detect(text):
        calls.append(text)
        return "fr"

    f = facts(detect_language=detect)
    plan = evaluate([rule("en", [{"type": "language", "values": ["en"]}]),
                     rule("fr", [{"type": "language", "values": ["fr", "de"]}])], f)
    assert plan.matched[0]["name"] == "fr" and len(calls) == 1
    f2 = facts(detect_language=detect)
    evaluate([rule("no language", [{"type": "subject", "op": "contains", "value": "refund"}])], f2)
    assert len(calls) == 1  # nobody asked: never detected


def test_match_any_versus_all():
    conds = [{"type": "subject", "op": "contains", "value": "refund"},
             {"type": "subject", "op": "contains", "value": "parcel"}]
    assert not engine.rule_matches(rule("all", conds, match="all"), facts())
    assert engine.rule_matches(rule("any", conds, match="any"), facts())


def test_first_match_wins_and_the_always_rule_runs_after_it():
    rules = engine.order_rules([
        rule("Always tag", actions=[{"type": "add_tags", "tags": ["seen"]}], always=True),
        rule("Delivery", [{"type": "subject", "op": "contains", "value": "parcel"}],
             [{"type": "set_queue", "queue_id": 1}]),
        rule("Billing", [{"type": "intent", "value": "billing"}], [{"type": "set_queue", "queue_id": 2}]),
        rule("Refund too", [{"type": "subject", "op": "contains", "value": "refund"}],
             [{"type": "set_queue", "queue_id": 3}]),
    ])
    assert [r["name"] for r in rules][-1] == "Always tag"
    plan = evaluate(rules, facts())
    assert [m["name"] for m in plan.matched] == ["Billing", "Always tag"]
    assert [(a["type"], a.get("queue_id"), a.get("tags")) for a in plan.actions] == [
        ("set_queue", 2, None), ("add_tags", None, ["seen"])]


def test_stop_skips_the_always_rule_and_the_rest_of_the_actions_order_is_canonical():
    r = rule("Spam", [{"type": "sender", "values": ["example.com"]}],
             [{"type": "stop"}, {"type": "set_status", "status": "closed"}, {"type": "add_tags", "tags": ["spam"]}])
    assert [a["type"] for a in r["actions"]] == ["add_tags", "set_status", "stop"]
    plan = evaluate([r, rule("Always", always=True)], facts())
    assert plan.stopped and [m["name"] for m in plan.matched] == ["Spam"]
    assert [a["type"] for a in plan.actions] == ["add_tags", "set_status", "stop"]


def test_no_conditions_is_a_catch_all_and_no_rule_matching_gives_an_empty_plan():
    assert evaluate([rule("Catch all")], facts()).matched[0]["name"] == "Catch all"
    plan = evaluate([rule("Never", [{"type": "sender", "values": ["nobody.test"]}])], facts())
    assert plan.matched == [] and plan.actions == [] and not plan.stopped


def test_every_action_normalises():
    r = rule("All actions", actions=[
        {"type": "set_queue", "queue_id": "3"}, {"type": "set_priority", "priority": "2"},
        {"type": "add_tags", "tags": ["VIP", " vip ", "refund"]},
        {"type": "assign", "mode": "last_agent", "fallback": False},
        {"type": "auto_reply", "response_id": "9"}, {"type": "set_status", "status": "resolved"}, {"type": "stop"}])
    assert r["actions"] == [
        {"type": "set_queue", "queue_id": 3}, {"type": "set_priority", "priority": 2},
        {"type": "add_tags", "tags": ["vip", "refund"]}, {"type": "assign", "mode": "last_agent", "fallback": False},
        {"type": "auto_reply", "response_id": 9}, {"type": "set_status", "status": "resolved"}, {"type": "stop"}]
    assert rule("a", actions=[{"type": "assign", "mode": "agent", "user_id": "4"}])["actions"][0]["user_id"] == 4


@pytest.mark.parametrize("data, field", [
    ({"name": "", "actions": [{"type": "stop"}]}, "name"),
    ({"name": "x", "actions": []}, "actions"),
    ({"name": "x", "actions": [{"type": "stop"}, {"type": "stop"}]}, "actions"),
    ({"name": "x", "conditions": [{"type": "subject", "op": "matches", "value": "(unclosed"}],
      "actions": [{"type": "stop"}]}, "subject"),
    ({"name": "x", "conditions": [{"type": "subject", "op": "matches", "value": "a" * 501}],
      "actions": [{"type": "stop"}]}, "subject"),
    ({"name": "x", "conditions": [{"type": "sender", "values": ["not an address"]}],
      "actions": [{"type": "stop"}]}, "sender"),
    ({"name": "x", "conditions": [{"type": "intent", "value": "billing", "min_confidence": 2}],
      "actions": [{"type": "stop"}]}, "min_confidence"),
    ({"name": "x", "conditions": [{"type": "business_hours"}], "actions": [{"type": "stop"}]}, "business_hours"),
    ({"name": "x", "conditions": [{"type": "language", "values": ["french"]}], "actions": [{"type": "stop"}]},
     "language"),
    ({"name": "x", "actions": [{"type": "set_status", "status": "gone"}]}, "status"),
    ({"name": "x", "actions": [{"type": "assign", "mode": "agent"}]}, "assign"),
    ({"name": "x", "actions": [{"type": "teleport"}]}, "type"),
])
def test_invalid_rules_are_refused_at_save_with_the_field(data, field):
    with pytest.raises(RuleError) as info:
        normalise_rule(data)
    assert field in info.value.errors


def test_only_one_always_rule():
    with pytest.raises(RuleError):
        engine.order_rules([rule("a", always=True), rule("b", always=True)])


def test_a_catastrophic_regex_is_abandoned_within_the_time_limit():
    evil = rule("Evil", [{"type": "body", "op": "matches", "value": r"(a|aa)+$"}],
                [{"type": "set_queue", "queue_id": 1}])
    fallback = rule("Fallback", actions=[{"type": "set_queue", "queue_id": 2}])
    f = facts(body="a" * 5000 + "!")
    started = time.perf_counter()
    plan = evaluate([evil, fallback], f, timeout=0.05)
    elapsed = time.perf_counter() - started
    assert elapsed < 1.0, elapsed  # without the limit this search runs for ages
    assert [m["name"] for m in plan.matched] == ["Fallback"]
    assert "took longer than 50 ms" in plan.notes[0]
