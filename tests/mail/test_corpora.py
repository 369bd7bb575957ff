"""Real-world mail from other projects' test suites (read in place from PIGEONHOLE_CORPORA).

Skipped, with the reason, where a corpus is absent. Nothing here is copied into the repository.
"""
from __future__ import annotations

import functools
import json
import os
import resource
import time
from pathlib import Path

import pytest

from app.mail.html import sanitize_html
from app.mail.parse import parse_message
from tests.subprocess_env import ROOT

CORPORA = Path(os.environ.get("PIGEONHOLE_CORPORA") or ROOT.parent / "shared" / "corpora")
NOT_MAIL = {".json", ".xml", ".list", ".md", ".png", ".au", ".gif", ".jpg", ".tnef", ".html", ".out", ".mjs"}
#: Per message: parse time and memory bounds (the largest corpus files are a few MB of pathologies).
MAX_SECONDS = 10.0
MAX_RSS_GROWTH_MB = 400


def corpus(name: str) -> Path:
    path = CORPORA / name
    if not path.is_dir():
        pytest.skip(f"corpus {name!r} not found under {CORPORA} (set PIGEONHOLE_CORPORA)")
    return path


def mail_files(root: Path) -> list[Path]:
    files = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.name.startswith(("LICENSE", "COPYING", ".")) and path.suffix not in NOT_MAIL \
                and "html-xss" not in path.parts and "_decoded_" not in path.name:
            files.append(path)
    return files


def test_every_corpus_message_parses_without_exception_in_bounded_time_and_memory():
    root = corpus(".")
    files = mail_files(root)
    assert len(files) > 1000, f"expected the shared corpora under {root}, found {len(files)} files"
    slow, failures = [], []
    start_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for path in files:
        raw = path.read_bytes()
        started = time.perf_counter()
        try:
            parsed = parse_message(raw)
        except Exception as exc:  # noqa: BLE001 - the very thing under test
            failures.append(f"{path}: {exc!r}")
            continue
        elapsed = time.perf_counter() - started
        if elapsed > MAX_SECONDS:
            slow.append(f"{path}: {elapsed:.1f} s")
        assert isinstance(parsed.text, str) and isinstance(parsed.visible_text, str)
        assert all(isinstance(a.data, bytes) and a.size == len(a.data) for a in parsed.attachments)
    growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - start_rss
    assert not failures, failures[:10]
    assert not slow, slow
    assert growth < MAX_RSS_GROWTH_MB, f"peak memory grew by {growth:.0f} MB"


def test_every_corpus_message_ingests(app, db):
    """Through the whole ingest service (dedupe, threading, rows), not just the parser."""
    from app.blobs import blob_store
    from app.runtime.ingest import RawItem, ingest
    from tests.mail.conftest import make_address

    root = corpus(".")
    address = make_address("corpus@mail.pigeonhole.test")
    store = blob_store()
    statuses: dict[str, int] = {}
    files = mail_files(root)
    for start in range(0, len(files), 200):
        items = []
        for path in files[start:start + 200]:
            raw = path.read_bytes()
            items.append(RawItem(store.put(raw), len(raw), "cli", str(path)[-300:], raw=raw))
        for result in ingest(address.id, items):
            statuses[result.status] = statuses.get(result.status, 0) + 1
    assert sum(statuses.values()) == len(files)
    assert "pending" not in statuses
    # Test suites reuse Message-IDs across fixture files: those are duplicates by design.
    assert statuses.get("created", 0) + statuses.get("threaded", 0) > 300, statuses
    assert statuses.get("bounce", 0) > 500, statuses  # sisimai's bounces open no conversation
    unexpected = [e for e in db.session.execute(__import__("sqlalchemy").text(
        "SELECT error FROM inbound_raws WHERE status = 'stored_with_error'")).scalars()
        if e and not e.startswith(("no sender address", "the body could not"))]
    assert not unexpected, unexpected[:5]


# Stalwart's expected parses (subject, from, names, sizes, text) are compared in test_corpus_agreement.py.


LINE_ENDINGS = {"lf": b"\n", "crlf": b"\r\n", "cr": b"\r"}


def with_line_ending(raw: bytes, form: str) -> bytes:
    return raw.replace(b"\r\n", b"\n").replace(b"\n", LINE_ENDINGS[form])


def _reading(parsed) -> tuple | None:
    """What a bounce says that the ingest service uses: kind, recipients, status, the returned Message-ID."""
    b = parsed.bounce
    return b and (b.kind, tuple(b.recipients), b.status, b.original_message_id)


@functools.cache
def _sisimai_lf_readings() -> dict[str, tuple | None]:
    root = corpus("sisimai")
    expected = json.loads((root / "expected.json").read_text())["expected"]
    return {name: _reading(parse_message(with_line_ending(path.read_bytes(), "lf")))
            for name in expected if (path := root / "maildir" / "bsd" / name).exists()}


@pytest.mark.parametrize("form", list(LINE_ENDINGS))
def test_sisimai_bounces_are_classified_with_the_failed_recipient(form):
    """Each of sisimai's reports with LF, CRLF and CR-only line endings: recognised, and the same way as with LF."""
    root = corpus("sisimai")
    expected = json.loads((root / "expected.json").read_text())["expected"]
    lf_readings = _sisimai_lf_readings()
    bounces, classified, vacations, misses, unlike_lf = 0, 0, [], [], []
    for name, entries in expected.items():
        path = root / "maildir" / "bsd" / name
        if not path.exists():
            continue
        reason = entries[0]["reason"]
        parsed = parse_message(with_line_ending(path.read_bytes(), form))
        if _reading(parsed) != lf_readings[name]:
            unlike_lf.append(name)
        if reason == "vacation":
            vacations.append(parsed.auto_reply or parsed.bounce is not None)
            continue
        if reason in ("feedback", "delivered"):
            continue  # complaints and success notices are reports, not failures (see the next test)
        bounces += 1
        if parsed.bounce is not None and parsed.bounce.kind in ("failed", "delayed") and parsed.bounce.recipients \
                and all("@" in r for r in parsed.bounce.recipients):
            classified += 1
        else:
            misses.append(name)
        assert parsed.no_auto_reply or parsed.bounce is None, name
    rate = (f"sisimai {form}: {classified}/{bounces} bounces recognised with the failed recipient "
            f"({classified / max(bounces, 1):.1%}); {len(lf_readings) - len(unlike_lf)}/{len(lf_readings)} "
            f"reports read as with LF")
    print(rate)
    assert bounces > 500, rate
    assert classified / bounces >= 0.95, f"{rate}; missed {misses}"
    assert not unlike_lf, f"{rate}; read otherwise than with LF: {unlike_lf}"
    assert all(vacations) and vacations, rate


@pytest.mark.parametrize("form", list(LINE_ENDINGS))
def test_sisimai_feedback_reports_and_non_bounces(form):
    root = corpus("sisimai")
    expected = json.loads((root / "expected.json").read_text())["expected"]
    feedback = [n for n, e in expected.items() if e[0]["reason"] == "feedback" and (root / "maildir/bsd" / n).exists()]
    kinds = [getattr(parse_message(with_line_ending((root / "maildir/bsd" / n).read_bytes(), form)).bounce, "kind",
                     None) for n in feedback]
    assert kinds.count("feedback") / len(kinds) >= 0.7, (form, kinds)
    for name in ("is-not-bounce-01.eml", "is-not-bounce-02.eml"):
        raw = with_line_ending((root / "maildir" / "not" / name).read_bytes(), form)
        assert parse_message(raw).bounce is None, (form, name)


_URL_ATTRIBUTES = {"href", "src", "action", "formaction", "background", "poster", "xlink:href", "data", "srcset"}
_FORBIDDEN_TAGS = {"script", "iframe", "object", "embed", "form", "frame", "frameset", "base", "meta", "link",
                   "svg", "math", "style", "template"}


def dangers(html: str) -> list[str]:
    """Scripts, event handlers, javascript:/vbscript: URLs (as a browser's URL parser reads them)."""
    from html.parser import HTMLParser

    found: list[str] = []

    class Scan(HTMLParser):
        def handle_starttag(self, tag, attrs):
            if tag in _FORBIDDEN_TAGS:
                found.append(f"<{tag}>")
            for name, value in attrs:
                if name.startswith("on"):
                    found.append(f"{tag}[{name}]")
                if name in _URL_ATTRIBUTES and value:
                    # WHATWG URL parsing: strip leading C0 controls and spaces, drop tabs and newlines.
                    url = value.lstrip("".join(chr(c) for c in range(0x21))).translate({9: None, 10: None, 13: None})
                    if url.lower().startswith(("javascript:", "vbscript:")):
                        found.append(f"{tag}[{name}]={value!r}")

    Scan(convert_charrefs=True).feed(html)
    return found


def test_no_dompurify_vector_survives_with_script_handler_or_javascript_url():
    root = corpus("html-xss/dompurify")
    vectors = json.loads((root / "vectors.json").read_text())["vectors"]
    payloads = [v.get("payload") if isinstance(v, dict) else v for v in vectors]
    payloads = [p for p in payloads if isinstance(p, str)]
    assert len(payloads) > 200
    assert dangers('<a href=" javascript:x()" onclick="y()">a</a><script>z()</script>')  # the check itself works
    bad = []
    for payload in payloads:
        for wrapped in (payload, f"<html><body>{payload}</body></html>"):
            problems = dangers(sanitize_html(wrapped))
            if problems:
                bad.append((payload, problems))
    assert not bad, bad[:3]


def test_reply_corpora_visible_text_drops_the_quoted_history():
    """Every file of the reply-parser corpora against our own expectations (tests/data/reply_expectations.json:
    a phrase the visible text keeps, one it drops, or null when nothing is cut), at least 95% per corpus."""
    from app.mail.quotes import visible_reply

    expectations = json.loads((ROOT / "tests" / "data" / "reply_expectations.json").read_text())
    for name in ("reply-github/emails", "reply-zapier/emails"):
        root = corpus(name)
        expected = expectations[name]
        files = sorted(p.name for p in root.iterdir() if p.is_file())
        assert sorted(expected) == files, "every corpus file has an expectation"
        misses = []
        for file in files:
            text = (root / file).read_text(errors="replace")
            visible = visible_reply(text)
            kept, dropped = expected[file]["kept"], expected[file]["dropped"]
            ok = kept in visible and (visible == text.strip() if dropped is None else dropped not in visible)
            if not ok:
                misses.append(file)
        agreement = 1 - len(misses) / len(files)
        print(f"{name}: visible text agrees on {len(files) - len(misses)}/{len(files)} ({agreement:.0%}); "
              f"misses {misses}")
        assert agreement >= 0.95, misses
