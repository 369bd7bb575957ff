"""HTML in mail: sanitising (nh3) and conversion to plain text (inscriptis).

`sanitize_html` is the one allow-list for HTML we store or show: formatting, links,
tables and images survive; scripts, styles blocks, event handlers, forms, frames,
objects and `javascript:` URLs do not. Inline `style` attributes are kept but
filtered to harmless presentation properties. Remote images survive sanitising
(they are blocked at display time until the agent asks); pass
`remote_images=False` to drop them here.
"""
from __future__ import annotations

import html as _html
import re

import nh3

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "center", "code", "col", "colgroup", "dd", "del", "div",
    "dl", "dt", "em", "font", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "ol",
    "p", "pre", "q", "s", "small", "span", "strike", "strong", "sub", "sup", "table", "tbody", "td", "tfoot",
    "th", "thead", "tr", "tt", "u", "ul",
}
_COMMON = {"align", "bgcolor", "class", "color", "dir", "height", "lang", "style", "title", "valign", "width"}
ALLOWED_ATTRIBUTES = {
    "*": _COMMON,
    "a": {"href", "name", "target"},
    "img": {"src", "alt", "border", "hspace", "vspace"},
    "font": {"face", "size"},
    "table": {"border", "cellpadding", "cellspacing", "summary"},
    "td": {"colspan", "rowspan", "nowrap"},
    "th": {"colspan", "rowspan", "scope"},
    "col": {"span"},
    "colgroup": {"span"},
    "ol": {"start", "type"},
    "blockquote": {"cite", "type"},
}
ALLOWED_STYLE_PROPERTIES = {
    "background-color", "border", "border-bottom", "border-collapse", "border-color", "border-left",
    "border-radius", "border-right", "border-style", "border-top", "border-width", "color", "display",
    "font", "font-family", "font-size", "font-style", "font-weight", "height", "letter-spacing",
    "line-height", "margin", "margin-bottom", "margin-left", "margin-right", "margin-top", "max-width",
    "min-width", "padding", "padding-bottom", "padding-left", "padding-right", "padding-top",
    "text-align", "text-decoration", "text-transform", "vertical-align", "white-space", "width",
}
URL_SCHEMES = {"http", "https", "mailto", "tel", "cid"}


def _attribute_filter(remote_images: bool):
    def attribute_filter(tag: str, attr: str, value: str):
        if tag == "img" and attr == "src":
            lowered = value.strip().lower()
            if lowered.startswith("data:image/") and ";base64," in lowered:
                return value
            if lowered.startswith("cid:"):
                return value
            if lowered.startswith(("http://", "https://")):
                return value if remote_images else None
            return None
        return value

    return attribute_filter


# Built once: passing the allow-lists to nh3.clean() on every call cost two thirds of its time.
_CLEANERS = {
    remote_images: nh3.Cleaner(
        tags=ALLOWED_TAGS,
        clean_content_tags={"script", "style", "title", "head", "template", "noscript"},
        attributes=ALLOWED_ATTRIBUTES,
        attribute_filter=_attribute_filter(remote_images),
        url_schemes=URL_SCHEMES | {"data"},
        filter_style_properties=ALLOWED_STYLE_PROPERTIES,
        link_rel="noopener noreferrer",
        strip_comments=True,
    )
    for remote_images in (True, False)
}


def sanitize_html(html: str, *, remote_images: bool = True) -> str:
    """Clean untrusted HTML with our allow-list (never raises on junk input)."""
    if not html:
        return ""
    return _CLEANERS[remote_images].clean(html)


def html_to_text(html: str) -> str:
    """Readable plain text of an HTML fragment or document (layout-aware, links kept as text)."""
    if not html or not html.strip():
        return ""
    from inscriptis import get_text
    from inscriptis.css_profiles import CSS_PROFILES
    from inscriptis.model.config import ParserConfig

    # The "strict" profile adds no indentation of its own to nested blocks.
    text = get_text(html, ParserConfig(css=CSS_PROFILES["strict"], display_links=False))
    text = re.sub(r"[ \t]+\n", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def text_to_html(text: str) -> str:
    """Plain text as safe HTML paragraphs, line breaks kept."""
    paragraphs = re.split(r"\n\s*\n", (text or "").strip())
    return "".join(
        "<p>" + _html.escape(p).replace("\n", "<br>") + "</p>" for p in paragraphs if p.strip()
    )
