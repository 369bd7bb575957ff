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
  folds case and white space: what subject threading compares ("Re: AW: [2] Fwd: Order 17" -> "order 17");
  `thread_key(..., automatic=True)`, for an automatic reply, drops the out-of-office and read-receipt
  prefixes mail servers put before the subject they answer too ("Automatische Antwort: AW: Order 17",
  "Read: Re: Order 17" -> "order 17"). Only for automatic replies: a person may well write "Read: the
  contract", and that is not "the contract";
* `is_automatic_subject(...)`: whether the subject is an automatic reply's, for servers that send one
  without RFC 3834's `Auto-Submitted` (older Exchange, some webmail).

The composer, outbound mail, automatic replies and acknowledgements, the parser's classification
and threading all use these; nobody else writes a prefix pattern.
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

#: Out-of-office and other automatic replies' prefixes, lower case: what Exchange/Outlook, Gmail, Zimbra,
#: Apple Mail and webmail write in English, German, French, Spanish, Italian, Portuguese, Dutch, the Nordic
#: languages, Polish, Finnish, Czech, Hungarian, Turkish, Russian, Greek, Chinese, Japanese and Korean.
AUTOMATIC_WORDS = (
    "automatic reply", "automatic response", "auto reply", "auto-reply", "autoreply", "auto response",
    "auto-response", "autoresponse", "auto", "out of office", "out of the office", "out of office autoreply",
    "out of office reply", "automatische antwort", "autoantwort", "abwesend", "abwesenheitsnotiz",
    "réponse automatique", "reponse automatique", "respuesta automática", "respuesta automatica",
    "risposta automatica", "resposta automática", "resposta automatica", "automatisch antwoord", "autosvar",
    "automatiskt svar", "automatisk svar", "automatisk besvarelse", "frånvaro", "fravær",
    "automatyczna odpowiedź", "poza biurem", "automaattinen vastaus", "automatická odpověď",
    "automatikus válasz", "otomatik yanıt", "otomatik cevap", "автоматический ответ", "автоответ",
    "αυτόματη απάντηση", "自动回复", "自動回覆", "自動回復", "自動応答", "自動返信", "자동 회신", "자동 응답",
)
#: Read receipts' prefixes (MDNs), lower case.
RECEIPT_WORDS = ("read", "not read", "gelesen", "nicht gelesen", "lu", "non lu", "leído", "leido", "no leído",
                 "letto", "non letto", "lida", "gelezen", "niet gelezen", "läst", "inte läst", "læst", "lest",
                 "przeczytano", "przeczytane", "luettu", "přečteno", "已读", "已讀", "開封済み", "읽음")

_COUNTER = r"(?:\s*(?:\[\d+\]|\(\d+\)))?"


def _alternatives(words: tuple[str, ...]) -> str:
    """The words as one regex alternation, longest first, any run of white space inside a phrase."""
    return "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in sorted(words, key=len, reverse=True))


def _prefix(words: tuple[str, ...]) -> re.Pattern:
    return re.compile(rf"^\s*(?:{_alternatives(words)}){_COUNTER}\s*[:：]\s*", re.IGNORECASE)


_REPLY = _prefix(REPLY_WORDS)
_FORWARD = _prefix(FORWARD_WORDS)
_ANY = _prefix(REPLY_WORDS + FORWARD_WORDS)
_ANY_AUTOMATIC = _prefix(REPLY_WORDS + FORWARD_WORDS + AUTOMATIC_WORDS + RECEIPT_WORDS)
_AUTOMATIC = _prefix(AUTOMATIC_WORDS)
#: Out-of-office subjects without a colon ("Out of office until Monday", "Automatic reply from Carla").
_AUTOMATIC_PHRASE = re.compile(
    r"^\s*(?:auto(?:matic)?[ -]?(?:reply|response|antwort)|autoreply|out\s+of\s+(?:the\s+)?office|"
    r"abwesen(?:heitsnotiz|d)|automatische\s+antwort|r[ée]ponse\s+automatique|respuesta\s+autom[aá]tica|"
    r"risposta\s+automatica|automatisch\s+antwoord|frånvaro|fravær|poza\s+biurem|automaattinen\s+vastaus)",
    re.IGNORECASE,
)
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


def thread_key(subject: str | None, *, automatic: bool = False) -> str:
    """The subject without any reply/forward prefix or leading tag, case-folded, spaces collapsed.

    `automatic`: the subject of an automatic reply or read receipt, whose own prefixes go too.
    """
    prefix = _ANY_AUTOMATIC if automatic else _ANY
    s = subject or ""
    previous = None
    while previous != s:
        previous = s
        s = _COUNTER_ALONE.sub("", prefix.sub("", s, count=1), count=1)
    return re.sub(r"\s+", " ", s).strip().casefold()


def is_automatic_subject(subject: str | None) -> bool:
    """Whether the subject says the mail is an automatic reply (out of office, vacation, auto-response)."""
    s = subject or ""
    return bool(_AUTOMATIC.match(s) or _AUTOMATIC_PHRASE.match(s))
