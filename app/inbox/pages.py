"""What the workspace's pages share: the blueprint, their security policies, a message's tile,
the composer's context, and the helpers both `views` (inbox, conversation, messages) and
`composer_views` (drafts, Send, the pickers) use.
"""
from __future__ import annotations

from flask import Blueprint, request, url_for
from flask_login import current_user
from markupsafe import Markup

from app.blobs import blob_store
from app.inbox import drafts as inbox_drafts
from app.inbox.access import NotFound
from app.inbox.addresses import from_notice, sending_addresses
from app.inbox.choices import user_queues
from app.inbox.conversation import MessageView
from app.inbox.display import FRAME_STYLE_HASH, inline_image_data, message_display, sanitized_note
from app.inbox.recipients import parse_addresses
from app.inbox.sending import recipient_warnings
from app.mail.html import block_remote_images, sanitize_html
from app.models.inbox import Message
from app.runtime.outbound import IN_PROGRESS
from app.security import CSP, Policy
from app.units import human_size
from app.web import Fragments, render

bp = Blueprint("inbox", __name__)

#: The conversation page lets the message frames (which inherit it) use their one style sheet
#: and the customer's inline styles. It loads no remote image: a frame whose images the agent
#: asks for is loaded from `message_frame` with its own policy, and the composer's remote images
#: (a Forward's) wait until its "Show images" loads the page again with `CONVERSATION_CSP_IMAGES`.
_CONVERSATION_POLICY = CSP.extend(style_src=(f"'{FRAME_STYLE_HASH}'",), style_src_attr=("'unsafe-inline'",))
CONVERSATION_CSP = str(_CONVERSATION_POLICY)
CONVERSATION_CSP_IMAGES = str(_CONVERSATION_POLICY.extend(img_src=("http:", "https:")))
#: A message frame whose remote images the agent asked for, loaded by URL (a `srcdoc` frame would
#: inherit the page's policy): its own document only, in a sandbox, inside our pages only.
SHOWN_FRAME_CSP = str(Policy({"default-src": ("'none'",), "img-src": ("data:", "http:", "https:"),
                              "style-src": ("'unsafe-inline'",), "font-src": ("data:",), "form-action": ("'none'",),
                              "frame-ancestors": ("'self'",),
                              # Same origin (never scripts): static/inbox.js sizes the frame to its content.
                              "sandbox": ("allow-same-origin", "allow-popups", "allow-popups-to-escape-sandbox")}))
#: An attachment download is never a page.
DOWNLOAD_CSP = str(Policy({"default-src": ("'none'",), "sandbox": ()}))

KIND_LABELS = {"reply": "Reply", "reply_all": "Reply All", "forward": "Forward", "new": "New Mail"}


@bp.app_context_processor
def _labels():
    return {"kind_labels": KIND_LABELS}


# Globals, not context: the tiles (Fragments) render without the page's context.
bp.add_app_template_global(human_size, "human_size")
bp.add_app_template_global(IN_PROGRESS, "delivery_in_progress")


@bp.errorhandler(NotFound)
def _not_found(_error):
    # Not found and not allowed look the same: nobody learns what another queue holds.
    return render("errors/error.html", code=404, title="Not found", text="There is nothing at this address.",
                  status=404)


def tile(message: Message | MessageView, show_images: bool = False) -> dict:
    """What `_tiles.html` needs of a message; the body's frame comes from `message_display`'s cache."""
    m = view_of(message)
    images = {}
    if any(a.content_id for a in m.attachments):
        images = inline_image_data(m.attachments, blob_store().get)
    shown = message_display(m.html, m.text, show_images=show_images, inline_images=images)
    shown_inline = {cid.lower() for cid in images}
    files = [a for a in m.attachments if not (a.content_id and a.content_id.strip("<>").lower() in shown_inline)]
    return {"message": m, "frame": shown.frame, "has_quote": shown.has_quote, "files": files,
            # Shown images load in a frame of their own (`message_frame`), not in a `srcdoc` one.
            "frame_url": url_for("inbox.message_frame", message_id=m.id) if show_images else None,
            # Notes are our agents' own HTML, shown in the page itself: sanitised again all the same.
            "note_html": sanitized_note(m.html) if m.direction == "note" and m.html else None}


#: A message's tile (MessageView, whether it is the newest: open), and its body alone ("Show images").
tile_html = Fragments("inbox/_tiles.html", "tile", prepare=lambda m, newest: (tile(m), newest), zoned=True)
tile_body_html = Fragments("inbox/_tiles.html", "tile_body", prepare=lambda m, images: (tile(m, images),))


def tiles(messages, events=()) -> list:
    """The tiles' HTML, oldest first; the last one is open. With `events` (`app.inbox.trail.EventLine`),
    the trail's lines between them, each at its time (a line and a message at the same moment: the
    message first)."""
    last = len(messages) - 1
    html = tile_html.many([(view_of(m), i == last) for i, m in enumerate(messages)])
    if not events:
        return html
    lines = event_html.many([(e,) for e in events])
    timed = [(m.created_at, 0, i, h) for i, (m, h) in enumerate(zip(messages, html))]
    timed += [(e.created_at, 1, i, h) for i, (e, h) in enumerate(zip(events, lines))]
    return [h for *_, h in sorted(timed, key=lambda t: t[:3])]


#: One line of the conversation's trail in the thread ("Alex Agent transferred to Returns · 14:07").
event_html = Fragments("inbox/_events.html", "event", zoned=True)


def view_of(message: Message | MessageView) -> MessageView:
    return message if isinstance(message, MessageView) else MessageView.of(message)


def conversation_response(response, images: bool = False):
    response.headers["Content-Security-Policy"] = CONVERSATION_CSP_IMAGES if images else CONVERSATION_CSP
    return response


def images_asked() -> bool:
    return request.args.get("images") == "1"


def draft_page(draft_id: int) -> str:
    return url_for("inbox.draft", draft_id=inbox_drafts.get_draft(current_user, draft_id).id)


def composer_context(draft, errors: dict | None = None, newer=None, show_images: bool = False,
                      suppressed: list[str] | None = None, confirmed_newer: bool = False) -> dict:
    """What the composer shows. Its editor is part of the page: remote images of the draft (a
    Forward's) are held back (`data-ph-src`) until "Show images" loads the page with them.
    `suppressed`: the Send's confirmation step for suppressed recipients; `warnings`: the
    suppressed recipients already in each field (a Reply to a customer whose mail bounced)."""
    conversation = draft.conversation
    body_html, held = block_remote_images(draft.body or "", show=show_images, hold=True)
    senders = sending_addresses(current_user, conversation)
    return {
        "d": draft, "errors": errors or {}, "newer": newer, "body_html": body_html, "held_images": held,
        "images_shown": show_images, "suppressed": suppressed or [], "confirmed_newer": confirmed_newer,
        "warnings": {name: recipient_warnings(parse_addresses(getattr(draft, f"{name}_addrs") or "").emails)
                     for name in ("to", "cc", "bcc")},
        "senders": senders,
        "from_notice": from_notice(conversation, senders, draft.from_address_id),
        "queues": user_queues(current_user) if draft.kind == "new" else [],
        "locked": inbox_drafts.recipients_locked(draft),
        # What sending adds under the text (app.mail.render): shown below the editor, not part of it.
        "signature_html": Markup(sanitize_html(current_user.signature_html or "").strip()),
    }
