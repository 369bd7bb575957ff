"""Charset labels to Python codecs, and bytes to text that never raises.

Mail declares charsets wrongly all the time (`ks_c_5601-1987`, `gb2312` whose bytes
are GBK, `iso-8859-1` that is really windows-1252). `codec_for` maps a label to the
codec that reads what senders actually write; `decode_bytes` tries it, then UTF-8,
then replaces what still does not decode.
"""
from __future__ import annotations

import codecs

CHARSET_ALIASES = {
    "utf8": "utf-8", "unicode-1-1-utf-8": "utf-8", "x-unknown": "", "unknown-8bit": "", "unknown": "",
    "x-user-defined": "cp1252", "default": "", "charset": "", "us-ascii": "ascii", "ansi_x3.4-1968": "ascii",
    "iso-8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252", "iso8859-1": "cp1252",
    "ks_c_5601-1987": "cp949", "ks_c_5601": "cp949", "euc-kr": "cp949", "gb2312": "gb18030", "gbk": "gb18030",
    "x-gbk": "gb18030", "cp936": "gb18030", "big5": "big5hkscs", "shift_jis": "cp932", "shift-jis": "cp932",
    "sjis": "cp932", "x-sjis": "cp932", "ms932": "cp932", "windows-31j": "cp932", "iso-2022-jp": "iso2022_jp_ext",
    "iso-8859-8-i": "iso-8859-8", "iso-8859-6-i": "iso-8859-6", "windows-874": "cp874", "tis-620": "cp874",
    "iso-8859-11": "cp874", "x-mac-roman": "mac_roman", "macintosh": "mac_roman", "utf-7-imap": "utf-7",
    "cp-850": "cp850", "646": "ascii",
}


def codec_for(charset: str | None) -> str | None:
    """A Python codec name for a MIME charset label, or None when unknown/absent."""
    if not charset:
        return None
    label = str(charset).strip().strip("\"'").lower()
    label = CHARSET_ALIASES.get(label, label)
    if not label:
        return None
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def decode_bytes(data: bytes, charset: str | None, defects: list[str] | None = None) -> str:
    """Bytes to text: declared charset, then UTF-8, then with replacement characters."""
    codec = codec_for(charset)
    if codec:
        try:
            return data.decode(codec)
        except (UnicodeDecodeError, LookupError):
            pass
        except Exception:  # noqa: BLE001 - some codecs raise other errors on junk
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if defects is not None and charset:
        defects.append(f"text not valid in its charset {charset!r}; undecodable bytes replaced")
    try:
        return data.decode(codec or "cp1252", errors="replace")
    except Exception:  # noqa: BLE001
        return data.decode("latin-1")
