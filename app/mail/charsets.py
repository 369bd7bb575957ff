"""Charset labels to Python codecs, and bytes to text that never raises.

Mail declares charsets wrongly all the time (`ks_c_5601-1987`, `gb2312` whose bytes
are GBK, `iso-8859-1` that is really windows-1252 or UTF-8) or not at all (raw 8-bit
headers, bodies without a charset). `decode_text` reads bytes through one fallback
chain and says which reading won:

1. the declared charset (`codec_for`, through `LABELS` for names Python does not know);
2. its superset (`SUPERSETS`: gb2312 → gb18030, iso-8859-1 → windows-1252, euc-kr → cp949,
   shift_jis → cp932, ...), what the sender's software really wrote;
3. UTF-8 (also ahead of a declared single-byte charset when the bytes are valid multi-byte
   UTF-8: Latin-1 text practically never is, UTF-8 mislabelled Latin-1 always is), then UTF-8
   with a few broken sequences replaced (a name cut in the middle of a character);
4. a hint (the charset the message's body declares, for its raw 8-bit headers);
5. windows-1252 when the bytes look like Latin text (a detector guesses badly on short
   strings: "Problème" comes out as cp1250 and "Größe" as EBCDIC);
6. `charset-normalizer` among the charsets mail really uses, on at most `DETECT_BYTES`;
7. the best candidate with replacement characters.

Plain ASCII and valid UTF-8 never reach the detector (it costs milliseconds).
"""
from __future__ import annotations

import codecs
import re

#: Labels Python does not know, or knows as something else; "" means "no charset declared".
LABELS = {
    "utf8": "utf-8", "unicode-1-1-utf-8": "utf-8", "x-unknown": "", "unknown-8bit": "", "unknown": "",
    "x-user-defined": "cp1252", "default": "", "charset": "", "us-ascii": "ascii", "ansi_x3.4-1968": "ascii",
    "ks_c_5601-1987": "euc-kr", "ks_c_5601": "euc-kr", "ks_c_5601-1989": "euc-kr", "x-gbk": "gbk",
    "cp936": "gbk", "ms932": "cp932", "windows-31j": "cp932", "x-sjis": "shift_jis", "sjis": "shift_jis",
    "iso-8859-8-i": "iso-8859-8", "iso-8859-6-i": "iso-8859-6", "windows-874": "cp874",
    "x-mac-roman": "mac_roman", "macintosh": "mac_roman", "utf-7-imap": "utf-7", "cp-850": "cp850", "646": "ascii",
}
#: Python codec → the superset senders' software really writes when it says the former.
SUPERSETS = {
    "ascii": "cp1252", "iso8859-1": "cp1252", "gb2312": "gb18030", "gbk": "gb18030", "euc_kr": "cp949",
    "shift_jis": "cp932", "big5": "big5hkscs", "iso8859-9": "cp1254", "tis-620": "cp874", "iso8859-11": "cp874",
    "iso2022_jp": "iso2022_jp_ext", "iso8859-8": "cp1255",
}
#: Friendlier names for the notes ("read as windows-1252", not "cp1252").
_NAMES = {"cp1252": "windows-1252", "cp1250": "windows-1250", "cp1251": "windows-1251", "cp1254": "windows-1254",
          "cp1255": "windows-1255", "iso8859-1": "iso-8859-1", "utf-8": "utf-8"}
#: Charsets the detector may answer: what mail in the wild is written in (EBCDIC and friends never are).
DETECTABLE = ["cp1250", "cp1251", "cp1253", "cp1254", "cp1255", "cp1256", "cp1257", "koi8_r", "gb18030",
              "big5", "cp932", "euc_jp", "cp949", "cp874", "iso8859_7", "cp1258"]
#: The detector reads at most this much of a body (its time grows with the length).
DETECT_BYTES = 8192
# Encodings that are not ASCII supersets: their 7-bit bytes still need the codec.
_NOT_ASCII_SAFE = ("utf_16", "utf-16", "utf_32", "utf-32", "utf-7", "utf_7", "iso2022", "hz", "cp037", "cp500")
_SINGLE_BYTE = re.compile(r"^(iso8859-\d+|cp125\d|koi8-[ru]|mac_roman|cp874|tis-620|cp85\d|ascii)$")
# Latin text in windows-1252: letters of Latin-1 and the punctuation Windows adds, never long runs of them.
_LATIN = re.compile(r"[^\x00-\x7f]")
_LATIN_OK = set("ÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÐÑÒÓÔÕÖØÙÚÛÜÝÞßàáâãäåæçèéêëìíîïðñòóôõöøùúûüýþÿŒœŠšŽžŸƒ"
                "€‚„…†‡ˆ‰‹›‘’“”•–—˜™¡¿«»°§©®·\u00a0ªº½¼¾¢£¥")
_LATIN_RUN = re.compile(r"[^\x00-\x7f\xa0]{4,}")  # no-break spaces come in runs in HTML


def codec_for(charset: str | None) -> str | None:
    """The Python codec of a MIME charset label as declared, or None when unknown/absent."""
    if not charset:
        return None
    label = str(charset).strip().strip("\"'").lower().split("*", 1)[0]  # RFC 2231 "utf-8*en"
    label = LABELS.get(label, label)
    if not label:
        return None
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def decode_bytes(data: bytes, charset: str | None, defects: list[str] | None = None) -> str:
    """Bytes to text through `decode_text`'s chain; its note (if any) goes into `defects`."""
    text, note = decode_text(data, charset)
    if note and defects is not None:
        defects.append(f"text: {note}")
    return text


def decode_text(data: bytes, charset: str | None, *, hint: str | None = None) -> tuple[str, str | None]:
    """Bytes to text, never raising: (text, a note on the fallback taken or None when it read as declared).

    `charset` is the declared label (None: none declared); `hint` a charset to try when
    the declared one and UTF-8 fail (the body's, for raw 8-bit headers).
    """
    declared = codec_for(charset)
    if declared is None and charset and LABELS.get(str(charset).strip().strip("\"'").lower(), None) != "":
        said = f"unknown charset {str(charset)[:40]!r}"
    else:
        said = f"declared {charset}" if declared else "no charset"
    if (declared is None or not declared.startswith(_NOT_ASCII_SAFE)) and data.isascii():
        return data.decode("ascii"), None
    if declared:
        superset = SUPERSETS.get(declared)
        if _SINGLE_BYTE.match(declared):
            text = _utf8(data)
            if text is not None:
                return text, f"{said}, read as utf-8"
        text = _try(data, declared)
        if text is not None and not (superset and declared == "iso8859-1" and re.search(rb"[\x80-\x9f]", data)):
            return text, None
        if superset:
            text = _try(data, superset)
            if text is not None:
                return text, f"{said}, read as {_name(superset)}"
    if declared != "utf-8":
        text = _utf8(data)
        if text is not None:
            return text, (f"{said}, read as utf-8" if declared or said != "no charset" else None)
    text = _mostly_utf8(data)
    if text is not None:
        return text, f"{said}, read as utf-8 with undecodable bytes replaced"
    hinted = codec_for(hint)
    if hinted and hinted != declared and hinted not in ("utf-8", "ascii"):
        hinted = SUPERSETS.get(hinted, hinted)
        text = _try(data, hinted)
        if text is not None:
            return text, f"{said}, read as {_name(hinted)} (the charset the message declares)"
    text = _latin(data)
    if text is not None:
        return text, f"{said}, read as windows-1252"
    found = _detect(data)
    if found is not None:
        text = _try(data, found)
        if text is not None:
            return text, f"{said}, detected {_name(found)}"
    codec = SUPERSETS.get(declared, declared) if declared else (found or "cp1252")
    try:
        text = data.decode(codec, errors="replace")
    except Exception:  # noqa: BLE001 - some codecs raise other errors on junk
        codec, text = "latin-1", data.decode("latin-1")
    return text, f"{said}, read as {_name(codec)} with undecodable bytes replaced"


def _try(data: bytes, codec: str) -> str | None:
    try:
        return data.decode(codec)
    except Exception:  # noqa: BLE001 - UnicodeDecodeError, and some codecs raise others on junk
        return None


def _utf8(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _mostly_utf8(data: bytes) -> str | None:
    """UTF-8 with a few broken sequences (a name cut in the middle of a character): many valid
    multi-byte characters and at most one bad byte in ten of them."""
    text = data.decode("utf-8", errors="replace")
    bad = text.count("\ufffd") - data.count(b"\xef\xbf\xbd")
    multibyte = sum(1 for c in text if c > "\x7f" and c != "\ufffd")
    return text if multibyte >= 3 and bad * 10 <= multibyte else None


def _latin(data: bytes) -> str | None:
    """windows-1252 text when the bytes read as Latin letters and punctuation, short runs of them."""
    text = _try(data, "cp1252")
    if text is None or _LATIN_RUN.search(text):
        return None
    return text if all(c in _LATIN_OK for c in _LATIN.findall(text)) else None


def _detect(data: bytes) -> str | None:
    try:
        from charset_normalizer import from_bytes
    except ImportError:  # pragma: no cover - it is in requirements.txt
        return None
    try:
        best = from_bytes(data[:DETECT_BYTES], cp_isolation=DETECTABLE).best()
    except Exception:  # noqa: BLE001 - a detector must not break a parse
        return None
    if best is None:
        return None
    try:
        return codecs.lookup(best.encoding).name
    except LookupError:
        return None


def _name(codec: str) -> str:
    return _NAMES.get(codec, codec.replace("_", "-"))
