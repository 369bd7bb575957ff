"""A customer's mail client, answering a message the way common clients do.

`customer_reply(original, keep=...)` builds the customer's answer to one of our
messages. Real clients differ in what they keep of the thread:

* `"both"`: In-Reply-To and References (Thunderbird, Apple Mail, Gmail, Outlook);
* `"in-reply-to"`: only In-Reply-To (some webmails and older clients);
* `"references"`: only References (clients and gateways that drop In-Reply-To);
* `"subject"`: neither, only the "Re:" subject (a new mail typed to the same
  address, or a gateway that strips threading headers).

The answer goes to the original's Reply-To if there is one (for platform-domain
addresses that is the contact center's own mailbox), else to its From; it comes from
`sender` (default: the original's first To) and quotes the original's text part.
The round-trip tests feed it back through the inbound path.
"""
from __future__ import annotations

import secrets
from email import message_from_bytes, policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses
from datetime import datetime, timezone

KEEP = ("both", "in-reply-to", "references", "subject")


def customer_reply(original: bytes, *, keep: str = "both", body: str = "Thank you, that helps.",
                   sender: str | None = None, prefix: str = "Re: ") -> bytes:
    if keep not in KEEP:
        raise ValueError(f"keep must be one of {', '.join(KEEP)}")
    msg = message_from_bytes(original, policy=policy.default)
    target = msg["Reply-To"] or msg["From"]
    if sender is None:
        sender = str(msg["To"].addresses[0])
    subject = str(msg["Subject"] or "")
    if not subject.lower().startswith(prefix.strip().lower()):
        subject = prefix + subject
    reply = EmailMessage(policy=policy.SMTP)
    reply["From"] = sender
    reply["To"] = str(target)
    reply["Subject"] = subject
    reply["Date"] = format_datetime(datetime.now(timezone.utc))
    domain = getaddresses([sender])[0][1].rpartition("@")[2] or "client.example"
    reply["Message-ID"] = f"<{secrets.token_hex(8)}@{domain}>"
    original_id = msg["Message-ID"]
    if original_id and keep in ("both", "in-reply-to"):
        reply["In-Reply-To"] = original_id
    if original_id and keep in ("both", "references"):
        references = (str(msg["References"]).split() if msg["References"] else []) + [original_id]
        reply["References"] = " ".join(references)
    plain = msg.get_body(("plain",))
    quoted = plain.get_content() if plain is not None else ""
    sender_of_original = Address(addr_spec=msg["From"].addresses[0].addr_spec)
    text = f"{body}\n\nOn {msg['Date']}, {sender_of_original} wrote:\n" + "".join(
        f"> {line}\n" if line else ">\n" for line in quoted.rstrip("\n").split("\n"))
    reply.set_content(text)
    return reply.as_bytes()
