"""Images a header or footer shows, sent inline by Content-ID (never fetched from the web).

The rich-text editor uploads an image; the stored HTML names it `cid:tpl-<sha256>@pigeonhole`
(`content_id`), so the very same HTML is what the outgoing message carries, beside an image
part with that Content-ID in `multipart/related`. Only the editor and the Preview show it from
our own URL instead: `rewrite_image_sources` turns one form into the other on the parsed tree.

`sniff_image` decides the type from the bytes themselves (the upload's name and declared type
are not trusted), and only for the formats every mail client shows: PNG, JPEG and GIF.
"""
from __future__ import annotations

import re
from collections.abc import Callable

import lxml.html
from lxml import etree

IMAGE_TYPES = {"image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif"}
_CID = re.compile(r"^cid:(tpl-([0-9a-f]{64})@pigeonhole)$", re.IGNORECASE)


def sniff_image(data: bytes) -> str | None:
    """The image type of `data` by its signature (PNG, JPEG, GIF), or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    return None


def content_id(sha256: str) -> str:
    """The Content-ID (without `<>`) of an uploaded image."""
    return f"tpl-{sha256}@pigeonhole"


def image_sha256(src: str) -> str | None:
    """The sha256 an `<img src>` names when it is one of our `cid:tpl-…` images, else None."""
    match = _CID.match((src or "").strip())
    return match.group(2).lower() if match else None


def rewrite_image_sources(html: str, change: Callable[[str], str | None]) -> str:
    """`html` with each `<img src>` replaced by `change(src)` (None removes the image).

    Works on the parsed tree (lxml), so quoting tricks cannot hide a source; HTML with no image
    comes back unchanged, byte for byte.
    """
    if not html or "<img" not in html.lower():
        return html or ""
    document = html.lstrip()[:14].lower().startswith(("<!doctype", "<html"))
    try:
        root = (lxml.html.document_fromstring(html) if document
                else lxml.html.fragment_fromstring(html, create_parent="div"))
    except (etree.ParserError, ValueError):
        return html
    changed = False
    for img in list(root.iter("img")):
        src = img.get("src") or ""
        new = change(src)
        if new == src:
            continue
        changed = True
        if new is None:
            img.drop_tree()
        else:
            img.set("src", new)
    if not changed:
        return html
    if document:
        return lxml.html.tostring(root, encoding=str, method="html", doctype="<!DOCTYPE html>")
    out = lxml.html.tostring(root, encoding=str, method="html")
    return out[len("<div>"):-len("</div>")]


def image_sha256s(html: str) -> list[str]:
    """The sha256 of every `cid:tpl-…` image in `html`, each once, in order."""
    found: list[str] = []

    def note(src: str) -> str:
        sha = image_sha256(src)
        if sha and sha not in found:
            found.append(sha)
        return src

    rewrite_image_sources(html, note)
    return found
