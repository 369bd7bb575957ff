"""The Preview of the address wizard: a sample reply rendered with unsaved values.

The Preview goes through the very renderer that sends replies (`app.mail.render`), with
a `PreviewSender` built from the wizard's values and whatever the admin is typing in the
header or footer editor, so what the admin sees is what customers get.

Placeholders mean the recipient of each message: `{{ customer_name }}` is the customer in a
reply, but in a Forward to a third party it is that person (empty when their name is not known,
and the greeting collapses: "Hello,"). The Preview shows that case too (`forward_text`).

Uploaded images: the header and footer name them `cid:tpl-…`, what the sent message says beside
the image part, and the Preview keeps exactly that HTML. Only when the sandboxed frame is served
(`channels.setup_preview_document`) does each such image become a `data:` URI: the frame has no
cookies (it is sandboxed), so it could not load the image from our own, signed-in URL.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from flask import url_for

from app.extensions import db
from app.mail.render import Draft, QuotedMessage, TemplateError, check_template, render_parts
from app.models.channels import AddressSetup, DomainKind
from app.runtime.template_images import html_for_storage

SAMPLE_CUSTOMER = "Carol Customer"
SAMPLE_AGENT = "Alex Agent"
SAMPLE_REFERENCE = "#1042"


@dataclass(frozen=True)
class PreviewSender:
    """A sender built from unsaved wizard values: what `render_parts` needs of an address."""

    address: str
    display_name: str
    forwarded_from: str | None
    template_enabled: bool
    header_html: str
    footer_html: str
    is_platform: bool


def sample_draft() -> Draft:
    """The sample reply the Preview renders: Carol Customer asked, Alex Agent answers."""
    return Draft(
        to=[f"{SAMPLE_CUSTOMER} <carol@example.com>"],
        subject="Re: Where is my parcel?",
        body_html=("<p>Hello Carol,</p><p>Thank you for your message. Your parcel left our warehouse this "
                   "morning and should reach you within two working days.</p><p>Kind regards,<br>"
                   f"{SAMPLE_AGENT}</p>"),
        quoted=QuotedMessage(sender=f"{SAMPLE_CUSTOMER} <carol@example.com>",
                             date=datetime(2026, 11, 26, 9, 30, tzinfo=timezone.utc),
                             html="<p>Hello, I ordered a parcel last week and it has not arrived yet. "
                                  "Where is it?</p><p>Carol</p>"),
        placeholders={"customer_name": SAMPLE_CUSTOMER, "agent_name": SAMPLE_AGENT,
                      "conversation_reference": SAMPLE_REFERENCE},
    )


SAMPLE_FORWARD_TO = "warehouse@logistics.example"


def sample_forward() -> Draft:
    """A Forward by Alex Agent to a third party whose name is not known: placeholders name its recipient."""
    return Draft(
        to=[SAMPLE_FORWARD_TO], subject="Fwd: Where is my parcel?",
        body_html="<p>Could you check where this parcel is?</p>",
        placeholders={"customer_name": "", "agent_name": SAMPLE_AGENT, "conversation_reference": SAMPLE_REFERENCE},
    )


@dataclass(frozen=True)
class Preview:
    html: str
    text: str
    error: str | None
    version: int
    template_enabled: bool
    forward_text: str = ""  # the plain text of `sample_forward()`: what a third party's copy says


def editor_image_url(sha256: str) -> str:
    """Where the editor and the Preview show an uploaded image (served by `channels.template_image_file`)."""
    return url_for("channels.template_image_file", sha256=sha256)


def render_preview(setup: AddressSetup, overrides: dict | None = None, store: bool = True) -> Preview:
    """Render the sample reply through the sender's renderer with the wizard's values and unsaved `overrides`.

    `overrides` may carry template_enabled, header_html and footer_html as typed.
    With `store`, the rendered HTML is kept on the wizard row under a new version
    (the sandboxed preview frame loads it from there); without, version 0 means
    "the saved design", which the frame renders itself. An unknown placeholder
    does not stop the preview; `error` says what is wrong.
    """
    values = dict(setup.values or {})
    values.update({k: (html_for_storage(v, editor_image_url, store_pasted=False) if k.endswith("_html") else v)
                   for k, v in (overrides or {}).items() if v is not None})
    domain = setup.domain
    address = values.get("address") or f"address@{domain.name}"
    sender = PreviewSender(
        address=address, display_name=values.get("display_name") or "", forwarded_from=values.get("forwarded_from"),
        template_enabled=bool(values.get("template_enabled")), header_html=values.get("header_html") or "",
        footer_html=values.get("footer_html") or "", is_platform=domain.kind == DomainKind.PLATFORM.value)
    error = None
    try:
        check_template((sender.header_html or "") + "\n" + (sender.footer_html or ""))
    except TemplateError as exc:
        error = str(exc)
    html, text = render_parts(sender, sample_draft())
    forward_text = render_parts(sender, sample_forward())[1] if sender.template_enabled else ""
    if not store:
        return Preview(html=html, text=text, error=error, version=0, template_enabled=sender.template_enabled,
                       forward_text=forward_text)
    setup.preview_html = html
    setup.preview_version = (setup.preview_version or 0) + 1
    db.session.flush()
    return Preview(html=html, text=text, error=error, version=setup.preview_version,
                   template_enabled=sender.template_enabled, forward_text=forward_text)
