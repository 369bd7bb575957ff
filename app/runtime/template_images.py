"""Images of the Email Template Design: uploaded once, shown in the editor, sent inline by Content-ID.

An admin uploads an image in the rich-text editor (`store_template_image`): the bytes go to the
blob store, a `TemplateImage` row says they are an image for mail. The editor shows it from our
own URL; on save, `html_for_storage` turns that URL (and any pasted `data:` image) into
`cid:tpl-<sha256>@pigeonhole`, which is what the header or footer stores and what the outgoing
message says. `inline_images` gives the image parts a message needs for the `cid:` images of
its sender's header and footer, so the Preview and the real send carry the same HTML and the
customer's client never fetches anything from the web.

Raises `ImageRefused` with a sentence for the admin (too big, not an image, store full).
"""
from __future__ import annotations

import base64
import binascii
import logging
import re
from collections.abc import Callable

from flask import current_app
from sqlalchemy.exc import SQLAlchemyError

from app.blobs import BlobNotFound, NoRoom, blob_store, require_room
from app.extensions import db
from app.mail.inline_images import (IMAGE_TYPES, content_id, image_sha256, image_sha256s, rewrite_image_sources,
                                    sniff_image)
from app.mail.render import OutgoingAttachment, Sender
from app.models.template_images import TemplateImage
from app.units import human_size

log = logging.getLogger(__name__)

_DATA_URI = re.compile(r"^data:([a-z/+.-]+)?(;[^,]*)?;base64,(.*)$", re.IGNORECASE | re.DOTALL)


class ImageRefused(ValueError):
    """An upload that is not stored; the message says why, for the admin."""


def store_template_image(data: bytes, filename: str, uploaded_by_id: int | None = None) -> TemplateImage:
    """Store an uploaded image (PNG, JPEG or GIF, at most `TEMPLATE_IMAGE_MAX_BYTES`); returns its row (flushed).

    The same bytes uploaded twice are one image. Raises `ImageRefused`.
    """
    name = (filename or "image").strip()[-200:] or "image"
    limit = int(current_app.config["TEMPLATE_IMAGE_MAX_BYTES"])
    if not data:
        raise ImageRefused(f"“{name}” is empty. Choose an image file.")
    if len(data) > limit:
        raise ImageRefused(f"“{name}” is {human_size(len(data))}; an image in a header or footer may be at most "
                           f"{human_size(limit)}. Make it smaller and upload it again.")
    kind = sniff_image(data)
    if kind is None:
        raise ImageRefused(f"“{name}” is not a PNG, JPEG or GIF image, the formats every mail client shows.")
    store = blob_store()
    try:
        require_room(store, len(data), int(current_app.config["BLOB_UPLOAD_MIN_FREE_BYTES"]))
        sha = store.put(data)
    except (OSError, SQLAlchemyError) as exc:
        log.log(logging.INFO if isinstance(exc, NoRoom) else logging.WARNING,
                "a template image of %d bytes could not be stored: %s", len(data), type(exc).__name__)
        raise ImageRefused(f"“{name}” could not be stored (the file store refused it). Try again later.") from None
    image = db.session.get(TemplateImage, sha)
    if image is None:
        image = TemplateImage(sha256=sha, content_type=kind, size=len(data), filename=name,
                              uploaded_by_id=uploaded_by_id)
        db.session.add(image)
        db.session.flush()
    return image


def template_image(sha256: str) -> tuple[TemplateImage, bytes] | None:
    """An uploaded image and its bytes, or None (unknown, or its blob is gone)."""
    image = db.session.get(TemplateImage, sha256.lower()) if re.fullmatch(r"[0-9a-fA-F]{64}", sha256 or "") else None
    if image is None:
        return None
    try:
        return image, blob_store().get(image.sha256)
    except BlobNotFound:
        return None


def html_for_editor(html: str, editor_url: Callable[[str], str]) -> str:
    """Stored HTML as the editor shows it: each `cid:tpl-…` image from `editor_url(sha256)`."""
    return rewrite_image_sources(html, lambda src: editor_url(sha) if (sha := image_sha256(src)) else src)


def html_with_data_images(html: str) -> str:
    """`html` with each `cid:tpl-…` image as a `data:` URI (for a sandboxed frame, which has no cookies)."""
    def inline(src: str) -> str | None:
        sha = image_sha256(src)
        if not sha:
            return src
        found = template_image(sha)
        if found is None:
            return None
        return f"data:{found[0].content_type};base64," + base64.b64encode(found[1]).decode("ascii")

    return rewrite_image_sources(html, inline)


def html_for_storage(html: str, editor_url: Callable[[str], str], uploaded_by_id: int | None = None,
                     store_pasted: bool = True) -> str:
    """Editor HTML as it is stored (sanitise it afterwards): our image URLs become `cid:tpl-…`, and
    a pasted `data:` image is stored as an upload and named the same way (with `store_pasted`; the
    live Preview leaves it as it is). Raises `ImageRefused`."""
    prefix, _, suffix = editor_url("0" * 64).partition("0" * 64)
    ours = re.compile(r"^(?:https?://[^/]+)?" + re.escape(prefix) + r"([0-9a-f]{64})" + re.escape(suffix) + "$")

    def change(src: str) -> str:
        src = src.strip()
        if match := ours.match(src):
            if db.session.get(TemplateImage, match.group(1)) is not None:
                return "cid:" + content_id(match.group(1))
            return src  # not one of ours: the sanitiser drops it
        if store_pasted and (match := _DATA_URI.match(src)):
            try:
                data = base64.b64decode(match.group(3), validate=False)
            except (binascii.Error, ValueError):
                raise ImageRefused("A pasted image could not be read. Upload it with “Image” instead.") from None
            return "cid:" + content_id(store_template_image(data, "pasted image", uploaded_by_id).sha256)
        return src

    return rewrite_image_sources(html, change)


def inline_images(sender: Sender) -> list[OutgoingAttachment]:
    """The image parts for the `cid:tpl-…` images of the sender's header and footer (when the design is on).

    An image whose blob is gone is left out (and logged): the message still goes.
    """
    if not sender.template_enabled:
        return []
    parts = []
    for sha in image_sha256s((sender.header_html or "") + (sender.footer_html or "")):
        found = template_image(sha)
        if found is None:
            log.warning("template image %s of %s is missing; sent without it", sha[:12], sender.address)
            continue
        image, data = found
        stem = re.sub(r"\.[A-Za-z0-9]{1,5}$", "", image.filename) or "image"
        parts.append(OutgoingAttachment(stem + IMAGE_TYPES[image.content_type], image.content_type, data,
                                        content_id=content_id(sha)))
    return parts
