"""The flow rule engine: pure evaluation of a flow's rules against the facts of one conversation.

No database and no Flask here: `evaluate(rules, facts)` returns a `Plan` (which rules
matched, which actions to run, warnings), and `app.flows.runner.run_flow` carries
the plan out. That keeps evaluation fast (bench/flows.py) and testable on its own.

Rules
-----
A flow is an ordered list of rule dicts (stored as JSON on `Flow.rules` / `Flow.published_rules`)::

    {"id": "3f9c01aa", "name": "Refunds to Billing", "always": false, "match": "all",
     "conditions": [{"type": "intent", "value": "billing", "min_confidence": 0.6}, ...],
     "actions":    [{"type": "set_queue", "queue_id": 3}, {"type": "assign", "mode": "least_loaded"}, ...]}

The *first* ordinary rule whose conditions hold runs its actions; later ordinary rules
are not looked at. A rule with no conditions matches everything (a catch-all). One
optional rule may be marked ``"always": true``: it is kept last, has no conditions, and
runs on every conversation after the first match, unless that rule ran a ``stop``.
``match`` is ``"all"`` (every condition) or ``"any"`` (at least one).

Conditions (every one compares case-insensitively):

=================  ==========================================================================
``sender``         ``values``: addresses (``a@b.com``) or domains (``b.com``, subdomains too)
``recipient``      ``values``: same, against the To/Cc addresses and the receiving address
``subject``        ``op`` ``contains`` or ``matches`` (regular expression), ``value``
``body``           same, on the visible body text
``has_attachments`` ``value``: true / false
``intent``         ``value``: intent name, ``min_confidence`` 0..1
``new_customer``   ``value``: true (first conversation of this customer) / false
``business_hours`` ``queue_id``: whose calendar, ``value``: true (within) / false (outside)
``language``       ``values``: ISO 639-1 codes (detected from subject + body)
=================  ==========================================================================

Actions always run in this order, whatever order they were added in:
``set_queue`` (``queue_id``), ``set_priority`` (``priority``), ``add_tags`` (``tags``),
``assign`` (``mode``: ``least_loaded`` / ``last_agent`` / ``agent`` with ``user_id``;
``fallback``: for ``last_agent``, the least-loaded member when the last agent has no
room), ``auto_reply`` (``response_id`` of a Standard Response), ``set_status``
(``status``), ``stop``.

Regular expressions
-------------------
Patterns are compiled with the `regex` package when a rule is saved
(`check_pattern` raises `RuleError` for a bad one) and searched with its `timeout`
argument at run time: a pattern that backtracks catastrophically on some mail is
abandoned after `regex_timeout` seconds, counts as "no match", and the run log says
so. The text searched is capped too (`MAX_TEXT`), so the cost of a search is bounded
by the time limit, not by the pattern or the mail. (Python's `re` has no timeout and
cannot be interrupted from another thread; the `regex` engine checks its deadline
while it backtracks.)
"""
from __future__ import annotations

import functools
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

import regex

from app.models.organize import PRIORITIES  # one list of priorities for flows and agents

CONDITION_TYPES = ("sender", "recipient", "subject", "body", "has_attachments", "intent",
                   "new_customer", "business_hours", "language", "sender_auth")
#: "sender authentication" values (app.mail.senderauth.sender_authentication), with the editor's words
SENDER_AUTH = {"pass": "passed (DMARC pass)",
               "fail": "failed (DMARC fail, or a look-alike of our own domain)",
               "none": "not checked (no DMARC policy, or the DNS did not answer)"}
ACTION_TYPES = ("set_queue", "set_priority", "add_tags", "assign", "auto_reply", "set_status", "stop")
ASSIGN_MODES = ("least_loaded", "last_agent", "agent")
STATUSES = ("open", "pending", "resolved", "closed")
MAX_PATTERN = 500
MAX_TEXT = 100_000
DEFAULT_REGEX_TIMEOUT = 0.05  # seconds per search


class RuleError(ValueError):
    """A rule cannot be saved: `errors` maps a field name to what is wrong with it."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass
class Facts:
    """What the conditions look at, gathered once per conversation by the caller."""

    sender: str = ""
    recipients: frozenset[str] = frozenset()
    subject: str = ""
    body: str = ""
    has_attachments: bool = False
    intent: str | None = None
    intent_confidence: float = 0.0
    is_new_customer: bool = False
    now: datetime | None = None
    sender_auth: str = "none"  # pass / fail / none: the message's sender authentication
    #: queue id -> object with `is_open(datetime) -> bool` (app.flows.routing.Calendar)
    calendars: Mapping[int, object] = field(default_factory=dict)
    #: called at most once, only when a rule asks for the language
    detect_language: Callable[[str], str | None] | None = None
    _language: str | None = field(default=None, repr=False)
    _language_known: bool = field(default=False, repr=False)

    @property
    def language(self) -> str | None:
        if not self._language_known:
            self._language_known = True
            if self.detect_language is not None:
                self._language = self.detect_language(f"{self.subject}\n{self.body}")
        return self._language


@dataclass
class Plan:
    """The outcome of evaluating a flow: matched rules in order, actions to run, warnings."""

    matched: list[dict] = field(default_factory=list)  # [{"id", "name"}]
    actions: list[dict] = field(default_factory=list)  # action dicts, each with "rule" (id)
    notes: list[str] = field(default_factory=list)
    stopped: bool = False


# --- validation -------------------------------------------------------------------------------

def new_rule_id() -> str:
    return secrets.token_hex(4)


@functools.lru_cache(maxsize=1024)
def _compiled(pattern: str) -> regex.Pattern:
    return regex.compile(pattern, regex.IGNORECASE | regex.V0)


def check_pattern(pattern: str) -> regex.Pattern:
    """The compiled pattern. Raises `RuleError` when it is empty, too long or invalid."""
    if not pattern:
        raise RuleError({"pattern": "Enter a regular expression."})
    if len(pattern) > MAX_PATTERN:
        raise RuleError({"pattern": f"A regular expression may have at most {MAX_PATTERN} characters."})
    try:
        return _compiled(pattern)
    except regex.error as exc:
        raise RuleError({"pattern": f"This is not a valid regular expression: {exc}."}) from None


def _address_values(values, name: str) -> list[str]:
    out = []
    for raw in values or []:
        value = str(raw).strip().lower().lstrip("@")
        if not value:
            continue
        local, _, domain = value.rpartition("@")
        host = domain if "@" in value else value
        if "." not in host or " " in value or (value.count("@") > 1) or (local == "" and "@" in value):
            raise RuleError({name: f"“{raw}” is neither an email address nor a domain."})
        if value not in out:
            out.append(value)
    if not out:
        raise RuleError({name: "Enter at least one address or domain."})
    return out


def normalise_condition(cond: dict) -> dict:
    """A clean copy of one condition. Raises `RuleError`."""
    kind = cond.get("type")
    if kind not in CONDITION_TYPES:
        raise RuleError({"type": f"Unknown condition “{kind}”."})
    if kind in ("sender", "recipient"):
        return {"type": kind, "values": _address_values(cond.get("values"), kind)}
    if kind in ("subject", "body"):
        op = cond.get("op", "contains")
        value = str(cond.get("value") or "")
        if op not in ("contains", "matches"):
            raise RuleError({kind: f"Unknown comparison “{op}”."})
        if op == "matches":
            try:
                check_pattern(value)
            except RuleError as exc:
                raise RuleError({kind: exc.errors["pattern"]}) from None
        elif not value.strip():
            raise RuleError({kind: "Enter the text to look for."})
        return {"type": kind, "op": op, "value": value}
    if kind in ("has_attachments", "new_customer"):
        return {"type": kind, "value": bool(cond.get("value"))}
    if kind == "intent":
        name = str(cond.get("value") or "").strip().lower()
        if not name:
            raise RuleError({"intent": "Choose an intent."})
        try:
            confidence = float(cond.get("min_confidence", 0) or 0)
        except (TypeError, ValueError):
            raise RuleError({"min_confidence": "Enter a number between 0 and 1."}) from None
        if not 0 <= confidence <= 1:
            raise RuleError({"min_confidence": "Enter a number between 0 and 1."})
        return {"type": kind, "value": name, "min_confidence": confidence}
    if kind == "business_hours":
        if not cond.get("queue_id"):
            raise RuleError({"business_hours": "Choose the queue whose business hours count."})
        return {"type": kind, "queue_id": int(cond["queue_id"]), "value": bool(cond.get("value", True))}
    if kind == "sender_auth":
        value = str(cond.get("value") or "")
        if value not in SENDER_AUTH:
            raise RuleError({"sender_auth": "Choose passed, failed or not checked."})
        return {"type": kind, "value": value}
    # language
    codes = [str(v).strip().lower() for v in cond.get("values") or [] if str(v).strip()]
    if not codes or any(not (len(c) == 2 and c.isalpha()) for c in codes):
        raise RuleError({"language": "Enter two-letter language codes, such as en, fr, de."})
    return {"type": kind, "values": codes}


def normalise_action(action: dict) -> dict:
    """A clean copy of one action. Raises `RuleError`."""
    kind = action.get("type")
    if kind not in ACTION_TYPES:
        raise RuleError({"type": f"Unknown action “{kind}”."})
    if kind == "set_queue":
        if not action.get("queue_id"):
            raise RuleError({"queue": "Choose a queue."})
        return {"type": kind, "queue_id": int(action["queue_id"])}
    if kind == "set_priority":
        priority = int(action.get("priority", 0))
        if priority not in PRIORITIES:
            raise RuleError({"priority": "Choose a priority."})
        return {"type": kind, "priority": priority}
    if kind == "add_tags":
        tags = []
        for tag in action.get("tags") or []:
            tag = str(tag).strip().lower()
            if tag and tag not in tags:
                if len(tag) > 50:
                    raise RuleError({"tags": "A tag may have at most 50 characters."})
                tags.append(tag)
        if not tags:
            raise RuleError({"tags": "Enter at least one tag."})
        return {"type": kind, "tags": tags}
    if kind == "assign":
        mode = action.get("mode", "least_loaded")
        if mode not in ASSIGN_MODES:
            raise RuleError({"assign": f"Unknown assignment “{mode}”."})
        out = {"type": kind, "mode": mode}
        if mode == "agent":
            if not action.get("user_id"):
                raise RuleError({"assign": "Choose the agent."})
            out["user_id"] = int(action["user_id"])
        if mode == "last_agent":
            out["fallback"] = bool(action.get("fallback", True))
        return out
    if kind == "auto_reply":
        if not action.get("response_id"):
            raise RuleError({"auto_reply": "Choose a Standard Response."})
        return {"type": kind, "response_id": int(action["response_id"])}
    if kind == "set_status":
        if action.get("status") not in STATUSES:
            raise RuleError({"status": "Choose a status."})
        return {"type": kind, "status": action["status"]}
    return {"type": "stop"}


def normalise_rule(rule: dict) -> dict:
    """A clean, canonical copy of a rule (actions in run order). Raises `RuleError`."""
    name = str(rule.get("name") or "").strip()
    if not name:
        raise RuleError({"name": "Give the rule a name."})
    if len(name) > 200:
        raise RuleError({"name": "A rule name may have at most 200 characters."})
    always = bool(rule.get("always"))
    match = rule.get("match", "all")
    if match not in ("all", "any"):
        raise RuleError({"match": "Choose all or any."})
    conditions = [] if always else [normalise_condition(c) for c in rule.get("conditions") or []]
    actions = [normalise_action(a) for a in rule.get("actions") or []]
    kinds = [a["type"] for a in actions]
    if len(set(kinds)) != len(kinds):
        raise RuleError({"actions": "Each kind of action may appear once per rule."})
    if not actions:
        raise RuleError({"actions": "Choose at least one action."})
    actions.sort(key=lambda a: ACTION_TYPES.index(a["type"]))
    return {"id": str(rule.get("id") or new_rule_id()), "name": name, "always": always, "match": match,
            "conditions": conditions, "actions": actions}


def order_rules(rules: list[dict]) -> list[dict]:
    """Ordinary rules in their order, then the (single) always rule. Raises `RuleError` for two."""
    always = [r for r in rules if r.get("always")]
    if len(always) > 1:
        raise RuleError({"always": "A flow has at most one “always” rule."})
    return [r for r in rules if not r.get("always")] + always


# --- evaluation -------------------------------------------------------------------------------

def _domain_of(address: str) -> str:
    return address.rpartition("@")[2]


def _address_matches(address: str, values: list[str]) -> bool:
    if not address:
        return False
    domain = _domain_of(address)
    for value in values:
        if "@" in value:
            if address == value:
                return True
        elif domain == value or domain.endswith("." + value):
            return True
    return False


def _text_matches(text: str, cond: dict, timeout: float, notes: list[str], rule: dict) -> bool:
    text = text[:MAX_TEXT]
    if cond["op"] == "contains":
        return cond["value"].casefold() in text.casefold()
    try:
        return _compiled(cond["value"]).search(text, timeout=timeout) is not None
    except TimeoutError:
        notes.append(f"Rule “{rule.get('name')}”: the {cond['type']} regular expression took longer than "
                     f"{int(timeout * 1000)} ms and was treated as no match.")
        return False
    except regex.error as exc:  # a pattern stored before validation existed
        notes.append(f"Rule “{rule.get('name')}”: invalid regular expression ({exc}).")
        return False


def condition_holds(cond: dict, facts: Facts, timeout: float, notes: list[str], rule: dict) -> bool:
    kind = cond.get("type")
    if kind == "sender":
        return _address_matches(facts.sender, cond["values"])
    if kind == "recipient":
        return any(_address_matches(r, cond["values"]) for r in facts.recipients)
    if kind == "subject":
        return _text_matches(facts.subject, cond, timeout, notes, rule)
    if kind == "body":
        return _text_matches(facts.body, cond, timeout, notes, rule)
    if kind == "has_attachments":
        return facts.has_attachments == cond["value"]
    if kind == "intent":
        return facts.intent == cond["value"] and facts.intent_confidence >= cond.get("min_confidence", 0)
    if kind == "new_customer":
        return facts.is_new_customer == cond["value"]
    if kind == "business_hours":
        calendar = facts.calendars.get(cond["queue_id"])
        if calendar is None:
            notes.append(f"Rule “{rule.get('name')}”: its business-hours queue no longer exists.")
            return False
        return calendar.is_open(facts.now) == cond["value"]
    if kind == "language":
        return facts.language in cond["values"]
    if kind == "sender_auth":
        return facts.sender_auth == cond["value"]
    notes.append(f"Rule “{rule.get('name')}”: unknown condition “{kind}” ignored.")
    return False


def rule_matches(rule: dict, facts: Facts, timeout: float = DEFAULT_REGEX_TIMEOUT,
                 notes: list[str] | None = None) -> bool:
    notes = notes if notes is not None else []
    conditions = rule.get("conditions") or []
    if rule.get("always") or not conditions:
        return True
    results = (condition_holds(c, facts, timeout, notes, rule) for c in conditions)
    return any(results) if rule.get("match") == "any" else all(results)


def evaluate(rules: list[dict], facts: Facts, timeout: float = DEFAULT_REGEX_TIMEOUT) -> Plan:
    """Run the first matching rule and then the always rule (unless stopped) — as a `Plan`."""
    plan = Plan()
    ordinary = [r for r in rules if not r.get("always")]
    always = [r for r in rules if r.get("always")][:1]

    def take(rule: dict) -> None:
        plan.matched.append({"id": rule.get("id"), "name": rule.get("name")})
        for action in rule.get("actions") or []:
            plan.actions.append({**action, "rule": rule.get("id")})
            if action.get("type") == "stop":
                plan.stopped = True
                return

    for rule in ordinary:
        if rule_matches(rule, facts, timeout, plan.notes):
            take(rule)
            break
    if not plan.stopped:
        for rule in always:
            take(rule)
    return plan
