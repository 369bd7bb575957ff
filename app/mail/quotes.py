"""Quoted history: where the part of a message that repeats earlier mail begins.

The one place that knows quote headers, for plain text and HTML alike:

* `quote_start_in_text(text)`: the offset of the first line of the quoted history;
* `quote_start_in_html(html)`: the offset of the tag where it starts in (sanitised) HTML;
* `visible_reply(text)`: what the customer wrote, without it (stored as `visible_text`).

`app.inbox.display.split_body` folds the tiles at the same places.

What starts quoted history, in English, German, French, Spanish, Dutch, Italian,
Portuguese, Swedish, Danish/Norwegian, Polish, Czech, Finnish, Russian, Chinese,
Japanese and Korean:

* Outlook's header block: at least two label lines in a row, one of them the sender
  ("From:", "Von:", "De :", "Van:", "Da:", "Från:", "Od:", "发件人：", "差出人:" ...) and
  another of Sent/Date/To/Cc/Subject in any of those languages, bold (`*From:*`) or not,
  with or without a "____" or "-----" divider above (the divider goes with it). One
  label alone ("From: my account page I see ...") is the customer's own sentence;
* "-----Original Message-----" and its translations, forwarded-message markers;
* attributions: "On ... wrote:" (also wrapped over up to three lines), "Am ... schrieb
  ...:", "Le ... a écrit :", "El ... escribió:", "Op ... schreef ...:", "Il ... ha
  scritto:", "Em ... escreveu:", "Den ... skrev ...:", "W dniu ... napisał(a):",
  "... 写道：", "... のメッセージ:", "... が書きました:", Gmail's Japanese "2025年3月3日(月)
  10:00 Name <a@x>:". An attribution whose `>` block is followed by more of the
  customer's own words is an interleaved (bottom-posted) reply: like Gmail, only a
  quote that runs to the end (or to a signature or list footer) is folded;
* a trailing block of `>` lines (with the line above it when it ends with ":");
* in HTML also the containers clients write: `blockquote` (Apple Mail's
  `type="cite"`), Gmail's `gmail_quote`, Thunderbird's `moz-cite-prefix`, Yahoo's
  `yahoo_quoted`, Outlook's `divRplyFwdMsg` / `appendonsend` / `stopSpelling` (ids the
  sanitiser drops, so also its `<hr style="display:inline-block;width:98%">` and the
  `border-top:solid #E1E1E1` / `#B5C4DF` header div), our own `ph-quote`. The text
  rules run on the HTML's lines as well (block tags end a line), so a header block in
  `<b>From:</b> ...<br><b>Sent:</b>` is found like its plain-text form.

A message that starts with quoted history (a forward and nothing else, a reply made of
quotes only) keeps everything: `visible_reply` returns the whole text and the tile
folds nothing.

Bounded time on hostile input: no regular expression can backtrack (possessive `[^<>]*+`
runs, fixed alternatives); only lines holding a mark (a colon, "-----") of the first
`MAX_REPLY_SCAN_CHARS` characters are looked at, found with `str.find`, so prose costs
nothing; the trailing `>` block is found from the end; HTML is turned into lines by two
substitutions over the first `MAX_HTML_SCAN_CHARS` (no Python step per tag) and its
containers by `str.find`, the first `_MAX_HITS` of each. A 2 MB text or HTML of the worst
shapes takes well under a second (tests/unit/test_quotes.py).
"""
from __future__ import annotations

import html as _html
import re
from collections.abc import Callable
from itertools import islice

#: Quote headers are looked for in this many first characters of a text (bounded time).
MAX_REPLY_SCAN_CHARS = 32_000
#: ... and in this many first characters of an HTML body (Outlook's markup is ~10x its text).
MAX_HTML_SCAN_CHARS = 500_000
#: Lines longer than this are not headers or attributions (only their start is looked at).
_MAX_HEADER_LINE = 400

# Header labels, lower case, without the colon. The sender's label must be in a block.
_FROM_LABELS = frozenset({
    "from", "von", "de", "van", "da", "från", "fra", "od", "от", "lähettäjä", "feladó", "kimden", "afzender",
    "expéditeur", "remitente", "mittente", "remetente", "avsändare", "nadawca", "发件人", "寄件者", "寄件人",
    "差出人", "보낸 사람", "보낸사람",
})
_OTHER_LABELS = frozenset({
    # en / de / fr / es / nl / it / pt / sv / da+no / pl / cs / fi / ru / tr
    "sent", "date", "to", "cc", "bcc", "subject", "reply-to",
    "gesendet", "datum", "an", "betreff", "kopie",
    "envoyé", "envoye", "envoyé le", "à", "a", "objet", "sujet", "cci",
    "enviado", "enviada", "enviado el", "fecha", "para", "asunto", "cco",
    "verzonden", "verstuurd", "aan", "onderwerp",
    "inviato", "data", "oggetto", "ccn",
    "enviada em", "enviado em", "assunto",
    "skickat", "till", "ämne", "kopia",
    "sendt", "dato", "til", "emne", "kopi",
    "wysłano", "wysłane", "do", "temat", "dw",
    "odesláno", "komu", "předmět", "kopie",
    "lähetetty", "vastaanottaja", "aihe", "päivämäärä", "kopio",
    "отправлено", "дата", "кому", "тема", "копия",
    "gönderildi", "tarih", "kime", "konu",
    # zh (simplified, traditional) / ja / ko
    "发送时间", "发送日期", "时间", "日期", "收件人", "抄送", "主题", "寄件日期", "傳送時間", "收件者", "副本", "主旨",
    "送信日時", "送信日", "日時", "日付", "宛先", "件名",
    "보낸 날짜", "날짜", "받는 사람", "참조", "제목",
})

# "-----Original Message-----" and forwarded-message markers, lower case, dashes and spaces stripped.
_SEPARATOR_WORDS = frozenset({
    "original message", "original-nachricht", "ursprüngliche nachricht", "ursprungliche nachricht",
    "message d'origine", "message d’origine", "message original", "mensaje original", "oorspronkelijk bericht",
    "origineel bericht", "messaggio originale", "mensagem original", "ursprungligt meddelande",
    "originalmeddelande", "oprindelig meddelelse", "opprinnelig melding", "oryginalna wiadomość",
    "wiadomość oryginalna", "původní zpráva", "alkuperäinen viesti", "исходное сообщение",
    "原始邮件", "原始郵件", "原始消息", "元のメッセージ", "オリジナル メッセージ", "원본 메시지",
    # forwards: quoted history too, but a forward with nothing above it is kept whole
    "forwarded message", "begin forwarded message", "weitergeleitete nachricht",
    "anfang der weitergeleiteten nachricht", "message transféré", "début du message réexpédié",
    "mensaje reenviado", "doorgestuurd bericht", "messaggio inoltrato", "mensagem encaminhada",
    "vidarebefordrat meddelande", "videresendt meddelelse", "przekazana wiadomość", "wiadomość przekazana",
    "转发邮件", "转发的邮件", "転送メッセージ", "転送されたメッセージ",
})
_DIVIDER_CHARS = frozenset("-_=—–~* \t\xa0")

# Attributions. Openers (lower case, with their space) of the languages that start with the date.
_OPENERS = ("on ", "am ", "le ", "el ", "op ", "il ", "em ", "den ", "w dniu ", "dne ", "på ")
# The verb the line ends with (before its colon) ...
_END_VERBS = ("wrote", "writes", "schrieb", "a écrit", "a ecrit", "escribió", "escribio", "ha scritto", "scrisse",
              "escreveu", "skrev", "schreef", "napisał", "napisała", "napisał(a)", "napisal", "napisal(a)", "pisze",
              "napsal", "napsala", "napsal(a)", "kirjoitti", "написал", "написала", "написал(а)", "yazdı",
              "写道", "寫道", "書きました", "のメッセージ", "のメール", "작성")
# ... or, after an opener, has in the middle (German, Dutch, Scandinavian: the name follows the verb).
_MID_VERBS = (" schrieb ", " schreef ", " skrev ")
_TIME = re.compile(r"\d[:.]\d\d")
_COLONS = (":", "：")


def _label(line: str) -> str | None:
    """The header label of a line ("From" of "*From:* Alex"), lower case, or None."""
    head = line[:40]
    cut = -1
    for colon in _COLONS:
        i = head.find(colon)
        if i > 0 and (cut < 0 or i < cut):
            cut = i
    if cut < 0:
        return None
    return " ".join(head[:cut].replace("\xa0", " ").strip(" *\t_").split()).lower() or None


def _is_header_line(line: str) -> bool:
    label = _label(line)
    return label is not None and (label in _FROM_LABELS or label in _OTHER_LABELS)


def _is_separator(line: str) -> bool:
    """"-----Original Message-----", "---------- Forwarded message ---------", "Begin forwarded message:"."""
    s = line.strip()
    if not s or len(s) > 120 or not (s[0] in "-_=—–*<" or s.endswith(_COLONS)):
        return False
    key = s.strip("-_=—–*<> \t\xa0").rstrip(":：").strip().lower()
    return key in _SEPARATOR_WORDS


def _is_divider(line: str) -> bool:
    s = line.strip()
    return len(s) >= 5 and set(s) <= _DIVIDER_CHARS


def _is_quoted(line: str) -> bool:
    return line.lstrip().startswith(">")


def _is_attribution(joined: str) -> bool:
    """Whether one (joined) line is an "On ... wrote:" line in one of our languages."""
    s = joined.strip()
    if not s.endswith(_COLONS) or len(s) > _MAX_HEADER_LINE:
        return False
    low = s.lower()
    body = low[:-1].rstrip()
    opener = low.startswith(_OPENERS)
    if body.endswith(_END_VERBS):
        # "my colleague wrote:" is the customer's sentence; a date, an address or an opener make it a header
        return opener or "@" in body or any(c.isdigit() for c in body)
    if opener and any(verb in body for verb in _MID_VERBS):
        # "Am Montag schrieb ich Ihnen Folgendes:" is a sentence; a real one has a time or an address
        return "@" in body or _TIME.search(body) is not None
    # Gmail in Japanese: "2025年3月3日(月) 10:00 Name <a@x>:"
    return body[:1].isdigit() and "年" in body and body.endswith(">")


def _attribution_end(lines: list[str], i: int) -> int | None:
    """The last line of an attribution starting at line i (it may be wrapped over three lines), or None."""
    first = lines[i].strip()
    if not first or len(first) > _MAX_HEADER_LINE:
        return None
    if _is_attribution(first):
        return i
    # Only a line that starts like one is joined with the next (not "call me at 555-1234" above "On ... wrote:").
    if first.endswith(_COLONS) or not (first.lower().startswith(_OPENERS) or "@" in first):
        return None
    joined = first
    for k in range(i + 1, min(i + 3, len(lines))):
        nxt = lines[k].strip()
        if not nxt or _is_quoted(nxt) or nxt.lower().startswith(_OPENERS):
            return None
        joined = joined + " " + nxt
        if _is_attribution(joined):
            return k
        if joined.endswith(_COLONS) or len(joined) > _MAX_HEADER_LINE:
            return None
    return None


def _header_block_at(lines: list[str], i: int) -> tuple[bool, int]:
    """Whether a run of header lines starts at line i with the sender's label and another among them
    (Outlook starts with From, Thunderbird with Subject; one blank line between them is allowed), and
    the line after the run (no later start inside a run that fails can succeed: the scan skips it)."""
    labels = set()
    k = i
    while k < len(lines) and k < i + 12:
        line = lines[k]
        if line.strip():
            label = _label(line)
            if label is None or not (label in _FROM_LABELS or label in _OTHER_LABELS):
                break
            labels.add("from" if label in _FROM_LABELS else label)
        elif k + 1 < len(lines) and not lines[k + 1].strip():
            break  # two blank lines end the block
        k += 1
    return "from" in labels and len(labels) >= 2, max(k, i + 1)


def _quote_runs_to_end(lines: list[str], k: int) -> tuple[bool, int]:
    """After an attribution ending at line k: (whether its quote is the rest of the message, next line to look at).

    Unprefixed lines after it are the quote (HTML turned to text, Outlook): to the end. A `>` block
    followed by more of the customer's words is an interleaved reply, not folded; a signature or a
    list footer after the block does not count as words."""
    j = k + 1
    while j < len(lines) and not lines[j].strip():
        j += 1
    if j == len(lines) or not _is_quoted(lines[j]):
        return True, j
    while j < len(lines) and (_is_quoted(lines[j]) or not lines[j].strip()):
        j += 1
    if j == len(lines):
        return True, j
    rest = lines[j].strip()
    if rest in ("--", "-- ") or _is_divider(rest):
        tail = 0
        for line in lines[j:]:
            tail += bool(line.strip())
            if tail > 10:
                break
        if tail <= 10:
            return True, j
    return False, j


def _extend_up(lines: list[str], i: int) -> int:
    """Take the dividers and "-----Original Message-----" lines just above a quote header along with it."""
    start = i
    j = i - 1
    looked = 0
    while j >= 0 and looked < 24:
        s = lines[j].strip()
        looked += 1
        if s and not (_is_divider(s) or _is_separator(s)):
            break
        if s:
            start = j
        j -= 1
    return start


#: What every line that can start a quote header has (a label's or an attribution's colon, a separator's dashes).
_MARKS = (":", "：", "-----")


def _interesting_lines(text: str):
    """Indexes, in order, of the lines of `text` with one of `_MARKS` (str.find: prose costs nothing)."""
    nexts = {mark: text.find(mark) for mark in _MARKS}
    line = pos = 0
    while True:
        hit = min((p for p in nexts.values() if p >= 0), default=-1)
        if hit < 0:
            return
        line += text.count("\n", pos, hit)
        yield line
        pos = text.find("\n", hit) + 1
        if pos == 0:
            return
        line += 1
        for mark, p in nexts.items():
            if 0 <= p < pos:
                nexts[mark] = text.find(mark, pos)


def _candidates(lines: list[str], text: str):
    """Indexes, in order, of the lines where quoted history starts (`text` is the lines joined by newlines)."""
    done = 0  # lines before this one are settled
    for k in _interesting_lines(text):
        if k < done or _is_quoted(lines[k]) or len(lines[k]) > 4 * _MAX_HEADER_LINE:
            continue
        if _is_separator(lines[k]):
            yield _extend_up(lines, k)
            done = k + 1
            continue
        if _is_header_line(lines[k]):
            block, after = _header_block_at(lines, k)
            if block:
                yield _extend_up(lines, k)
            done = after
            continue
        for start in range(max(done, k - 2), k + 1):  # a wrapped attribution starts up to two lines above
            if _attribution_end(lines, start) == k:
                to_end, after = _quote_runs_to_end(lines, k)
                if to_end:
                    yield _extend_up(lines, start)
                done = after
                break


def _trailing_quote_block(lines: list[str]) -> int | None:
    """The first line of a trailing block of `>` lines, with the line above it when that ends with ":"."""
    j = len(lines)
    while j > 0 and (not lines[j - 1].strip() or _is_quoted(lines[j - 1])):
        j -= 1
    if j == len(lines) or not any(_is_quoted(line) for line in lines[j:j + 50]):
        return None
    above = j - 1
    while above >= 0 and not lines[above].strip():
        above -= 1
    if above > 0 and lines[above].rstrip().endswith(_COLONS) and len(lines[above]) < _MAX_HEADER_LINE:
        return above
    return j


def quote_start_in_text(text: str) -> int | None:
    """Offset in `text` of the line where its quoted history starts, or None.

    None as well when nothing but blank lines comes before it (a forward, a reply made of
    quotes only: nothing is hidden then)."""
    if not text:
        return None
    window = text[:MAX_REPLY_SCAN_CHARS]
    if len(window) < len(text):
        window = window[:window.rfind("\n") + 1]  # the cut-off line is not looked at
    lines = window.split("\n")
    first = next(_candidates(lines, window), None)
    cut = _text_trailing_block(text)
    if first is not None:
        offset = sum(map(len, lines[:first])) + first
        cut = offset if cut is None else min(cut, offset)
    if cut is None or not text[:cut].strip():
        return None
    return cut


#: A line that is neither blank nor `>`-quoted.
_UNQUOTED_LINE = re.compile(r"^[^\S\n]*[^\s>]", re.MULTILINE)
_TAIL_CHUNK = 65_536


def _text_trailing_block(text: str) -> int | None:
    """`_trailing_quote_block` of the whole text, as an offset: the last line that is not quoted is found
    reading back from the end, a line at a time for the first lines, then a chunk at a time with a
    regular expression (C speed, even for 2 MB of `>` lines)."""
    end = len(text.rstrip())
    above = None
    for _ in range(200):
        start = text.rfind("\n", 0, end) + 1
        line = text[start:end]
        if line.strip() and not _is_quoted(line):
            above = start
            break
        if start == 0:
            return None  # nothing but quotes
        end = start - 1
    else:
        last = None
        while end > 0 and last is None:
            start = text.rfind("\n", 0, max(0, end - _TAIL_CHUNK)) + 1
            for last in _UNQUOTED_LINE.finditer(text, start, end):
                pass
            end = start - 1
        if last is None:
            return None
        above = last.start()
    newline = text.find("\n", above)
    if newline < 0 or ">" not in text[newline:]:
        return None  # the last line is the customer's
    line = text[above:newline].rstrip()
    if line.endswith(_COLONS) and len(line) < _MAX_HEADER_LINE and text[:above].strip():
        return above
    return newline + 1


def visible_reply(text: str) -> str:
    """The part of a reply the customer wrote, without the quoted history (never raises).

    When nothing would be left (a forward, a reply made only of quotes), the whole text."""
    if not text or not text.strip():
        return ""
    cut = quote_start_in_text(text)
    visible = text if cut is None else text[:cut]
    return visible.strip() or text.strip()


# HTML -----------------------------------------------------------------------------------------

#: Marks of the containers the usual clients put quoted history in, lower case (sanitised HTML keeps
#: class and style, not id), grouped under a part they share: found with str.find, each checked to
#: be inside an opening tag.
_CONTAINER_GROUPS = (
    ("<blockquote", ("<blockquote",)),
    ("quote", ("gmail_quote", "ph-quote", "yahoo_quoted")),
    ("moz-cite-prefix", ("moz-cite-prefix",)),
    ("border-top", ("border-top:solid #e1e1e1", "border-top: solid #e1e1e1", "border-top:solid #b5c4df",
                    "border-top: solid #b5c4df", "border-top:1pt solid rgb(225,225,225)",
                    "border-top: 1pt solid rgb(225, 225, 225)")),
    ("inline-block", ("display:inline-block;width:98%", "display: inline-block; width: 98%")),
    # ids: only in HTML that was not sanitised
    ("id=", ("divrplyfwdmsg", "appendonsend", "stopspelling", "outlookmessageheader")),
)
#: Occurrences of each mark (and text-rule candidates) looked at: the quote starts at one of the first few.
_MAX_HITS = 50
#: Longest opening tag a mark is looked for in.
_MAX_TAG = 4096
_TAG = re.compile(r"<[^<>]*+>")
#: Tags that end a line of text.
_BLOCK_TAG = re.compile(
    r"</?(?:address|article|blockquote|br|center|dd|div|dl|dt|footer|h[1-6]|header|hr|li|ol|p|pre|section|table"
    r"|tbody|tfoot|thead|tr|ul)\b[^<>]*+>",
    re.IGNORECASE,
)


def _containers(html: str) -> list[int]:
    """Offsets of the opening tags of quote containers (the first `_MAX_HITS` of each mark)."""
    low = html.lower()
    found = []
    for group, marks in _CONTAINER_GROUPS:
        if group not in low:
            continue  # one scan rules out several marks
        for mark in marks:
            hit = low.find(mark)
            for _ in range(_MAX_HITS):
                if hit < 0:
                    break
                if mark[0] == "<":
                    found.append(hit)
                else:
                    start = low.rfind("<", max(0, hit - _MAX_TAG), hit)
                    if start >= 0 and low[start + 1:start + 2].isalpha() and low.find(">", start, hit) < 0:
                        found.append(start)
                hit = low.find(mark, hit + len(mark))
    return found


def _html_lines(html: str) -> tuple[list[str], Callable[[int], int], bool]:
    """The non-blank text lines of an HTML body (block tags end a line), a function giving where line i
    may be cut in the HTML, and whether all of it was read. Splitting, tag stripping and unescaping are
    done on the whole body at once (no Python step per tag)."""
    complete = len(html) <= MAX_HTML_SCAN_CHARS
    flat = html[:MAX_HTML_SCAN_CHARS].replace("\r", " ").replace("\n", " ")
    if not complete and "<" in flat:
        flat = flat[:flat.rfind("<")]  # not into a tag
    text = _TAG.sub("", _BLOCK_TAG.sub("\n", flat))
    if "&" in text:
        text = _html.unescape(text)
    lines, parts = [], []
    if ">" not in text and not any(mark in text for mark in _MARKS):
        text = ""  # no quote header and no `>` line in it: no line need be looked at
    chars = 0
    for index, line in enumerate(text.replace("\xa0", " ").split("\n")):
        if line.strip():
            lines.append(line)
            parts.append(index)
            chars += len(line) + 1
            if chars > MAX_REPLY_SCAN_CHARS:
                complete = False
                break

    tags: list[re.Match] = []

    def cut(i: int) -> int:
        if i == 0:
            return 0
        if not tags:  # only when there is a quote
            tags.extend(_BLOCK_TAG.finditer(flat))
        return _cut_between(flat, tags, parts[i - 1], parts[i])

    return lines, cut, complete


def _cut_between(flat: str, tags: list[re.Match], before: int, after: int) -> int:
    """Where to cut between the text of line parts `before` and `after`: at the first opening block tag
    between them (so a divider `<hr>` and empty elements go with the quote), else after the last closing one."""
    for tag in tags[before:after]:
        if flat[tag.start() + 1] != "/":
            return tag.start()
    return tags[after - 1].end()


def quote_start_in_html(html: str) -> int | None:
    """Offset in `html` of the tag where its quoted history starts, or None.

    The first quote container or text-rule header with some text before it (a message that
    starts with a quote is not hidden)."""
    if not html:
        return None
    found = set(_containers(html))
    lines, cut, complete = _html_lines(html)
    found.update(cut(i) for i in islice(_candidates(lines, "\n".join(lines)), _MAX_HITS))
    if complete:
        block = _trailing_quote_block(lines)
        if block is not None:
            found.add(cut(block))
    previous = 0
    for position in sorted(found):
        if _html.unescape(_TAG.sub("", html[previous:position])).strip():
            return position
        previous = position
    return None
