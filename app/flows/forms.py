"""Forms of the flow editor, intents, queues and the Email Blocklist.

`RuleForm` is a fixed set of optional condition and action fields; `rule_from_form`
turns it into the engine's rule dict (only the filled-in ones), and
`form_from_rule` fills it back for editing.
"""
from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (BooleanField, IntegerField, SelectField, SelectMultipleField, StringField,
                     TextAreaField)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from app.flows import engine


def options(pairs) -> list[SelectChoice]:
    """WTForms choices from (value, label) pairs."""
    return [SelectChoice(value, label) for value, label in pairs]


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").replace(";", ",").replace("\n", ",").split(",") if v.strip()]


class FlowForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(message="Give the flow a name."), Length(max=200)])
    description = TextAreaField("Description", validators=[Optional(), Length(max=2000)])


class RuleForm(FlaskForm):
    name = StringField("Rule name", validators=[DataRequired(message="Give the rule a name."), Length(max=200)])
    always = BooleanField("Always run this rule, after the first matching rule")
    match = SelectField("Conditions to meet", choices=options([("all", "All of the conditions below"),
                                                       ("any", "Any of the conditions below")]), default="all")
    # conditions
    sender = StringField("Sender address or domain", validators=[Optional(), Length(max=2000)],
                         description="Addresses or domains, separated by commas: ann@example.com, example.org")
    recipient = StringField("Recipient address", validators=[Optional(), Length(max=2000)])
    subject_op = SelectField("Subject", choices=options([("contains", "contains"), ("matches", "matches the regular expression")]), validate_choice=False)
    subject_value = StringField("Subject text", validators=[Optional(), Length(max=500)])
    body_op = SelectField("Body", choices=options([("contains", "contains"), ("matches", "matches the regular expression")]), validate_choice=False)
    body_value = StringField("Body text", validators=[Optional(), Length(max=500)])
    has_attachments = SelectField("Has attachments", choices=options([("", "—"), ("yes", "Yes"), ("no", "No")]), validate_choice=False)
    intent = SelectField("Intent is", choices=options([("", "—")]), validate_choice=False)
    intent_confidence = IntegerField("With confidence at least (%)", default=0,
                                     validators=[Optional(), NumberRange(0, 100, "Between 0 and 100.")])
    new_customer = SelectField("Customer is new", choices=options([("", "—"), ("yes", "Yes"), ("no", "No")]), validate_choice=False)
    hours = SelectField("Business hours", choices=options([("", "—"), ("within", "Within business hours"),
                                                   ("outside", "Outside business hours")]), validate_choice=False)
    hours_queue = SelectField("Business hours of queue", choices=options([("", "—")]), validate_choice=False)
    language = StringField("Language", validators=[Optional(), Length(max=100)],
                           description="Two-letter codes, separated by commas: en, fr")
    sender_auth = SelectField("Sender authentication", choices=options(
        [("", "—")] + list(engine.SENDER_AUTH.items())), validate_choice=False)
    # actions
    queue = SelectField("Set queue", choices=options([("", "—")]), validate_choice=False)
    priority = SelectField("Set priority", choices=options([("", "—")] + [(str(k), v) for k, v in engine.PRIORITIES.items()]), validate_choice=False)
    assign = SelectField("Assign to", choices=options([("", "—")]), validate_choice=False)
    tags = StringField("Add tags", validators=[Optional(), Length(max=500)], description="Separated by commas")
    auto_reply = SelectField("Send a Standard Response as an automatic reply", choices=options([("", "—")]),
                             validate_choice=False)
    status = SelectField("Set status", choices=options([("", "—")] + [(s, s.capitalize()) for s in engine.STATUSES]), validate_choice=False)
    stop = BooleanField("Stop: run no further rules")

    #: engine RuleError keys -> form field names
    ERROR_FIELDS = {"sender": "sender", "recipient": "recipient", "subject": "subject_value", "body": "body_value",
                    "intent": "intent", "min_confidence": "intent_confidence", "business_hours": "hours_queue",
                    "language": "language", "sender_auth": "sender_auth", "queue": "queue", "priority": "priority", "assign": "assign",
                    "tags": "tags", "auto_reply": "auto_reply", "status": "status", "name": "name",
                    "always": "always", "match": "match", "actions": "queue", "pattern": "subject_value"}

    def set_choices(self, intents: list[str], queues: list[tuple[int, str]], agents: list[tuple[int, str]],
                    responses: list[tuple[int, str]]) -> None:
        self.intent.choices = options([("", "—")] + [(i, i) for i in intents] + [("unknown", "unknown")])
        self.hours_queue.choices = options([("", "—")] + [(str(i), n) for i, n in queues])
        self.queue.choices = options([("", "—")] + [(str(i), n) for i, n in queues])
        self.assign.choices = options(
            [("", "—"), ("least_loaded", "The least-loaded member of the queue"),
             ("last_agent", "The customer's last agent when available, else the least-loaded member"),
             ("last_agent_only", "The customer's last agent when available, else nobody")]
            + [(f"agent:{i}", n) for i, n in agents])
        self.auto_reply.choices = options([("", "—")] + [(str(i), n) for i, n in responses])


def rule_from_form(form: RuleForm) -> dict:
    """The engine's rule dict from the filled-in fields (validated later by `engine.normalise_rule`)."""
    conditions: list[dict] = []
    if form.sender.data and form.sender.data.strip():
        conditions.append({"type": "sender", "values": _split(form.sender.data)})
    if form.recipient.data and form.recipient.data.strip():
        conditions.append({"type": "recipient", "values": _split(form.recipient.data)})
    for kind in ("subject", "body"):
        value = getattr(form, f"{kind}_value").data
        if value:
            conditions.append({"type": kind, "op": getattr(form, f"{kind}_op").data, "value": value})
    if form.has_attachments.data:
        conditions.append({"type": "has_attachments", "value": form.has_attachments.data == "yes"})
    if form.intent.data:
        conditions.append({"type": "intent", "value": form.intent.data,
                           "min_confidence": (form.intent_confidence.data or 0) / 100})
    if form.new_customer.data:
        conditions.append({"type": "new_customer", "value": form.new_customer.data == "yes"})
    if form.hours.data:
        conditions.append({"type": "business_hours", "queue_id": form.hours_queue.data or None,
                           "value": form.hours.data == "within"})
    if form.language.data and form.language.data.strip():
        conditions.append({"type": "language", "values": _split(form.language.data)})
    if form.sender_auth.data:
        conditions.append({"type": "sender_auth", "value": form.sender_auth.data})

    actions: list[dict] = []
    if form.queue.data:
        actions.append({"type": "set_queue", "queue_id": form.queue.data})
    if form.priority.data != "" and form.priority.data is not None:
        actions.append({"type": "set_priority", "priority": int(form.priority.data)})
    if form.tags.data and form.tags.data.strip():
        actions.append({"type": "add_tags", "tags": _split(form.tags.data)})
    if form.assign.data:
        value = form.assign.data
        if value.startswith("agent:"):
            actions.append({"type": "assign", "mode": "agent", "user_id": value.split(":", 1)[1]})
        elif value == "last_agent_only":
            actions.append({"type": "assign", "mode": "last_agent", "fallback": False})
        elif value == "last_agent":
            actions.append({"type": "assign", "mode": "last_agent", "fallback": True})
        else:
            actions.append({"type": "assign", "mode": "least_loaded"})
    if form.auto_reply.data:
        actions.append({"type": "auto_reply", "response_id": form.auto_reply.data})
    if form.status.data:
        actions.append({"type": "set_status", "status": form.status.data})
    if form.stop.data:
        actions.append({"type": "stop"})
    return {"name": form.name.data, "always": form.always.data, "match": form.match.data,
            "conditions": conditions, "actions": actions}


def form_from_rule(form: RuleForm, rule: dict) -> None:
    """Fill the form's fields from a stored rule (for editing)."""
    form.name.data, form.always.data, form.match.data = rule.get("name"), rule.get("always"), rule.get("match", "all")
    for cond in rule.get("conditions") or []:
        kind = cond.get("type")
        if kind in ("sender", "recipient"):
            getattr(form, kind).data = ", ".join(cond["values"])
        elif kind in ("subject", "body"):
            getattr(form, f"{kind}_op").data, getattr(form, f"{kind}_value").data = cond["op"], cond["value"]
        elif kind in ("has_attachments", "new_customer"):
            getattr(form, kind).data = "yes" if cond["value"] else "no"
        elif kind == "intent":
            form.intent.data = cond["value"]
            form.intent_confidence.data = round(cond.get("min_confidence", 0) * 100)
        elif kind == "business_hours":
            form.hours.data = "within" if cond["value"] else "outside"
            form.hours_queue.data = str(cond["queue_id"])
        elif kind == "language":
            form.language.data = ", ".join(cond["values"])
        elif kind == "sender_auth":
            form.sender_auth.data = cond["value"]
    for action in rule.get("actions") or []:
        kind = action.get("type")
        if kind == "set_queue":
            form.queue.data = str(action["queue_id"])
        elif kind == "set_priority":
            form.priority.data = str(action["priority"])
        elif kind == "add_tags":
            form.tags.data = ", ".join(action["tags"])
        elif kind == "assign":
            mode = action.get("mode")
            form.assign.data = (f"agent:{action['user_id']}" if mode == "agent" else
                                ("last_agent" if action.get("fallback", True) else "last_agent_only")
                                if mode == "last_agent" else "least_loaded")
        elif kind == "auto_reply":
            form.auto_reply.data = str(action["response_id"])
        elif kind == "set_status":
            form.status.data = action["status"]
        elif kind == "stop":
            form.stop.data = True


class PublishForm(FlaskForm):
    comment = TextAreaField("Comment", validators=[DataRequired(message="Say what changed and why."),
                                                   Length(max=2000)])


class IntentForm(FlaskForm):
    name = StringField("Intent name", validators=[DataRequired(message="Give the intent a name."), Length(max=100)])
    description = StringField("Description", validators=[Optional(), Length(max=500)])
    examples = TextAreaField("Example phrases", validators=[DataRequired(message="Write example phrases.")],
                             description="One per line, in the customers' own words. 10 or more work best.")


class QueueForm(FlaskForm):
    name = StringField("Queue name", validators=[DataRequired(message="Give the queue a name."), Length(max=200)])
    description = StringField("Description", validators=[Optional(), Length(max=1000)])
    members = SelectMultipleField("Members", coerce=int, validate_choice=False)
    time_zone = StringField("Time zone", default="UTC", validators=[DataRequired(message="Enter a time zone.")],
                            description="An IANA name such as Europe/Berlin or America/New_York")
    hours = TextAreaField("Business hours", validators=[Optional()],
                          description="One line per day or range, e.g. Mon-Fri 09:00-17:00. Empty: always open.")
    holidays = TextAreaField("Holidays", validators=[Optional()], description="Dates, one per line: 2026-12-25")
    ack_enabled = BooleanField("Send the acknowledgement automatically")
    ack_subject = StringField("Acknowledgement subject", validators=[Optional(), Length(max=300)],
                              description="Empty: “Re:” and the customer's subject")
    ack_body_html = TextAreaField("Acknowledgement Message for Email Channel", validators=[Optional()],
                                  description="Rich text or HTML. Placeholders: {{ customer_name }}, "
                                              "{{ conversation_reference }}, {{ display_name }}, {{ address }}",
                                  render_kw={"data-rich-editor": "", "data-rich-label": "Acknowledgement message"})
    ack_interval_minutes = IntegerField("At most once per customer every (minutes)", default=24 * 60,
                                        validators=[DataRequired(message="Enter the interval in minutes."),
                                                    NumberRange(15, 72 * 60, "Between 15 minutes and 72 hours "
                                                                              "(15–4320 minutes).")])
    outbound_addresses = SelectMultipleField("Outbound addresses allowed for the queue", coerce=int,
                                             validate_choice=False)


class DefaultQueueForm(FlaskForm):
    queue = SelectField("Default queue", coerce=int, validate_choice=False,
                        description="Where mail goes when no flow routes it: an address without a published flow, "
                                    "or no rule that sets a queue.")


class BlockForm(FlaskForm):
    value = StringField("Sender address or domain",
                        validators=[DataRequired(message="Enter an address or a domain."), Length(max=320)])


class BlocklistUploadForm(FlaskForm):
    file = FileField("CSV file", validators=[FileRequired(message="Choose a CSV file.")],
                     description="One address or domain per line, in the first column.")


class FlowAddressesForm(FlaskForm):
    """The selected addresses arrive as repeated `address` fields (ids)."""

    move = BooleanField("Move these addresses to this flow")


def _minutes_field(label: str, description: str) -> IntegerField:
    return IntegerField(label, validators=[Optional(), NumberRange(1, 365 * 24 * 60, "Between 1 minute and a year "
                                                                                     "(1–525600 minutes).")],
                        description=description)


class SlaPolicyForm(FlaskForm):
    """An SLA policy of a queue (Service levels); targets in business minutes of the queue's hours."""
    name = StringField("Policy name", validators=[DataRequired(message="Give the policy a name."), Length(max=200)])
    priority = SelectField("Priority", choices=options([("", "Any priority"), ("-1", "Low"), ("0", "Normal"),
                                                        ("1", "High"), ("2", "Urgent")]), default="")
    tag = StringField("Tag", validators=[Optional(), Length(max=50)], description="Empty: any tag")
    first_response_minutes = _minutes_field("First response within (business minutes)",
                                            "From the customer's first message. Empty: not measured.")
    next_response_minutes = _minutes_field("Next response within (business minutes)",
                                           "From each later customer message. Empty: not measured.")
    resolution_minutes = _minutes_field("Resolution within (business minutes)",
                                        "From the first message to Resolved. Empty: not measured.")
    warning_minutes = IntegerField("At risk this many minutes before the due time",
                                   validators=[Optional(), NumberRange(1, 7 * 24 * 60, "Between 1 and 10080 minutes.")],
                                   description="Empty: the SLA_WARNING_MINUTES setting")
