"""Readers of the expected results other projects ship with their test mail, and the fields we compare.

Each reader yields `Case`s: the raw bytes of one message and what upstream says it holds, as `Fields`.
A field left `None` is one the corpus says nothing about (that case does not count for that field).
The same `Fields` are extracted from Pigeonhole's `parse_message` (`ours`) and from the stdlib parser used
the obvious way (`baseline`), then compared by `agree` after the normalisation below.

Comparison rules (the same for both parsers; the test's docstring says why):

* subject: Unicode NFC, runs of whitespace collapsed (headers are unfolded);
* from / to / cc: the list of `(display name, address)` with an address holding "@" (local-only names such
  as "To: noone" cannot be answered and are left out on every side), names whitespace-collapsed, addresses
  lower-cased; compared only where upstream's message has the field;
* names: the sorted file names of the attachments that carry a name in the message (made-up names, such
  as ours for an unnamed part, never count); sizes: the sorted `(name, size)` of those whose expected size
  is known (stalwart: binary bodies; mime4j: every decoded part);
* text: the body text, whitespace-normalised; where upstream's body is HTML, both sides are reduced to the
  sequence of words (tags gone, each converter's layout ignored).
"""
from __future__ import annotations

import html.parser
import json
import re
import unicodedata
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from email import message_from_bytes, message_from_string, policy
from email.header import decode_header
from email.policy import compat32
from email.utils import getaddresses
from pathlib import Path
from typing import NamedTuple

FIELDS = ("subject", "from", "to", "cc", "names", "sizes", "text")

Addresses = tuple  # of (name, addr) pairs


@dataclass
class Fields:
    subject: str | None = None
    from_: Addresses | None = None
    to: Addresses | None = None
    cc: Addresses | None = None
    names: tuple | None = None
    sizes: tuple | None = None
    text: "str | KeptDropped | None" = None
    text_is_html: bool = False  # upstream's body text came from HTML: compare words only

    def get(self, name: str):
        return getattr(self, "from_" if name == "from" else name)


@dataclass
class Case:
    corpus: str
    label: str  # the file, relative to the corpora root (and "#n" inside an mbox)
    raw: bytes = field(repr=False)
    expected: Fields


# --- normalisation ---------------------------------------------------------------------------------

def collapse(text: str | None) -> str:
    """NFC, NULs gone (no store keeps them), every run of whitespace one space."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFC", (text or "").replace("\x00", ""))).strip()


def words(text: str | None) -> str:
    return " ".join(re.findall(r"\w+", unicodedata.normalize("NFC", text or "")))


def addresses(pairs) -> Addresses:
    """`(name, addr)` pairs in comparable form: only real addresses, names collapsed, addresses lower-cased."""
    out = []
    for name, addr in pairs:
        addr = (addr or "").strip().lower()
        if "@" in addr:
            out.append((collapse(name).strip('"').strip("'").strip(), addr))
    return tuple(out)


class _Words(html.parser.HTMLParser):
    """The text content of an HTML document, without scripts and styles: a converter neither side owns."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "head", "title"):
            self.skip += 1

    def handle_endtag(self, tag):
        if tag in ("script", "style", "head", "title") and self.skip:
            self.skip -= 1

    def handle_data(self, data):
        if not self.skip:
            self.out.append(data)


def html_words(text: str) -> str:
    parser = _Words()
    try:
        parser.feed(text)
        parser.close()
    except Exception:  # noqa: BLE001 - a reference extraction: whatever it read so far
        pass
    return words(" ".join(parser.out))


def agree(name: str, expected: Fields, got: Fields | None) -> bool:
    if got is None:
        return False
    want, have = expected.get(name), got.get(name)
    if have is None:
        return False
    if name == "text":
        if isinstance(want, KeptDropped):
            return collapse(want.kept) in collapse(have) and (want.dropped is None
                                                              or collapse(want.dropped) not in collapse(have))
        if expected.text_is_html:
            have_words = html_words(have) if got.text_is_html else words(have)
            return html_words(want) == have_words
        return collapse(want) == collapse(have)
    if name == "subject":
        return collapse(want) == collapse(have)
    if name == "sizes":  # only the files whose size upstream gives
        known = {n for n, _ in want}
        have = tuple(sorted((n, s) for n, s in have if n in known))
    return want == have


# --- the two parsers --------------------------------------------------------------------------------

def ours(raw: bytes) -> Fields:
    from app.mail.parse import parse_message

    parsed = parse_message(raw)
    named = [a for a in parsed.attachments if a.named]
    return Fields(
        subject=parsed.subject,
        from_=addresses([(parsed.from_name, parsed.from_addr)]),
        to=addresses(parsed.to), cc=addresses(parsed.cc),
        names=tuple(sorted(a.filename for a in named)),
        sizes=tuple(sorted((a.filename, a.size) for a in named)),
        text=parsed.text,
    )


def baseline(raw: bytes) -> Fields:
    """`email.message_from_bytes(raw, policy=default)` with no extra care; an exception misses that field."""
    out = Fields()
    try:
        msg = message_from_bytes(raw, policy=policy.default)
    except Exception:  # noqa: BLE001
        return out

    def attempt(fn):
        try:
            return fn()
        except Exception:  # noqa: BLE001
            return None

    out.subject = attempt(lambda: str(msg["subject"]) if msg["subject"] is not None else "")
    for name, header in (("from_", "from"), ("to", "to"), ("cc", "cc")):
        setattr(out, name, attempt(lambda h=header: addresses(
            [(a.display_name, a.addr_spec) for a in msg[h].addresses] if msg[h] is not None else [])))

    def attachments():
        found = []
        for part in msg.iter_attachments():
            filename = part.get_filename()
            if filename:
                data = part.get_payload(decode=True)
                found.append((filename, len(data) if isinstance(data, bytes) else 0))
        return found

    found = attempt(attachments)
    if found is not None:
        out.names = tuple(sorted(n for n, _ in found))
        out.sizes = tuple(sorted(found))

    def body():
        part = msg.get_body(("plain", "html"))
        if part is None:
            return ""
        out.text_is_html = part.get_content_subtype() == "html"
        return part.get_content()

    out.text = attempt(body)
    return out


# --- stalwart: a JSON parse per message ------------------------------------------------------------

def _header(part: dict, name: str):
    return next((h["value"] for h in part["headers"] if h["name"] == name), None)


def _stalwart_addresses(value) -> Addresses | None:
    if value is None:
        return None
    if not isinstance(value, dict) or "Address" not in value:
        return ()
    listed = value["Address"].get("List") or [a for g in value["Address"].get("Group") or []
                                              for a in g.get("addresses") or []]
    return addresses((a.get("name") or "", a.get("address") or "") for a in listed)


def _stalwart_name(part: dict) -> str | None:
    for header in ("content_disposition", "content_type"):
        value = _header(part, header)
        if isinstance(value, dict):
            for attr in (value.get("ContentType") or {}).get("attributes") or []:
                if attr["name"] == ("filename" if header == "content_disposition" else "name"):
                    return attr["value"]
    return None


def _safe(name: str) -> str:
    """The file name alone (both parsers drop a path; stalwart keeps it)."""
    return re.sub(r"[\x00-\x1f\x7f]", "", name).replace("\\", "/").split("/")[-1].strip().strip(".")


def stalwart_expected(data: dict) -> Fields:
    parts = data["parts"]
    root = parts[0]
    subject = _header(root, "subject")
    names, sizes = [], []
    for index in data["attachments"]:
        part = parts[index]
        name = _stalwart_name(part)
        if not name or not _safe(name):
            continue
        names.append(_safe(name))
        body = part["body"]
        if isinstance(body, dict) and ("Binary" in body or "InlineBinary" in body):
            sizes.append((_safe(name), len(body.get("Binary") or body.get("InlineBinary") or [])))
    texts, is_html = [], False
    for index in data["text_body"]:
        body = parts[index]["body"]
        if isinstance(body, dict) and "Text" in body:
            texts.append(body["Text"])
        elif isinstance(body, dict) and "Html" in body:
            texts.append(body["Html"])
            is_html = True
        # An image listed in text_body (JMAP's inline media) has no text to compare.
    return Fields(
        subject=(subject.get("Text") if isinstance(subject, dict) else "") if subject is not None else None,
        from_=_stalwart_addresses(_header(root, "from")),
        to=_stalwart_addresses(_header(root, "to")),
        cc=_stalwart_addresses(_header(root, "cc")),
        names=tuple(sorted(names)), sizes=tuple(sorted(sizes)),
        text="\n".join(texts), text_is_html=is_html,
    )


def stalwart_cases(corpora: Path) -> list[Case]:
    """`X.eml` against `X.json` as is, and converted to CRLF against `X.crlf.json` (upstream's parse of the
    CRLF copy: the same facts with CRLF inside the texts and shifted offsets)."""
    root = corpora / "stalwart" / "eml"
    cases = []
    for eml in sorted(root.rglob("*.eml")):
        label = str(eml.relative_to(corpora))
        raw = eml.read_bytes()
        if eml.with_suffix(".json").exists():
            cases.append(Case("stalwart", label, raw,
                              stalwart_expected(json.loads(eml.with_suffix(".json").read_text()))))
        crlf = eml.with_suffix(".crlf.json")
        if crlf.exists():
            converted = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
            cases.append(Case("stalwart-crlf", label, converted, stalwart_expected(json.loads(crlf.read_text()))))
    return cases


# --- mime4j: the structure as XML and each decoded part body ----------------------------------------

def _fields_message(element) -> "email.message.Message":  # noqa: F821
    header = element.find("header")
    lines = [(f.text or "").lstrip("\n") for f in header.findall("field")] if header is not None else []
    # mime4j reads the obsolete "Name : value" form (RFC 5322 4.5.8) as the field "Name".
    lines = [re.sub(r"^([^:\s]+)[ \t]+:", r"\1:", line) for line in lines]
    return message_from_string("\n".join(lines) + "\n\n", policy=compat32)


def _decode_words(value: str | None) -> str:
    """RFC 2047 by the declared charsets, strictly; undecodable text stays as it was."""
    if value is None:
        return ""
    try:
        return "".join(c.decode(cs or "ascii") if isinstance(c, bytes) else c for c, cs in decode_header(value))
    except Exception:  # noqa: BLE001
        return value


def _mime4j_addresses(headers, name: str) -> Addresses | None:
    values = headers.get_all(name)
    if not values:
        return None
    return addresses((_decode_words(n), a) for n, a in getaddresses([str(v) for v in values]))


def _mime4j_filename(headers) -> str | None:
    try:
        name = headers.get_filename()
    except Exception:  # noqa: BLE001
        return None
    return _safe(_decode_words(name)) or None if name else None


def _mime4j_walk(element, folder: Path, state: dict) -> list:
    """Leaves under `element` (a <message> or <body-part>): attachments into `state`, body texts returned
    as `(subtype, text)`; a nested message's parts are its own (an attachment of ours)."""
    headers = _fields_message(element)
    ctype = headers.get_content_type()
    for child in element:
        if child.tag == "multipart":
            parts = child.findall("body-part")
            results = [_mime4j_walk(p, folder, state) for p in parts]
            if ctype == "multipart/alternative":
                plain = [r for r in results if any(s == "plain" for s, _ in r)]
                return plain[-1] if plain else (results[-1] if results else [])
            return [t for r in results for t in r]
        if child.tag == "message":
            name = _mime4j_filename(headers)
            if name:
                state["names"].append(name)
            return []
        if child.tag in ("text-body", "binary-body"):
            data = (folder / child.get("name")).read_bytes()
            name = _mime4j_filename(headers)
            disposition = (headers.get_content_disposition() or "").lower()
            if name:
                state["names"].append(name)
                state["sizes"].append((name, len(data)))
                return []
            if ctype in ("text/plain", "text/html") and disposition != "attachment":
                charset = headers.get_content_charset() or "us-ascii"
                try:
                    text = data.decode(charset, "replace")
                except LookupError:
                    text = data.decode("latin-1")
                return [(ctype.split("/")[1], text)]
            return []
    return []


def mime4j_expected(decoded_xml: Path) -> Fields:
    root = ET.parse(decoded_xml).getroot()
    headers = _fields_message(root)
    state: dict = {"names": [], "sizes": []}
    texts = _mime4j_walk(root, decoded_xml.parent, state)
    # An empty text/plain part (a part without headers is text/plain, RFC 2045 5.2) carries no text: where
    # the words are only in text/html parts, those are the body a reader sees.
    plain = [t for s, t in texts if s == "plain" and t.strip()]
    subject = headers.get("Subject")
    return Fields(
        subject=_decode_words(str(subject)) if subject is not None else None,
        from_=_mime4j_addresses(headers, "From"), to=_mime4j_addresses(headers, "To"),
        cc=_mime4j_addresses(headers, "Cc"),
        names=tuple(sorted(state["names"])), sizes=tuple(sorted(state["sizes"])),
        text="\n".join(plain) if plain else "\n".join(t for _, t in texts),
        text_is_html=not plain and any(s == "html" for s, _ in texts),
    )


def mime4j_cases(corpora: Path) -> list[Case]:
    """`X.msg` against `X_decoded.xml` (structure, raw header fields) and its `X_decoded_*` bodies.
    (`X.out` is mime4j's own re-serialisation of the parse, a round-trip check of theirs: no field facts.)"""
    cases = []
    for msg in sorted((corpora / "mime4j").rglob("*.msg")):
        decoded = msg.with_name(msg.stem + "_decoded.xml")
        if decoded.exists():
            cases.append(Case("mime4j", str(msg.relative_to(corpora)), msg.read_bytes(), mime4j_expected(decoded)))
    return cases


# --- mimekit: mbox summaries and TNEF attachment lists ---------------------------------------------

def _summary_blocks(text: str) -> list[dict]:
    blocks = []
    for block in re.split(r"^From .*\n", text, flags=re.MULTILINE)[1:]:
        entry = {}
        for line in block.splitlines():
            if line.startswith(("From: ", "To: ", "Subject: ", "Cc: ")):
                key, _, value = line.partition(": ")
                entry[key.lower()] = value
        blocks.append(entry)
    return blocks


def mimekit_mbox_cases(corpora: Path) -> list[Case]:
    """Each message of `X.mbox.txt` (cut at `X.unix-offsets.json`'s offsets) against `X-summary.txt`
    (MimeKit's decoded From, To and Subject)."""
    cases = []
    folder = corpora / "mimekit" / "mbox"
    for summary in sorted(folder.glob("*-summary.txt")):
        stem = summary.name[:-len("-summary.txt")]
        mbox, offsets = folder / f"{stem}.mbox.txt", folder / f"{stem}.unix-offsets.json"
        if not (mbox.exists() and offsets.exists()):
            continue
        data = mbox.read_bytes()
        spans = json.loads(offsets.read_text())
        blocks = _summary_blocks(summary.read_text(errors="replace"))
        for n, (span, entry) in enumerate(zip(spans, blocks)):
            raw = data[span["beginOffset"]:span["endOffset"]]

            def pairs(key):
                return addresses(getaddresses([entry[key]])) if key in entry else None

            expected = Fields(subject=entry.get("subject"), from_=pairs("from"), to=pairs("to"), cc=pairs("cc"))
            cases.append(Case("mimekit-mbox", f"{mbox.relative_to(corpora)}#{n}", raw, expected))
    return cases


def _tnef_message(data: bytes) -> bytes:
    """A minimal message carrying `data` as winmail.dat, the way Outlook sends it."""
    import base64

    body = base64.encodebytes(data).decode("ascii")
    return (
        "From: Outlook <outlook@example.test>\nTo: desk@example.test\nSubject: TNEF\nMIME-Version: 1.0\n"
        'Content-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: text/plain\n\nSee attached.\n'
        '--b\nContent-Type: application/ms-tnef; name="winmail.dat"\nContent-Transfer-Encoding: base64\n'
        'Content-Disposition: attachment; filename="winmail.dat"\n\n' + body + "--b--\n"
    ).encode("ascii")


#: MimeKit lists the TNEF message body (RTF or HTML) as if it were an attachment; we keep the body apart.
_TNEF_BODY = {"body.rtf", "body.html"}


def mimekit_tnef_cases(corpora: Path) -> list[Case]:
    """`X.tnef` (wrapped as winmail.dat) against `X.list`, MimeKit's attachment names. (The files in `X/`
    come from another extractor: their sizes and names disagree with MimeKit's own lists, so no sizes.)"""
    cases = []
    for listing in sorted((corpora / "mimekit" / "tnef").glob("*.list")):
        tnef = listing.with_suffix(".tnef")
        if not tnef.exists():
            continue
        names = [n for n in listing.read_text(errors="replace").splitlines() if n and n not in _TNEF_BODY]
        cases.append(Case("mimekit-tnef", str(tnef.relative_to(corpora)), _tnef_message(tnef.read_bytes()),
                          Fields(names=tuple(sorted(names)))))
    return cases


# --- the reply parsers: our own expectations of the visible text ------------------------------------

class KeptDropped(NamedTuple):
    """An expected visible text given as a phrase it keeps and the first words of the quote it drops
    (None: nothing is cut), as our own reply expectations are written."""

    kept: str
    dropped: str | None


def reply_expectations(path: Path) -> dict[str, KeptDropped]:
    """`tests/data/reply_expectations.json` (`{"reply-github/emails": {"x.txt": {"kept": ..., "dropped": ...}}}`)
    as `{"reply-github/emails/x.txt": KeptDropped}`; empty when the file is not there."""
    if not path.exists():
        return {}
    out = {}
    for folder, files in json.loads(path.read_text()).items():
        if not isinstance(files, dict):
            continue  # "about"
        for name, value in files.items():
            out[f"{folder}/{name}"] = KeptDropped(value["kept"], value.get("dropped"))
    return out
