"""Reply and forward subjects, one rule for the whole app.

Mail clients mark replies and forwards with prefixes in their user's language, with
counters and full-width colons: "Re:", "RE:", "AW:", "SV:", "Antw:", "Re[2]:",
"回复：", "WG:", "Fwd:", "TR:" ... RFC 5322 (3.6.5) asks a reply for "Re: " once,
whatever came before. So:

* `reply_subject("AW: Re[2]: Order 17")` is "Re: Order 17": every leading reply
  prefix goes, one "Re: " comes; a forward marker stays ("Re: Fwd: Order 17");
* `forward_subject("WG: Order 17")` is "Fwd: Order 17": leading forward prefixes
  go, one "Fwd: " comes; a reply marker stays ("Fwd: Re: Order 17");
* `thread_key(...)` drops every reply and forward prefix (and bare "[2]" counters),
  folds case and white space: what subject threading compares ("Re: AW: [2] Fwd: Order 17" -> "order 17").

The composer, outbound mail, automatic replies and acknowledgements and threading all
use these; nobody else writes a prefix pattern.
"""
from __future__ import annotations

import re

#: Reply prefixes, lower case: English, German, Nordic, Dutch, Polish, Finnish, Italian, French,
#: Portuguese, Spanish, Turkish, Hungarian, Greek, Chinese.
REPLY_WORDS = ("re", "aw", "sv", "svar", "antw", "antwort", "odp", "vs", "r", "rif", "ref", "réf", "res",
               "ynt", "ats", "vá", "va", "απ", "σχετ", "回复", "回覆", "答复")
#: Forward prefixes, lower case.
FORWARD_WORDS = ("fwd", "fw", "wg", "tr", "enc", "rv", "doorst", "fs", "vl", "vb", "pd", "ilt", "ang",
                 "转发", "轉寄", "转寄")

_COUNTER = r"(?:\s*(?:\[\d+\]|\(\d+\)))?"


def _prefix(words: tuple[str, ...]) -> re.Pattern:
    alternatives = "|".join(sorted((re.escape(w) for w in words), key=len, reverse=True))
    return re.compile(rf"^\s*(?:{alternatives}){_COUNTER}\s*[:：]\s*", re.IGNORECASE)


_REPLY = _prefix(REPLY_WORDS)
_FORWARD = _prefix(FORWARD_WORDS)
_ANY = _prefix(REPLY_WORDS + FORWARD_WORDS)
_COUNTER_ALONE = re.compile(r"^\s*\[\d+\]\s*")  # "Re: [2] Fwd: ..." as some clients write it


def _strip(subject: str, prefix: re.Pattern) -> str:
    previous = None
    while previous != subject:
        previous = subject
        subject = prefix.sub("", subject, count=1)
    return subject.strip()


def reply_subject(subject: str | None) -> str:
    """The subject of a reply: "Re: " once before the subject without its leading reply prefixes."""
    rest = _strip((subject or "").strip(), _REPLY)
    return f"Re: {rest}" if rest else "Re:"


def forward_subject(subject: str | None) -> str:
    """The subject of a forward: "Fwd: " once before the subject without its leading forward prefixes."""
    rest = _strip((subject or "").strip(), _FORWARD)
    return f"Fwd: {rest}" if rest else "Fwd:"


def thread_key(subject: str | None) -> str:
    """The subject without any reply/forward prefix or leading tag, case-folded, spaces collapsed."""
    s = subject or ""
    previous = None
    while previous != s:
        previous = s
        s = _COUNTER_ALONE.sub("", _ANY.sub("", s, count=1), count=1)
    return re.sub(r"\s+", " ", s).strip().casefold()
