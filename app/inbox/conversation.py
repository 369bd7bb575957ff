"""The conversation page's read model: a conversation with the names it shows, its messages and
their attachments, the customer's earlier conversations, the user's drafts there and the flow
runs, as plain values (`ConversationDetail`) read by prebuilt SQL.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import JSON, Boolean, bindparam, select, text

from app.extensions import db
from app.inbox.access import VISIBLE_SQL, NotFound, get_user
from app.inbox.lists import list_drafts
from app.inbox.trail import events_of
from app.mail.parse import SENDER_LABELS
from app.models._types import UTCDateTime, ordered_columns
from app.models.auth import Role, User
from app.models.flows import FlowRun
from app.models.inbox import Draft, Message
from app.runtime import sla


class AttachmentView(NamedTuple):
    id: int
    message_id: int
    filename: str
    content_type: str
    size: int
    content_id: str | None
    inline: bool
    sha256: str


@dataclass(slots=True)
class MessageView:
    """What the conversation page shows of a message: plain values, loaded in bulk by
    `conversation_detail` (`of()` makes one of an ORM `Message`, for the fragments)."""

    id: int
    conversation_id: int | None
    direction: str
    from_addr: str
    to_addrs: str
    cc_addrs: str
    bcc_addrs: str
    subject: str
    text: str
    html: str | None
    created_at: datetime
    delivery_status: str | None
    delivery_error: str | None
    author_name: str | None  # None: no author (customer mail, automatic mail)
    attachments: list[AttachmentView] = field(default_factory=list)
    # Delivery of an outgoing message (the tile's status line): when and what the server said, attempts.
    sent_at: datetime | None = None
    smtp_code: int | None = None
    smtp_reply: str | None = None
    delivery_attempts: int = 0
    next_attempt_at: datetime | None = None
    # Inbound: where the sender was taken from when the mail had no usable From (None: From).
    sender_source: str | None = None
    classification: str | None = None  # inbound: "auto_reply", "bounce", ... (`app.mail.parse`), None for a person
    # Inbound sender authentication (`app.mail.senderauth`): None for mail stored before the checks.
    auth_spf: str | None = None
    auth_dkim: str | None = None
    auth_dmarc: str | None = None
    auth_from_domain: str | None = None
    auth_reason: str | None = None
    auth_lookalike: str | None = None
    # An internal note: its author (the tile offers Edit/Delete to them) and when it was last edited.
    author_id: int | None = None
    edited_at: datetime | None = None

    @property
    def auth_warning(self) -> str | None:
        """The tile's warning when the sender may be forged: DMARC failed, or a look-alike of our own domain."""
        if self.direction != "in":
            return None
        domain = self.auth_from_domain or "its domain"
        if self.auth_dmarc == "fail":
            return (f"This mail says it is from {domain}, but {domain}'s checks failed: it may be forged.")
        if self.auth_lookalike:
            return (f"This mail is from {domain}, which looks like our own domain {self.auth_lookalike}: "
                    "it may be an impersonation.")
        return None

    @property
    def auth_summary(self) -> str | None:
        """"SPF pass · DKIM none · DMARC fail", for the tile's headers; None when not checked."""
        if self.direction != "in" or self.auth_dmarc is None:
            return None
        return f"SPF {self.auth_spf} · DKIM {self.auth_dkim} · DMARC {self.auth_dmarc}"

    @property
    def sender_note(self) -> str | None:
        """"Sender taken from Reply-To" (etc.), for the tile; None when the sender is the From header."""
        label = dict(SENDER_LABELS).get(self.sender_source or "")
        return f"Sender taken from {label}" if label else None

    @property
    def automatic_reply(self) -> bool:
        """An out-of-office or read receipt: shown as such, and not the customer's reply."""
        return self.direction == "in" and self.classification == "auto_reply"

    @property
    def sender(self) -> str:
        """Who wrote it, as its tile says: the agent of a reply or note, else the From address."""
        if self.direction in ("out", "note"):
            return self.from_addr if self.author_name is None else self.author_name
        return self.from_addr or "(unknown sender)"

    @classmethod
    def of(cls, m: Message) -> "MessageView":
        return cls(m.id, m.conversation_id, m.direction, m.from_addr, m.to_addrs, m.cc_addrs, m.bcc_addrs,
                   m.subject, m.text, m.html, m.created_at, m.delivery_status, m.delivery_error,
                   m.author.name if m.author is not None else None,
                   [AttachmentView(a.id, a.message_id, a.filename, a.content_type, a.size, a.content_id, a.inline,
                                   a.sha256) for a in m.attachments],
                   m.sent_at, m.smtp_code, m.smtp_reply, m.delivery_attempts or 0, m.next_attempt_at,
                   m.sender_source, m.classification, m.auth_spf, m.auth_dkim, m.auth_dmarc, m.auth_from_domain,
                   m.auth_reason, m.auth_lookalike, m.author_id, m.edited_at)


class ContactView(NamedTuple):
    """The customer as the page shows them (the header, the arrival card and the contact panel)."""
    id: int
    name: str
    email: str
    extra_addresses: str
    organization: str
    notes: str


class AddressName(NamedTuple):
    id: int
    address: str


class Named(NamedTuple):
    id: int
    name: str


@dataclass(slots=True)
class ConversationView:
    """What the conversation page shows of a conversation, with the names of its customer, address,
    queue and assignee under the same names as `Conversation`'s relationships (`c.queue.name`)."""

    id: int
    subject: str
    status: str
    last_message_at: datetime
    contact_id: int
    address_id: int | None
    queue_id: int | None
    assignee_id: int | None
    intent: str | None
    intent_confidence: float | None
    contact: ContactView
    address: AddressName | None
    queue: Named | None
    assignee: Named | None
    # Organising (`app.inbox.organize`, `app.inbox.merging`): priority, tags, "Pending until …", merged into.
    priority: int = 0
    tags: list = field(default_factory=list)
    snoozed_until: datetime | None = None
    merged_into_id: int | None = None
    # Service levels (`app.runtime.sla`): the soonest due time and the timer's words and state.
    sla_due_at: datetime | None = None
    sla_text: str = ""
    sla_state: str = ""


@dataclass
class ConversationDetail:
    conversation: ConversationView
    messages: list[MessageView]
    earlier: list  # rows: id, subject, status, last_message_at, merged_into_id
    waiting_since: datetime | None
    drafts: list[Draft] = field(default_factory=list)
    flow_runs: list = field(default_factory=list)
    seen_at: datetime | None = None  # when the user last looked (None: never)
    events: list = field(default_factory=list)  # the trail's lines (`app.inbox.trail.EventLine`), oldest first

    @property
    def started_by_us(self) -> bool:
        """The conversation began with our message (New Mail): nothing "came to" an address."""
        return bool(self.messages) and self.messages[0].direction == "out"

    @property
    def unseen(self) -> bool:
        """Something happened since the user last looked (opening it should `mark_seen`)."""
        return self.seen_at is None or self.seen_at < self.conversation.last_message_at


#: The conversation for its page with the names it shows, the user's last look, whether the user
#: has drafts there and the conversation flow runs (each fetched only when there are some), and
#: whether the user may see it (`{visible}`: `VISIBLE_SQL`, or TRUE). SQL text: see `app.inbox.lists.INBOX_SQL`.
_CONVERSATION = """
SELECT c.id, c.subject, c.status, c.last_message_at, c.contact_id, c.address_id, c.queue_id, c.assignee_id,
       c.intent, c.intent_confidence, ct.name, ct.email, ct.extra_addresses, ct.organization, ct.notes,
       a.address, q.name, u.name,
       (SELECT s.seen_at FROM conversation_seen s WHERE s.user_id = :user_id AND s.conversation_id = c.id)
         AS seen_at,
       EXISTS (SELECT 1 FROM drafts d WHERE d.author_id = :user_id AND d.conversation_id = c.id) AS has_drafts,
       EXISTS (SELECT 1 FROM flow_runs r WHERE r.conversation_id = c.id) AS has_runs,
       {visible} AS visible,
       c.priority, c.tags, c.snoozed_until, c.merged_into_id,
       c.sla_due_at, c.sla_warn_at, c.first_response_due_at, c.next_response_due_at
FROM conversations c
LEFT JOIN contacts ct ON ct.id = c.contact_id
LEFT JOIN email_addresses a ON a.id = c.address_id
LEFT JOIN queues q ON q.id = c.queue_id
LEFT JOIN users u ON u.id = c.assignee_id
WHERE c.id = :conversation_id
"""
CONVERSATION_SQL = {everyone: ordered_columns(
    text(_CONVERSATION.format(visible="1 = 1" if everyone else VISIBLE_SQL.format(c="c."))),
    "id subject status last_message_at contact_id address_id queue_id assignee_id intent intent_confidence "
    "contact_name contact_email extra_addresses organization notes address queue_name assignee_name seen_at "
    "has_drafts has_runs visible priority tags snoozed_until merged_into_id sla_due_at sla_warn_at "
    "first_response_due_at next_response_due_at",
    last_message_at=UTCDateTime(), seen_at=UTCDateTime(), snoozed_until=UTCDateTime(), tags=JSON(),
    sla_due_at=UTCDateTime(), sla_warn_at=UTCDateTime(), first_response_due_at=UTCDateTime(),
    next_response_due_at=UTCDateTime()) for everyone in (False, True)}


#: A conversation's messages for its page, oldest first, with their author's name and whether
#: they have attachments (fetched next, for those only); the columns in `MessageView`'s order.
#: SQL text: see `app.inbox.lists.INBOX_SQL`.
MESSAGES_SQL = ordered_columns(text("""
SELECT m.id, m.conversation_id, m.direction, m.from_addr, m.to_addrs, m.cc_addrs, m.bcc_addrs, m.subject,
       m.text, m.html, m.created_at, m.delivery_status, m.delivery_error, u.name AS author_name,
       EXISTS (SELECT 1 FROM attachments a WHERE a.message_id = m.id) AS has_attachments,
       m.sent_at, m.smtp_code, m.smtp_reply, coalesce(m.delivery_attempts, 0), m.next_attempt_at, m.sender_source,
       m.classification,
       m.auth_spf, m.auth_dkim, m.auth_dmarc, m.auth_from_domain, m.auth_reason, m.auth_lookalike,
       m.author_id, m.edited_at
FROM messages m LEFT JOIN users u ON u.id = m.author_id
WHERE m.conversation_id = :conversation_id
ORDER BY m.created_at, m.id
"""), "id conversation_id direction from_addr to_addrs cc_addrs bcc_addrs subject text html created_at "
    "delivery_status delivery_error author_name has_attachments sent_at smtp_code smtp_reply delivery_attempts "
    "next_attempt_at sender_source classification auth_spf auth_dkim auth_dmarc auth_from_domain auth_reason "
    "auth_lookalike author_id edited_at",
    created_at=UTCDateTime(), sent_at=UTCDateTime(), next_attempt_at=UTCDateTime(), edited_at=UTCDateTime())
ATTACHMENTS_SQL = text(
    "SELECT id, message_id, filename, content_type, size, content_id, inline, sha256 FROM attachments "
    "WHERE message_id IN :ids ORDER BY id"
).bindparams(bindparam("ids", expanding=True)).columns(inline=Boolean())


#: The customer's ten most recent other conversations that the user may see.
EARLIER_SQL = {everyone: ordered_columns(text(
    "SELECT id, subject, status, last_message_at, merged_into_id FROM conversations WHERE contact_id = :contact_id "
    "AND id <> :conversation_id" + ("" if everyone else " AND " + VISIBLE_SQL.format(c=""))
    + " ORDER BY last_message_at DESC LIMIT 10"), "id subject status last_message_at merged_into_id",
    last_message_at=UTCDateTime()) for everyone in (False, True)}


def conversation_detail(user: User | int, conversation_id: int) -> ConversationDetail:
    """The conversation with its messages (oldest first), the customer's other conversations,
    how long the customer has been waiting and the user's drafts. Raises `NotFound`.

    Plain values for the page, in four statements whatever the thread's length: the
    `ConversationView` with the names it shows and the user's last look (`seen_at`), the
    `MessageView`s with their authors, their attachments (when any), the earlier
    conversations; drafts and flow runs only when there are some.
    """
    user = get_user(user)
    everyone = user.has_role(Role.SUPERVISOR)
    found = db.session.execute(CONVERSATION_SQL[everyone], {"conversation_id": conversation_id,
                                                            "user_id": user.id}).first()
    if found is None or not found.visible:
        raise NotFound("conversation")
    (cid, subject, status, last_message_at, contact_id, address_id, queue_id, assignee_id, intent, confidence,
     contact_name, contact_email, extra, organization, notes, address, queue_name, assignee_name, seen_at, has_drafts, has_runs, _,
     priority, tags, snoozed_until, merged_into_id, due, warn_at, first_due, next_due) = found
    sla_text, sla_state = sla.timer(due, warn_at, sla.label_of(due, first_due, next_due))
    conversation = ConversationView(
        cid, subject, status, last_message_at, contact_id, address_id, queue_id, assignee_id, intent, confidence,
        ContactView(contact_id, contact_name or "", contact_email or "", extra or "", organization or "", notes or ""),
        AddressName(address_id, address) if address is not None else None,
        Named(queue_id, queue_name) if queue_name is not None else None,
        Named(assignee_id, assignee_name) if assignee_name is not None else None,
        priority or 0, list(tags or []), snoozed_until, merged_into_id, due, sla_text, sla_state)
    rows = db.session.execute(MESSAGES_SQL, {"conversation_id": conversation.id}).all()
    # By position: the columns after `has_attachments` are `MessageView`'s fields after `attachments`, in order.
    messages = [MessageView(*r[:14], [], *r[15:]) for r in rows]
    with_files = [r[0] for r in rows if r[14]]
    if with_files:
        by_id = {m.id: m for m in messages}
        for a in db.session.execute(ATTACHMENTS_SQL, {"ids": with_files}):
            by_id[a.message_id].attachments.append(AttachmentView(*a))
    earlier = db.session.execute(EARLIER_SQL[everyone], {
        "contact_id": conversation.contact_id, "conversation_id": conversation.id, "user_id": user.id}).all()
    waiting_since = None
    for m in messages:
        if m.automatic_reply:
            continue  # an out-of-office does not make the customer wait for us
        if m.direction == "in":
            waiting_since = waiting_since or m.created_at
        elif m.direction == "out":
            waiting_since = None
    return ConversationDetail(conversation, messages, earlier, waiting_since,
                              list_drafts(user, conversation.id, blank=True) if has_drafts else [],
                              flow_runs(conversation.id) if has_runs else [], seen_at,
                              events_of(conversation.id))


def flow_runs(conversation_id: int, limit: int = 3) -> list:
    """The experience-flow runs of a conversation, newest first (intent, matched rules, actions).

    The flows area records a `FlowRun` each time a flow runs on the conversation's mail; without
    one, the arrival summary shows only address, queue and waiting time.
    """
    return list(db.session.scalars(select(FlowRun).where(FlowRun.conversation_id == conversation_id)
                                   .order_by(FlowRun.created_at.desc()).limit(limit)))
