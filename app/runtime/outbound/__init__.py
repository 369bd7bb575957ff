"""Outbound mail: queue a message (rendered once, frozen) and deliver it exactly once.

The workspace and the flows call `send_reply(conversation_id, author_id, body_html, ...)`
(a reply with a reply's defaults) or `queue_message(conversation_id, to=..., ...)` (any
outgoing message of a conversation). Both raise `CannotSend`, with a text for the agent
and nothing queued, unless the address may send; otherwise they add a `Message` in state
`queued` with its rendered bytes beside it (`OutgoingMime`, one transaction). The caller
hands it over with `app.transactions.on_commit(enqueue_send, message.id, address_id=...)`
and commits. A retry sends exactly those bytes.

Delivery state machine (`Message.delivery_status`, declared in `states`)::

    queued ──claim──> sending ──250──> sent ──(inbound DSN)──> bounced
                         │
                         ├─ 4xx / connection error ─> retrying ──(next_attempt_at)──> sending ...
                         │        (after SEND_MAX_ATTEMPTS) ─> failed
                         └─ 5xx / unusable configuration ──> failed ──(retry_message, by hand)──> queued

Exactly once. The send job first *claims* the message: one conditional UPDATE sets
`sending`, a random `claim_token` and a lease (`claimed_until`), and commits before any
byte goes to the server. Only a `queued`/`retrying` message that is due, or a `sending`
one whose lease expired, is claimable, so two workers never hold it at once. Each
outcome is written `WHERE claim_token = <ours>` and committed right after the server's
reply. The RQ job timeout is shorter than the lease, so nobody is still sending under
an expired lease. A worker that dies before sending leaves `sending`; the cron sweep
(`enqueue_due_messages`) re-enqueues it once the lease has expired. One window remains:
a worker that dies after the server's 250 but before the commit of `sent` has its
message sent again after the lease (SMTP cannot ask whether a server took a message).

Connection reuse. A job claims up to `SEND_BATCH_SIZE` due messages of the same server
and login, drops their now-redundant jobs and sends them over one connection, batch
after batch; a burst of Sends of one address waits for one job
(`enqueue_send(..., address_id=...)`). docs/outbound.md has the whole story.

Modules, each importing only those above it:

* `states`: the delivery states and which of them are claimable or retryable by hand;
* `senders`: whether an address may send (`CannotSend`), and through which SMTP server;
* `compose`: rendering and queueing, threading headers, the frozen bytes, retry by hand, bounces;
* `dispatch`: the send jobs in Redis and the waiting marks that coalesce a burst; the cron sweep;
* `claims`: the claim, its lease and the outcomes, with backoff;
* `deliver`: the send job itself (`jobs.send.send_message` runs `deliver_message`);
* `send_test`: "Send test email": a test message outside conversations, through the same
  queue, renderer, signing and server (`jobs.send.send_test_email` runs `deliver_send_test`).

Other layers import from this package, not from its modules.
"""
from app.runtime.outbound.claims import backoff_seconds
from app.runtime.outbound.compose import (
    NotRetryable, mark_bounced, outgoing_bytes, queue_message, retry_message, send_reply,
    thread_headers,
)
from app.runtime.outbound.deliver import deliver_message
from app.runtime.outbound.dispatch import (
    WAITING_KEY, WAITING_TTL_SECONDS, enqueue_due_messages, enqueue_send, send_job_id,
)
from app.runtime.outbound.send_test import (
    InvalidRecipient, TooManyTests, cannot_send_reason, deliver_send_test, enqueue_due_send_tests, is_final, queue_send_test,
    recent_send_tests, tests_left,
)
from app.runtime.outbound.senders import CannotSend, sending_address, transport_settings
from app.runtime.outbound.states import IN_PROGRESS, DeliveryStatus

__all__ = [
    "InvalidRecipient", "TooManyTests", "cannot_send_reason", "deliver_send_test", "enqueue_due_send_tests", "is_final", "queue_send_test",
    "recent_send_tests", "tests_left",
    "IN_PROGRESS", "WAITING_KEY", "WAITING_TTL_SECONDS", "CannotSend", "DeliveryStatus", "NotRetryable", "backoff_seconds",
    "deliver_message", "enqueue_due_messages", "enqueue_send", "mark_bounced", "outgoing_bytes", "queue_message",
    "retry_message", "send_job_id", "send_reply", "sending_address", "thread_headers",
    "transport_settings",
]
