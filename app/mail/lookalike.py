"""Look-alike sender domains: a From domain made to pass for one of ours at a glance.

`lookalike_of(domain, own_domains)` returns the own domain that `domain` imitates, or None.
Three simple tests, each on the whole domain name, lower-cased:

* **homoglyphs**: the same after mapping letters that look alike (Cyrillic `а` and Latin `a`,
  Greek `ο` and `o`, `0`/`o`, `1`/`l`/`i`, `rn`/`m`, `vv`/`w`), punycode labels (`xn--...`)
  decoded first, so `xn--pple-43d.example` is seen as `аpple.example`;
* **one edit**: one letter added, dropped, changed or two neighbours swapped
  (`acme.co` / `acme.com`, `amce.com`), for names of four letters or more before the
  first dot (short names are one edit from too much);
* never the domain itself, its subdomains or its parents (`mail.acme.com` is ours).
"""
from __future__ import annotations

import unicodedata
from collections.abc import Iterable

#: Letters from other scripts drawn like Latin ones (a small, common subset of Unicode's confusables).
_HOMOGLYPHS = str.maketrans({
    "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "х": "x", "у": "y", "і": "i", "ј": "j", "ѕ": "s",
    "һ": "h", "ԁ": "d", "ɡ": "g", "ԛ": "q", "ԝ": "w", "ӏ": "l", "к": "k", "м": "m", "т": "t", "в": "b",
    "н": "h", "ο": "o", "α": "a", "ν": "v", "ι": "i", "κ": "k", "ρ": "p", "τ": "t", "υ": "u", "χ": "x",
    "ε": "e", "ß": "b", "ı": "i", "ł": "l", "0": "o", "1": "l", "i": "l", "|": "l",
})
_SEQUENCES = (("rn", "m"), ("vv", "w"), ("cl", "d"))


def decode(domain: str) -> str:
    """The domain lower-cased, without the final dot, its punycode labels decoded (unreadable ones kept)."""
    labels = []
    for label in (domain or "").strip().lower().rstrip(".").split("."):
        if label.startswith("xn--"):
            try:
                label = label.encode("ascii").decode("idna")
            except UnicodeError:
                pass
        labels.append(label)
    return ".".join(labels)


def skeleton(domain: str) -> str:
    """What the domain looks like: homoglyphs mapped to one Latin letter each, accents dropped."""
    text = unicodedata.normalize("NFKD", decode(domain))
    text = "".join(c for c in text if not unicodedata.combining(c)).translate(_HOMOGLYPHS)
    for seq, single in _SEQUENCES:
        text = text.replace(seq, single)
    return text


def _one_edit(a: str, b: str) -> bool:
    """Exactly one insertion, deletion, substitution or swap of neighbours apart."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1
                                  and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    i = next((i for i in range(len(short)) if short[i] != long_[i]), len(short))
    return short[i:] == long_[i + 1:]


def _related(a: str, b: str) -> bool:
    return a == b or a.endswith("." + b) or b.endswith("." + a)


def lookalike_of(domain: str, own_domains: Iterable[str]) -> str | None:
    """The own domain that `domain` imitates, or None (see the module's text)."""
    name = decode(domain)
    if not name or "." not in name:
        return None
    shape = skeleton(name)
    for own in own_domains:
        own_name = decode(own)
        if not own_name or _related(name, own_name):
            continue
        if shape == skeleton(own_name):
            return own_name
        if len(own_name.split(".")[0]) >= 4 and _one_edit(name, own_name):
            return own_name
    return None
