"""The data model of DESIGN.md, one module per area.

Importing this package registers every table on `db.metadata` (Alembic's
autogenerate and `db.create_all()` rely on that). Later issues evolve the model
with new migrations; an applied migration is never edited.
"""
from app.models.auth import AuditEntry, LoginThrottle, PasswordReset, Queue, Role, User, UserSession, queue_members
from app.models.blobs import Blob
from app.models.channels import (AuthMethod, CredentialStatus, Domain, DomainKind, EmailAddress, MailboxState,
                                 OAuthCredential, PublishRecord, Usage)
from app.models.dkim import DkimKey
from app.models.escalation import QueueAlert, QueueTimer, TimerStep
from app.models.flows import AutomaticMail, BlocklistEntry, Flow, FlowRun, Intent, IntentModel
from app.models.inbound import ForwardingConfirmation, InboundRaw, InboundStatus
from app.models.inbox import Attachment, Contact, Conversation, ConversationSeen, Draft, Message
from app.models.publish import PublishRequest, PublishSettings
from app.models.organize import ConversationEvent, ConversationTag
from app.models.notifications import Notification
from app.models.reports import ConversationFacts
from app.models.responses import ResponseGroup, StandardResponse
from app.models.send_tests import SendTest
from app.models.sla import SlaPolicy
from app.models.suppression import Suppression
from app.models.template_images import TemplateImage

__all__ = [
    "Attachment", "Blob", "Contact", "Conversation", "ConversationSeen", "Domain", "DomainKind", "Draft",
    "EmailAddress", "Flow", "LoginThrottle", "MailboxState", "Message", "PublishRecord",
    "Queue", "ResponseGroup", "Role", "StandardResponse", "Usage", "User", "UserSession", "queue_members",
    # experience flows
    "AutomaticMail", "BlocklistEntry", "FlowRun", "Intent", "IntentModel",
    "InboundRaw", "InboundStatus", "ForwardingConfirmation",
    # OAuth 2.0 mailboxes
    "AuthMethod", "CredentialStatus", "OAuthCredential",
    # deliverability
    "DkimKey", "SendTest", "Suppression",
    # accounts
    "AuditEntry", "PasswordReset",
    # publish approvals
    "PublishRequest", "PublishSettings",
    # rich-text editor images
    "TemplateImage",
    # organising conversations: the audit trail, tags
    "ConversationEvent", "ConversationTag",
    # contacts and notes: @mention notifications
    "Notification",
    # service levels
    "SlaPolicy",
    # timed escalations and alerts
    "QueueAlert", "QueueTimer", "TimerStep",
    # reports
    "ConversationFacts",
]
