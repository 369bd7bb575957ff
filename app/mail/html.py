"""HTML in mail: sanitising (nh3) and conversion to plain text (inscriptis).

`sanitize_html` is the one allow-list for HTML we store or show: formatting, links,
tables and images survive; scripts, styles blocks, event handlers, forms, frames,
objects and `javascript:` URLs do not. Inline `style` attributes are kept but
filtered to harmless presentation properties. Remote images survive sanitising
(they are blocked at display time until the agent asks); pass
`remote_images=False` to drop them here.

`block_remote_images` is that display-time block. It works on the parsed tree (lxml, the
parser under inscriptis), never on the text with regular expressions: an `alt="a>b"` or
any other quoting trick cannot hide a `src` from it. It removes every way an element
fetches a URL when shown — `src`, `srcset`, `background`, `poster`, `data`, `href` on
anything but a link, `url()`/`image-set()`/`@import` in a `style` attribute or a `<style>`
element — and counts what it removed, so the page offers "Show images" whenever
something was held back. It is written for any HTML, not only what `sanitize_html` lets
through (most of those elements never survive sanitising): it is the second line.
"""
from __future__ import annotations

import html as _html
import re

import lxml.html
import nh3
from lxml import etree

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
#: The CSS properties kept in `style` attributes: the ones the common mail clients (Gmail, Outlook,
#: Apple Mail, Thunderbird) render, so what the Preview shows is what customers see. `background`
#: is kept with its colour only (an image in it would be fetched from the web: see `_style_filter`);
#: without it a light `color` on a dark background came out light on white. docs/templates.md lists them.
ALLOWED_STYLE_PROPERTIES = {
    "background", "background-color", "border", "border-bottom", "border-collapse", "border-color", "border-left",
    "border-radius", "border-right", "border-style", "border-top", "border-width", "color", "display",
    "font", "font-family", "font-size", "font-style", "font-weight", "height", "letter-spacing",
    "line-height", "margin", "margin-bottom", "margin-left", "margin-right", "margin-top", "max-width",
    "min-width", "padding", "padding-bottom", "padding-left", "padding-right", "padding-top",
    "list-style-type", "text-align", "text-decoration", "text-indent", "text-transform", "vertical-align",
    "white-space", "width",
}
URL_SCHEMES = {"http", "https", "mailto", "tel", "cid"}


_DECLARATION = re.compile(r"\s*([-a-zA-Z]+)\s*:\s*((?:[^;\"'(]|\"[^\"]*\"|'[^']*'|\([^)]*\))*)\s*(?:;|$)")
_COLOUR = re.compile(r"#[0-9a-f]{3,8}\b|(?:rgba?|hsla?)\([^)]*\)|[a-z-]+")
_BACKGROUND_WORDS = {"none", "transparent", "repeat", "no-repeat", "repeat-x", "repeat-y", "space", "round",
                     "scroll", "fixed", "local", "top", "bottom", "left", "right", "center", "cover", "contain",
                     "auto", "border-box", "padding-box", "content-box", "inherit", "initial", "unset", "url"}


def _style_filter(value: str) -> str:
    """A `style` attribute whose `background` shorthand keeps only its colour when it also names an image
    (`background: #222 url(x)` becomes `background-color: #222`), so the colour text was written on survives
    without anything fetched; nh3 then keeps only `ALLOWED_STYLE_PROPERTIES`."""
    if "background" not in value.lower():
        return value
    out = []
    for match in _DECLARATION.finditer(value):
        name, body = match.group(1).lower(), match.group(2).strip()
        if name in ("background", "background-image") and css_fetches(body):
            without = (re.sub(r"(?<![a-z-])(?!(?:rgba?|hsla?)\()[a-z-]*\((?:[^()]|\([^)]*\))*\)", " ", body.lower())
                       if name == "background" else "")
            colours = [c for c in _COLOUR.findall(without) if c.lower() not in _BACKGROUND_WORDS]
            if colours:
                out.append(f"background-color:{colours[-1]}")
            continue
        out.append(f"{name}:{body}")
    return ";".join(out)


def _attribute_filter(remote_images: bool):
    def attribute_filter(tag: str, attr: str, value: str):
        if attr == "style":
            return _style_filter(value)
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


#: An `<img>` as nh3 writes it (attributes double-quoted, no `"` inside a value).
_IMG = re.compile(r'<img((?:\s+[^\s=>"]+(?:="[^"]*")?)*)\s*/?>', re.IGNORECASE)


def _drop_empty_images(html: str) -> str:
    """An `<img>` whose source was removed shows nothing or a broken-image box: drop it."""
    if "<img" not in html:
        return html
    return _IMG.sub(lambda m: m.group(0) if re.search(r'\ssrc="', m.group(1), re.IGNORECASE) else "", html)


def sanitize_html(html: str, *, remote_images: bool = True) -> str:
    """Clean untrusted HTML with our allow-list (never raises on junk input).

    Images whose source is not allowed are removed whole, not left as an empty `<img>`.
    """
    if not html:
        return ""
    return _drop_empty_images(_CLEANERS[remote_images].clean(html))


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


# --- Remote content held back until the agent asks -------------------------------------------------

#: Attributes whose URL a browser fetches as soon as the element is shown (`href` only off links).
_FETCHING = {"src", "srcset", "background", "poster", "lowsrc", "dynsrc", "data", "imagesrcset",
             "href", "xlink:href"}
#: Elements whose `href` waits for a click: not a fetch.
_LINKS = {"a", "area"}
#: Browsers drop these anywhere in a URL, and leading/trailing C0 controls and spaces.
_URL_IGNORED = str.maketrans("", "", "\t\n\r")
_CSS_COMMENT = re.compile(r"/\*.*?(?:\*/|$)", re.DOTALL)
_CSS_ESCAPE = re.compile(r"\\([0-9a-fA-F]{1,6})[ \t\r\n\f]?|\\(.)", re.DOTALL)
_CSS_FUNCTION = re.compile(r"([a-z-]*)\s*\(\s*(['\"]?)\s*([^'\"\s)]*)")
_CSS_STRING = re.compile(r"['\"]\s*([^'\"]*)")
_CSS_IMAGE_FUNCTIONS = ("image-set", "image", "cross-fade", "element")


def _url_kind(value: str) -> str:
    """"data", "cid", "fragment" (a `#id` in the same document), "remote" (the web: what "Show
    images" lets load) or "other" (relative URLs, `javascript:`...: never kept)."""
    url = value.translate(_URL_IGNORED).strip("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x0e\x0f"
                                             "\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d"
                                             "\x1e\x1f ").lower()
    if url.startswith("data:"):
        return "data"
    if url.startswith("cid:"):
        return "cid"
    if url.startswith("#"):
        return "fragment"
    if url.startswith(("http://", "https://", "//", "/\\", "\\")):
        return "remote"
    return "other"


def _srcset_kind(value: str) -> str:
    """The `_url_kind` of a `srcset` ("url 1x, url 2x"): "data" when every candidate is one,
    "remote" when any is, "other" otherwise."""
    kinds = {_url_kind(c.split()[0]) for c in re.split(r",\s+(?=\S)", value.strip()) if c.strip()}
    if kinds == {"data"}:
        return "data"
    return "remote" if "remote" in kinds else "other"


def _css_unescape(match: re.Match) -> str:
    if match.group(1):
        code = int(match.group(1), 16)
        return chr(code) if 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF else "\ufffd"
    return match.group(2)


def css_fetches(css: str) -> bool:
    """Whether CSS (a `style` attribute or sheet) would fetch something that is not a data: URL:
    `url()`, `image-set()` and the other image functions, `@import`. Escapes and comments are
    undone first (`u\\72l(` is `url(`); when in doubt, it says yes."""
    text = _CSS_ESCAPE.sub(_css_unescape, _CSS_COMMENT.sub("", css or "")).lower()
    if "@import" in text:
        return True
    for match in _CSS_FUNCTION.finditer(text):
        name, target = match.group(1), match.group(3)
        if name in ("url", "src") and not target.startswith("data:"):
            return True
        if name.endswith(_CSS_IMAGE_FUNCTIONS):
            # Strings inside (image-set("a.png" 1x)) are URLs too.
            if any(not s.startswith("data:") for s in _CSS_STRING.findall(text[match.start():])):
                return True
    return False


#: `hold=True` keeps a blocked attribute under this prefix (`data-ph-src`), for `release_held_images`.
HELD_PREFIX = "data-ph-"


def block_remote_images(html: str, *, show: bool = False, hold: bool = False,
                        inline_images: dict[str, str] | None = None) -> tuple[str, int]:
    """`html` with nothing that fetches from outside, and how many things were held back.

    `cid:` sources become the data: URI `inline_images` has for their content id (lower case,
    without `<>`) or are removed. With `show=True` remote sources stay (the agent asked) and
    the count is 0. Blocked images keep their place as `class="ph-blocked"`. Never raises:
    HTML the parser cannot read comes back as escaped text.

    `hold=True` is for HTML the agent edits (the composer): a blocked attribute is kept as
    `data-ph-<name>` instead of removed, so `release_held_images` can give it back when the
    edited HTML is saved, and only remote sources are touched (`cid:` and the rest stay).
    """
    if not html or not html.strip():
        return html or "", 0
    inline_images = inline_images or {}
    try:
        root = lxml.html.fragment_fromstring(html, create_parent="div")
    except (etree.ParserError, ValueError):
        return _html.escape(html), 0
    blocked = 0
    for element in list(root.iter()):
        if not isinstance(element.tag, str):  # comments, processing instructions
            if element.getparent() is not None:
                element.drop_tree()
            continue
        tag = element.tag.lower()
        for name in [a for a in element.attrib if a.lower() in _FETCHING]:
            lowered, value = name.lower(), element.attrib[name]
            if lowered in ("href", "xlink:href") and tag in _LINKS:
                continue
            kind = _srcset_kind(value) if lowered in ("srcset", "imagesrcset") else _url_kind(value)
            if hold:
                if kind == "remote" and not show:
                    element.attrib[HELD_PREFIX + lowered.replace(":", "-")] = value
                    del element.attrib[name]
                    blocked += 1
            elif kind == "cid" and lowered == "src":
                data = inline_images.get(value.strip()[4:].strip("<>").lower())
                if data:
                    element.attrib[name] = data
                else:
                    del element.attrib[name]
            elif kind not in ("data", "fragment", "remote"):
                del element.attrib[name]
            elif kind == "remote" and not show:
                del element.attrib[name]
                blocked += 1
                if tag == "img" and lowered == "src":
                    element.attrib["class"] = (element.attrib.get("class", "") + " ph-blocked").strip()
        if "style" in element.attrib and not show and css_fetches(element.attrib["style"]):
            if hold:
                element.attrib[HELD_PREFIX + "style"] = element.attrib["style"]
            del element.attrib["style"]
            blocked += 1
        if tag == "style" and not show and css_fetches(element.text or ""):
            element.text = ""
            blocked += 1
    out = lxml.html.tostring(root, encoding=str, method="html")
    return out[len("<div>"):-len("</div>")], blocked


def release_held_images(html: str) -> str:
    """Give back what `block_remote_images(hold=True)` kept aside (`data-ph-src` becomes `src`
    again, unless the element has a `src` of its own). Sanitise afterwards, as any agent HTML."""
    if not html or HELD_PREFIX not in html:
        return html or ""
    try:
        root = lxml.html.fragment_fromstring(html, create_parent="div")
    except (etree.ParserError, ValueError):
        return html
    names = {HELD_PREFIX + n.replace(":", "-"): n for n in (*_FETCHING, "style")}
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        for held in [a for a in element.attrib if a.lower() in names]:
            value = element.attrib.pop(held)
            if names[held.lower()] not in element.attrib:
                element.attrib[names[held.lower()]] = value
    out = lxml.html.tostring(root, encoding=str, method="html")
    return out[len("<div>"):-len("</div>")]
