"""How a message is shown in the workspace: the document of its sandboxed frame, the folded quote.

Customer HTML is untrusted. It was sanitised when it was stored; it is sanitised again
here (cheap, and a second line if the stored copy came from an older allow-list), then
put in the `srcdoc` of an `<iframe sandbox>` without `allow-scripts` or
`allow-same-origin`. Three layers keep it from reaching the network before the agent
asks:

1. `sanitize_html` drops every way to fetch except `<img src>` (no styles with `url()`,
   no `<link>`, `<object>`, `<base>`, `srcset`, `background=`...);
2. `frame_document` removes every remote source on the parsed tree (`block_remote_images`:
   `src`, `srcset`, `background`, CSS `url()`...) and counts them; the button "Show images"
   appears whenever the count is not 0 and loads the frame again with them;
3. the frame's own Content-Security-Policy (`default-src 'none'`, images only `data:`
   until shown) on top of the page's policy, which the `srcdoc` document inherits.

`cid:` images are inlined as `data:` URIs from the stored attachments, so they show
without a request (a sandboxed frame has no cookies to authenticate one).

Quoted history (the part of a reply that repeats earlier mail) is split off and folded
behind "…" where `app.mail.quotes` says it starts, the same rules that cut the stored
`visible_text`: for HTML at the first quote container the common clients write
(`blockquote`, Gmail's `gmail_quote`, Outlook's reply divider and header div,
Thunderbird's `moz-cite-prefix`, Yahoo's `yahoo_quoted`, our own `ph-quote`) or quote
header in its text, for text at Outlook's "From:/Sent:" block, "-----Original
Message-----", the "On ... wrote:" line (each in a dozen languages) or the trailing
block of `>` lines. A message that starts with a quote folds nothing.

Sanitising, splitting and framing would otherwise be done again for every message each time
a conversation is shown. `message_display()` and `sanitized_note()` keep their results in a
per-process cache keyed by a digest of everything they depend on (the stored HTML and text,
"Show images"), so a changed message is a different key and stale output cannot be served;
it holds at most `DISPLAY_CACHE_BYTES`, least recently used first out. Messages with inline
`cid:` images are not cached (their frames carry the image data).
"""
from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass

from app.cache import SizedLRU
from app.mail.html import block_remote_images, sanitize_html, text_to_html
from app.mail.quotes import quote_start_in_html, quote_start_in_text
from app.security import Policy

#: The frame's only style sheet; its hash goes into the conversation page's CSP.
FRAME_STYLE = (
    "html{color-scheme:light}body{margin:0;padding:4px 2px;font:14px/1.5 system-ui,-apple-system,"
    "'Segoe UI',Roboto,Arial,sans-serif;color:#1d2330;overflow-wrap:anywhere}"
    "img{max-width:100%;height:auto}pre{white-space:pre-wrap}"
    "blockquote{margin:0 0 0 .8ex;border-left:2px solid #ccd;padding-left:1ex;color:#5d6675}"
    "table{max-width:100%}a{color:#2458c6}.ph-blocked{display:inline-block;border:1px dashed #b9c0cb;"
    "color:#5d6675;font-size:12px;padding:2px 6px}"
)
FRAME_STYLE_HASH = "sha256-" + base64.b64encode(hashlib.sha256(FRAME_STYLE.encode()).digest()).decode()

#: Inline cid: images up to this size each (larger ones are listed as attachments only).
MAX_INLINE_IMAGE = 3 * 1024 * 1024

_TAGS = re.compile(r"<[^>]+>")


@dataclass(frozen=True)
class Frame:
    srcdoc: str
    blocked_images: int
    height_class: str


@dataclass
class Body:
    """A message's body split for display."""

    main_html: str
    quoted_html: str  # "" when nothing is quoted (or when not asked for: `split_body(quote=False)`)
    has_quote: bool = False


def split_body(html: str | None, text: str, *, quote: bool = True) -> Body:
    """Sanitised HTML of the new part and of the quoted history of a message (with `quote=False`
    only whether there is one: the tile folds it, and fetches it when unfolded)."""
    if html and html.strip():
        clean = sanitize_html(html)
        cut = quote_start_in_html(clean)
        if cut is None:
            return Body(clean, "")
        return Body(sanitize_html(clean[:cut]), sanitize_html(clean[cut:]) if quote else "", True)
    cut = quote_start_in_text(text or "")
    if cut is None:
        return Body(text_to_html(text), "")
    return Body(text_to_html(text[:cut]), text_to_html(text[cut:]) if quote else "", True)


#: A message frame's own policy: inline styles, data: images and fonts; remote images once the agent asks.
_FRAME_POLICY = Policy({"default-src": ("'none'",), "img-src": ("data:",), "style-src": ("'unsafe-inline'",),
                        "font-src": ("data:",), "form-action": ("'none'",)})
FRAME_CSP = str(_FRAME_POLICY)
FRAME_CSP_IMAGES = str(_FRAME_POLICY.extend(img_src=("http:", "https:")))


def frame_document(body_html: str, *, show_images: bool, inline_images: dict[str, str] | None = None) -> Frame:
    """The `srcdoc` for one message body: our style, a strict CSP, remote images held back."""
    inline_images = {k.lower(): v for k, v in (inline_images or {}).items()}
    body, blocked = block_remote_images(body_html, show=show_images, inline_images=inline_images)
    csp = FRAME_CSP_IMAGES if show_images else FRAME_CSP
    doc = (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
        '<meta name="referrer" content="no-referrer"><base target="_blank">'
        f"<style>{FRAME_STYLE}</style></head><body>{body}</body></html>"
    )
    return Frame(doc, blocked, _height_class(body))


def _height_class(body: str) -> str:
    """A frame height from the amount of content (the frame cannot measure itself without scripts)."""
    text = _TAGS.sub(" ", body)
    lines = body.lower().count("<br") + body.lower().count("<p") + body.lower().count("<tr") + len(text) // 90
    lines += 6 * body.lower().count("<img")
    for cls, limit in (("h1", 4), ("h2", 8), ("h3", 14), ("h4", 22), ("h5", 34)):
        if lines <= limit:
            return cls
    return "h6"


def inline_image_data(attachments, load) -> dict[str, str]:
    """{content-id: data URI} for a message's inline images (`load(sha256) -> bytes`)."""
    out = {}
    for att in attachments:
        if att.content_id and att.content_type.lower().startswith("image/") and att.size <= MAX_INLINE_IMAGE:
            try:
                data = load(att.sha256)
            except KeyError:
                continue
            out[att.content_id.strip("<>")] = (
                f"data:{att.content_type.lower()};base64," + base64.b64encode(data).decode("ascii"))
    return out


@dataclass(frozen=True)
class MessageDisplay:
    """What a tile shows of a message body: the frame of its new part, and whether a quote is folded."""

    frame: Frame
    has_quote: bool


#: Bytes (characters) of frames and notes `message_display()` / `sanitized_note()` keep per process.
#: The page's tiles are cached whole as well (app.web.Fragments): this one serves their misses and
#: the "Show images" bodies.
DISPLAY_CACHE_BYTES = 8 * 1024 * 1024


_cache = SizedLRU(DISPLAY_CACHE_BYTES)


def _digest(kind: str, *parts: str | None) -> bytes:
    """A key for `parts` that no other parts can produce (each is length-prefixed)."""
    h = hashlib.blake2b(kind.encode(), digest_size=20)
    for part in parts:
        data = (part or "").encode("utf-8", "surrogatepass")
        h.update(b"%d:" % len(data))
        h.update(data)
    return h.digest()


def message_display(html: str | None, text: str, *, show_images: bool = False,
                    inline_images: dict[str, str] | None = None) -> MessageDisplay:
    """`split_body` + `frame_document` of a message's new part, from the cache when it was
    computed before for the same HTML, text and `show_images` (see the module docstring)."""
    if inline_images:
        body = split_body(html, text, quote=False)
        return MessageDisplay(frame_document(body.main_html, show_images=show_images, inline_images=inline_images),
                              body.has_quote)
    key = _digest("frame:1" if show_images else "frame:0", html, text)
    found = _cache.get(key)
    if found is None:
        body = split_body(html, text, quote=False)
        found = MessageDisplay(frame_document(body.main_html, show_images=show_images), body.has_quote)
        _cache.put(key, found, len(found.frame.srcdoc) + 200)
    return found


def sanitized_note(html: str) -> str:
    """`sanitize_html` of an internal note's stored HTML, cached like `message_display`."""
    key = _digest("note", html)
    found = _cache.get(key)
    if found is None:
        found = sanitize_html(html)
        _cache.put(key, found, len(found) + 100)
    return found


def snippet(text: str, length: int = 140) -> str:
    one_line = " ".join((text or "").split())
    return one_line if len(one_line) <= length else one_line[: length - 1].rstrip() + "…"
