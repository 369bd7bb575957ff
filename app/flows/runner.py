"""Running a flow on a conversation: the intent, the published rules' actions, routing, the run log.

`run_flow(conversation_id)` is what the `flows` queue runs after a new inbound
message was stored (jobs.flows.run_flow). For the first message of a conversation:

1. the address's live configuration (`published_address`) names the flow; an
   unpublished or disabled address runs nothing;
2. a sender on the address's Email Blocklist (`app.flows.blocklist`) runs nothing and
   is not assigned (the mail stays stored and visible);
3. the intent classifier labels subject + visible body (intent and confidence
   stored on the conversation);
4. the engine evaluates the published rules (first match, then "always") and the
   actions are applied: queue, priority, tags, assignment, automatic reply, status;
   when no flow or no rule set a queue, the default queue (`queues.default_queue`) takes it;
5. the queue's acknowledgement goes out unless an automatic reply just did.

A reply in an existing conversation goes back to its agent when they have room
(otherwise it waits in the queue) and may be acknowledged; rules do not run again.
Every run is written to `FlowRun` (the run log), once per message. Automatic replies
and acknowledgements go through `app.flows.automatic`, whose safety rules may refuse
them; the run log says why.
"""
from __future__ import annotations

import time
from datetime import datetime
from email.utils import getaddresses, parseaddr

from flask import current_app
from sqlalchemy import select

from app.extensions import db
from app.flows import automatic, blocklist, engine, intents, queues, routing
from app.mail.senderauth import sender_authentication
from app.mail.subjects import reply_subject
from app.models._types import utcnow
from app.models.auth import Queue, User
from app.models.flows import Flow, FlowRun
from app.models.inbox import Attachment, Conversation, Message
from app.models.responses import StandardResponse
from app.runtime.changes import publish_change
from app.runtime.live import published_address
from app.runtime import sla
from app.runtime.tags import TagError, add_tags
from app.runtime import facts
from app.runtime.trail import record_event


def detect_language(text: str) -> str | None:
    """The text's language (ISO 639-1), or None for too little text; asked only by a language condition."""
    import py3langid  # numpy and a language model, loaded only in processes that run a language condition

    text = (text or "").strip()[:2000]
    if len(text) < 3:
        return None
    lang, _score = py3langid.classify(text)
    return lang


def _sender_of(message: Message | None, conversation: Conversation) -> str:
    addr = parseaddr(message.from_addr or "")[1] if message else ""
    return (addr or conversation.contact.email).strip().lower()


def facts_for(conversation: Conversation, message: Message | None, address_email: str,
              rules: list[dict] | None = None) -> engine.Facts:
    """The facts the conditions look at. Facts that cost a query are gathered only when a rule asks."""
    needed = {c.get("type") for r in (rules or []) for c in r.get("conditions") or []} if rules is not None \
        else set(engine.CONDITION_TYPES)
    recipients = {address_email.lower()}
    if message is not None:
        recipients |= {a.lower() for _, a in getaddresses([message.to_addrs or "", message.cc_addrs or ""]) if a}
    has_attachments = "has_attachments" in needed and message is not None and db.session.scalar(
        select(Attachment.id).where(Attachment.message_id == message.id, Attachment.inline.is_(False)).limit(1)
    ) is not None
    is_new = False
    if "new_customer" in needed:
        is_new = db.session.scalar(select(Conversation.id).where(
            Conversation.contact_id == conversation.contact_id, Conversation.id != conversation.id,
            Conversation.created_at <= conversation.created_at).limit(1)) is None
    calendars = {}
    queue_ids = {c.get("queue_id") for r in (rules or []) for c in r.get("conditions") or []
                 if c.get("type") == "business_hours"} if rules is not None else None
    if queue_ids is None or queue_ids:
        query = select(Queue) if queue_ids is None else select(Queue).where(Queue.id.in_(queue_ids))
        calendars = {q.id: routing.Calendar.of(q) for q in db.session.scalars(query)}
    return engine.Facts(
        sender=_sender_of(message, conversation),
        recipients=frozenset(recipients),
        subject=(message.subject if message else "") or conversation.subject or "",
        body=(message.text if message else "") or "",
        has_attachments=has_attachments,
        intent=conversation.intent,
        intent_confidence=conversation.intent_confidence or 0.0,
        is_new_customer=is_new,
        now=(message.created_at if message else None) or utcnow(),
        sender_auth=sender_authentication(message.auth_dmarc, message.auth_lookalike) if message else "none",
        calendars=calendars,
        detect_language=detect_language,
    )


def _apply(conversation: Conversation, plan: engine.Plan, now: datetime, name: str = "") -> tuple[list[dict], bool]:
    """Carry out the plan's actions; (log entries, whether an automatic reply was queued). Each action
    that changed the conversation leaves a line in its trail, by "Automation" (`app.runtime.trail`)."""
    done: list[dict] = []
    replied = False

    def trail(kind: str, words: str, **data) -> None:
        record_event(conversation.id, kind, f"Automation ({name}) {words}" if name else f"Automation {words}",
                     when=now, **data)

    for action in plan.actions:
        kind = action["type"]
        if kind == "set_queue":
            queue = db.session.get(Queue, action["queue_id"])
            if queue is None:
                done.append({"action": "set queue", "result": "the queue no longer exists"})
                continue
            if conversation.queue_id != queue.id:
                trail("transfer", f"transferred to {queue.name}", queue_id=queue.id, before=conversation.queue_id)
            conversation.queue_id = queue.id
            conversation.queue = queue
            done.append({"action": "set queue", "result": queue.name})
        elif kind == "set_priority":
            if conversation.priority != action["priority"]:
                trail("priority", f"set the priority to {engine.PRIORITIES.get(action['priority'], '')}",
                      priority=action["priority"], before=conversation.priority)
            conversation.priority = action["priority"]
            done.append({"action": "set priority", "result": engine.PRIORITIES.get(action["priority"], "")})
        elif kind == "add_tags":
            try:
                added = add_tags(conversation, action["tags"])
            except TagError as exc:
                done.append({"action": "add tags", "result": f"not added: {exc}"})
                continue
            if added:
                trail("tags", "added the tags " + ", ".join(added), added=added)
            done.append({"action": "add tags", "result": ", ".join(action["tags"])})
        elif kind == "assign":
            before = conversation.assignee_id
            result = _assign(conversation, action, now)
            if conversation.assignee_id != before:
                trail("assign", result, assignee_id=conversation.assignee_id, before=before)
            done.append({"action": "assign", "result": result})
        elif kind == "auto_reply":
            response = db.session.get(StandardResponse, action["response_id"])
            if response is None:
                done.append({"action": "automatic reply", "result": "the Standard Response no longer exists"})
                continue
            subject = response.subject or reply_subject(conversation.subject)
            try:
                message = automatic.queue_automatic_reply(conversation.id, subject, response.body, "auto_reply")
            except automatic.AutomaticMailRefused as exc:
                done.append({"action": "automatic reply", "result": f"not sent: {exc}"})
                continue
            replied = True
            trail("automation", f"sent the automatic reply “{response.title}”", message_id=message.id)
            done.append({"action": "automatic reply",
                         "result": f"“{response.title}” queued (message {message.id})"})
        elif kind == "set_status":
            if conversation.status != action["status"]:
                trail("status", f"set the status to {action['status']}", status=action["status"],
                      before=conversation.status)
            conversation.status = action["status"]
            sla.status_changed(conversation, now)
            done.append({"action": "set status", "result": action["status"]})
        elif kind == "stop":
            done.append({"action": "stop", "result": "no further rules"})
    return done, replied


def _assign(conversation: Conversation, action: dict, now: datetime) -> str:
    mode = action.get("mode", "least_loaded")
    if mode == "agent":
        user = db.session.get(User, action.get("user_id"))
        if user is None:
            return "the agent no longer exists"
        if routing.try_assign(conversation, user.id, now):
            return f"assigned to {user.name or user.email}"
        return f"{user.name or user.email} has no room: waits in the queue"
    if mode == "last_agent":
        last = routing.last_agent_of(conversation)
        if last is not None:
            user = db.session.get(User, last)
            if user is not None and routing.try_assign(conversation, user.id, now):
                return f"assigned to the customer's last agent, {user.name or user.email}"
            if not action.get("fallback", True):
                return "the customer's last agent has no room: waits in the queue"
        elif not action.get("fallback", True):
            return "the customer has no last agent: waits in the queue"
    if conversation.queue_id is None:
        return "no queue set: not assigned"
    queue = conversation.queue or db.session.get(Queue, conversation.queue_id)
    if not routing.Calendar.of(queue).is_open(now):
        return f"outside {queue.name}'s business hours: waits in the queue"
    user = routing.assign_least_loaded(conversation, queue.id, now)
    if user is None:
        return f"nobody in {queue.name} has room: waits in the queue"
    return f"assigned to {user.name or user.email} (least loaded)"


def _pending_messages(conversation_id: int) -> list[Message]:
    """Inbound messages of the conversation that have not run through a flow yet, oldest first."""
    done = select(FlowRun.message_id).where(FlowRun.conversation_id == conversation_id,
                                            FlowRun.message_id.is_not(None))
    return list(db.session.scalars(select(Message).where(
        Message.conversation_id == conversation_id, Message.direction == "in", Message.id.not_in(done))
        .order_by(Message.created_at, Message.id)))


def run_flow(conversation_id: int, message_id: int | None = None) -> FlowRun | None:
    """Run the address's published flow on the conversation's inbound messages (see module doc).

    With `message_id`, on that message; otherwise on every inbound message that has
    not run yet, oldest first (so two messages stored before the job ran are both
    handled, the first as the new conversation). Idempotent per message: a message
    that already ran returns its earlier run, so a retried job sends nothing twice.
    Returns the last run, or None when the conversation does not exist or nothing
    was left to run. The caller commits.
    """
    conversation = db.session.get(Conversation, conversation_id)
    if conversation is None:
        return None
    if message_id is not None:
        message = db.session.get(Message, message_id)
        if message is None or message.conversation_id != conversation.id:
            return None
        earlier = db.session.scalar(select(FlowRun).where(FlowRun.message_id == message.id))
        if earlier is not None:
            return earlier
        run = _run_one(conversation, message)
        facts.synced(conversation)  # queue, intent, agent as routing left them
        return run
    pending = _pending_messages(conversation.id)
    if not pending:
        return None
    run = None
    for message in pending:
        run = _run_one(conversation, message)
    facts.synced(conversation)
    return run


def _run_one(conversation: Conversation, message: Message) -> FlowRun:
    started = time.perf_counter()
    now = message.created_at or utcnow()
    run = FlowRun(conversation_id=conversation.id, message_id=message.id,
                  outcome="ran", matched=[], actions=[], notes=[], created_at=utcnow())
    # The first message that went through a flow is the new conversation; later ones are replies.
    # (A message skipped while the address was not live, or blocked, did not go through one.)
    first = db.session.scalar(select(FlowRun.id).where(
        FlowRun.conversation_id == conversation.id, FlowRun.outcome.in_(("ran", "no_flow"))).limit(1)) is None
    address = published_address(conversation.address_id)
    sender = _sender_of(message, conversation)

    if address is None:
        run.outcome = "skipped"
        run.notes = ["the address is not published or is disabled: nothing ran"]
    elif blocklist.is_blocked(conversation.address_id, sender):
        run.outcome = "blocked"
        run.notes = [f"{sender} is on the Email Blocklist: no automation, not assigned"]
    elif not first:
        run.outcome = "reply"
        actions = [{"action": "route reply", "result": routing.route_reply(conversation, now)}]
        ack = automatic.send_acknowledgement(conversation)
        if ack:
            actions.append({"action": "acknowledge", "result": ack})
        run.actions = actions
    else:
        if conversation.intent is None:
            result = intents.classify(message.subject or conversation.subject, message.text or "")
            if result is not None:
                conversation.intent, conversation.intent_confidence = result[0], round(result[1], 4)
        flow = db.session.get(Flow, address.flow_id) if address.flow_id else None
        actions: list[dict] = []
        replied = False
        if flow is None or flow.published_rules is None:
            run.outcome = "no_flow"
            run.notes = ["no published flow is attached to this address"]
        else:
            run.flow_id, run.flow_name = flow.id, flow.name
            facts = facts_for(conversation, message, address.address, flow.published_rules)
            timeout = float(current_app.config.get("FLOW_REGEX_TIMEOUT_MS", 50)) / 1000
            plan = engine.evaluate(flow.published_rules, facts, timeout)
            run.matched = plan.matched
            run.notes = plan.notes
            actions, replied = _apply(conversation, plan, now, flow.name)
        if conversation.queue_id is None:
            fallback = queues.default_queue()
            conversation.queue_id, conversation.queue = fallback.id, fallback
            actions.append({"action": "default queue", "result": f"no flow set a queue: {fallback.name}"})
        if not replied:
            ack = automatic.send_acknowledgement(conversation)
            if ack:
                actions.append({"action": "acknowledge", "result": ack})
        run.actions = actions
    run.intent, run.intent_confidence = conversation.intent, conversation.intent_confidence
    if address is not None and address.flow_id and run.flow_id is None:
        flow = db.session.get(Flow, address.flow_id)
        run.flow_id, run.flow_name = (flow.id, flow.name) if flow else (None, "")
    sla.refresh(conversation)  # the queue, priority and tags a flow set choose the SLA policy
    run.duration_ms = round((time.perf_counter() - started) * 1000, 2)
    db.session.add(run)
    db.session.flush()
    publish_change(conversation.id, "routed")  # its queue and assignee, on the agents' pages once committed
    return run


def runs_of(conversation_id: int) -> list[FlowRun]:
    """The run log of a conversation, oldest first."""
    return list(db.session.scalars(select(FlowRun).where(FlowRun.conversation_id == conversation_id)
                                   .order_by(FlowRun.created_at, FlowRun.id)))
