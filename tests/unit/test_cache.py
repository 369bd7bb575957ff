"""The in-process caches: the size-bounded LRU, keys made of plain data, rendered fragments."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple

import pytest

from app.cache import SizedLRU, plain


def test_lru_stays_within_its_budget():
    cache = SizedLRU(1000)
    for i in range(10):
        cache.put(i, f"value {i}", 120)
    assert cache.size <= 1000 and len(cache) == 8
    assert cache.get(0) is None and cache.get(9) == "value 9"  # oldest out first
    cache.get(2)  # used: now the newest
    cache.put("x", "another", 120)
    assert cache.get(2) == "value 2" and cache.get(3) is None
    cache.put("huge", "y", 200)  # over an eighth of the budget: not kept
    assert cache.get("huge") is None and cache.size <= 1000
    cache.put("x", "replaced", 10)
    assert cache.get("x") == "replaced" and cache.size == sum(size for _, size in cache._items.values())


class Pair(NamedTuple):
    a: str
    b: int


@dataclass(slots=True)
class Item:
    name: str
    when: datetime
    parts: list
    extra: dict


@dataclass
class One:
    only: object


@dataclass
class Empty:
    pass


def test_plain_keys_cover_every_field_and_refuse_orm_objects(app, db):
    when = datetime(2025, 1, 2, 3, 4, tzinfo=timezone.utc)
    item = Item("x", when, [Pair("p", 1)], {"k": None, "a": True})
    same = Item("x", when, [Pair("p", 1)], {"a": True, "k": None})
    assert plain(item) == plain(same) and hash(plain(item)) == hash(plain(same))
    for other in (Item("y", when, [Pair("p", 1)], {}), Item("x", when.replace(minute=5), [Pair("p", 1)], {}),
                  Item("x", when, [Pair("p", 2)], {}), Item("x", when, [Pair("q", 1)], {}),
                  Item("x", when, [], {"k": None, "a": True}), Item("x", when, [Pair("p", 1)], {"k": 1})):
        assert plain(other) != plain(item)
    assert plain(("a", "b")) != plain(("ab",)) and plain([1, [2]]) != plain([[1], 2])
    assert plain(Pair("a", 1)) != plain(("a", 1))  # the type is part of it
    assert plain(One(Pair("a", 1))) == (One, (Pair, "a", 1)) and plain(One("a")) != plain(One("b"))
    assert plain(Empty()) == (Empty,)
    from tests.factories import make_user

    with pytest.raises(TypeError, match="plain data"):
        plain(Item("x", when, [make_user("agent")], {}))


def test_fragments_are_kept_for_the_same_data_and_rendered_again_for_other_data(app):
    from app import web
    from app.inbox.lists import InboxRow, RowConversation

    web._fragments.clear()
    calls = []
    fragments = web.Fragments("inbox/_row.html", "row", prepare=lambda *args: calls.append(args) or args, zoned=True)
    when = datetime(2025, 1, 2, 3, 4, tzinfo=timezone.utc)
    row = InboxRow(RowConversation(7, "Parcel", "open", when, "Carol", "carol@example.com", "Support", None),
                   "Where is it?", True, False, False)
    with app.test_request_context("/inbox/"):
        first = fragments(row, [], False)
        assert fragments(row, [], False) == first and len(calls) == 1
        assert "Carol" in first and 'href="/inbox/c/7"' in first and "unread" in first
        read = InboxRow(row.conversation, row.snippet, False, False, False)
        assert "unread" not in fragments(read, [], False) and len(calls) == 2
        seen = fragments(row, [{"name": "Sam", "replying": True}], False)
        assert "Sam replying" in seen and len(calls) == 3
    with app.test_request_context("/inbox/", base_url="http://localhost/pigeonhole"):
        assert 'href="/pigeonhole/inbox/c/7"' in fragments(row, [], False) and len(calls) == 4
    app.jinja_env.auto_reload = True  # templates may change (development): nothing is kept
    try:
        with app.test_request_context("/inbox/"):
            fragments(row, [], False)
            fragments(row, [], False)
        assert len(calls) == 6
    finally:
        app.jinja_env.auto_reload = False


def test_a_zoned_fragment_is_kept_per_time_zone_and_never_served_to_another_zone(app, db):
    """Two users of different zones, one after the other in the same process: each sees the row's time
    in their own zone, from a copy of their own, and the first user's copy is served to them again."""
    from flask_login import login_user

    from app import web
    from app.inbox.lists import InboxRow, RowConversation
    from tests.factories import make_user

    web._fragments.clear()
    calls = []
    fragments = web.Fragments("inbox/_row.html", "row", prepare=lambda *args: calls.append(args) or args, zoned=True)
    row = InboxRow(RowConversation(7, "Parcel", "open", datetime(2025, 1, 2, 15, 4, tzinfo=timezone.utc), "Carol",
                                   "carol@example.com", "Support", None), "Where is it?", True, False, False)
    new_york, kolkata = make_user("agent"), make_user("agent")
    new_york.time_zone, kolkata.time_zone = "America/New_York", "Asia/Kolkata"
    db.session.commit()
    seen = {}
    for user in (new_york, kolkata, new_york, kolkata):
        with app.test_request_context("/inbox/"):
            login_user(user)
            seen.setdefault(user.time_zone, set()).add(str(fragments(row, [], False)))
    assert len(calls) == 2  # one render per zone, then served from the cache
    assert [len(html) for html in seen.values()] == [1, 1]
    (ny,), (ist,) = seen["America/New_York"], seen["Asia/Kolkata"]
    assert ">2025-01-02 10:04</time>" in ny and "EST" in ny and "20:34" not in ny
    assert ">2025-01-02 20:34</time>" in ist and "IST" in ist and "10:04" not in ist
    assert 'datetime="2025-01-02T15:04:00+00:00"' in ny and 'datetime="2025-01-02T15:04:00+00:00"' in ist


def test_a_time_without_its_zone_in_a_cached_fragment_raises(app):
    """A fragment has no user: a time written there in "the signed-in user's zone" would be served to
    everyone, so `local_time` refuses to guess while a fragment renders."""
    from app import web

    when = datetime(2025, 1, 2, 15, 4, tzinfo=timezone.utc)
    with app.test_request_context("/inbox/"):
        token = web._in_fragment.set(True)
        try:
            with pytest.raises(RuntimeError, match="must name its zone"):
                web.local_time(when)
            assert web.local_time(when, "%H:%M", "Asia/Kolkata") == "20:34"
        finally:
            web._in_fragment.reset(token)
        assert web.local_time(when, "%H:%M") == "15:04"  # outside a fragment: the user's zone (here none: UTC)


def test_cached_fragment_templates_use_no_per_user_or_per_request_state():
    """Fragments run without the page's context, but the environment's globals include csrf_token
    (per session) and flashes: a cached fragment using them would serve one user's to another."""
    root = Path(__file__).resolve().parents[2] / "templates" / "inbox"
    for name in ("_row.html", "_tiles.html"):
        source = re.sub(r"\{#.*?#\}", "", (root / name).read_text(), flags=re.S)
        for word in ("csrf_token", "current_user", "session", "request", "get_flashed_messages", "navigation",
                     "g.", "config"):
            assert word not in source, f"{name} uses {word}"


def test_cached_url_for_gives_what_url_for_gives(app):
    from flask import url_for

    from app.web import _urls, cached_url_for

    calls = [("inbox.index", {}), ("inbox.index", {"view": "all", "status": "", "queue": None, "q": "a b"}),
             ("inbox.index", {"q": True}), ("inbox.index", {"q": 1}), ("inbox.index", {"q": "1"}),
             ("inbox.conversation", {"conversation_id": 7}), ("static", {"filename": "app.css"}),
             ("inbox.index", {"_external": True}), ("inbox.index", {"_anchor": "x"}),
             ("inbox.index", {"q": ["unhashable"]})]
    for root in ("", "/prefix"):
        with app.test_request_context("/", base_url=f"http://localhost{root}"):
            for _ in range(2):  # built, then from the cache
                for endpoint, values in calls:
                    assert cached_url_for(endpoint, **values) == url_for(endpoint, **values), (root, endpoint, values)
    assert not any("_external" in map(str, key) or "_anchor" in map(str, key) for key in _urls)
    with app.test_request_context("/"):
        assert cached_url_for("inbox.index", q=True) == "/inbox/?q=True"
        assert cached_url_for("inbox.index", q=1) == "/inbox/?q=1"


def test_cached_url_for_keeps_at_most_its_number_of_urls(app, monkeypatch):
    from app import web

    monkeypatch.setattr(web, "URL_CACHE_ITEMS", 5)
    with app.test_request_context("/"):
        for n in range(23):
            assert web.cached_url_for("inbox.conversation", conversation_id=n) == f"/inbox/c/{n}"
            assert len(web._urls) <= 5


def test_an_inbox_row_is_its_own_key_and_every_field_of_it_counts(app):
    """`app.inbox.views.row_key`: the row hashed as it is (a NamedTuple of plain values) instead of `plain()`;
    a row read again is the same key, and a change to any field, nested ones too, is another."""
    from app.inbox.lists import InboxRow, RowConversation
    from app.inbox.views import row_key

    when = datetime(2025, 1, 2, 3, 4, tzinfo=timezone.utc)

    def row(**changes):
        conversation = RowConversation(7, "Parcel", "open", when, "Carol", "carol@example.com", "Support", None,
                                       tags=("vip",), sla_text="First response due in 42 min", sla_state="ok")
        return InboxRow(conversation._replace(**{k: v for k, v in changes.items() if k in RowConversation._fields}),
                        changes.get("snippet", "Where is it?"), changes.get("unread", True), False, False)

    key = row_key(row(), [], False)
    assert key == row_key(row(), [], False) and hash(key) == hash(row_key(row(), [], False))
    others = [row(subject="Parcel!"), row(tags=("vip", "late")), row(sla_text="First response due in 41 min"),
              row(sla_state="at_risk"), row(snippet="Where?"), row(unread=False), row(last_message_at=when.replace(minute=5))]
    assert len({row_key(other, [], False) for other in others} | {key}) == len(others) + 1
    assert row_key(row(), [{"name": "Sam", "replying": True}], False) != key != row_key(row(), [], True)
    with pytest.raises(TypeError):  # a list in a row (not plain data) cannot be a key: it fails loudly, not stale
        hash(row_key(row(tags=["vip"]), [], False))


def test_an_inbox_row_is_built_once_per_columns_and_its_service_level_is_read_anew(monkeypatch):
    """`app.inbox.lists._inbox_row`: the same columns give the very same row (built once); any other column
    value, another row; a row with a due time says how long is left as of each read, not as of the first."""
    from datetime import timedelta

    from app.inbox import lists
    from app.runtime import sla

    due = datetime(2025, 1, 2, 12, 0, tzinfo=timezone.utc)
    record = (7, "Parcel", "open", "2025-01-02 10:00:00.000000", "Carol", "carol@example.com", "Support", None, 0,
              '["vip"]', None, None, None, None, None, "Where is it?", None, 0, 0, 50, 123)
    first = lists._inbox_row(record)
    assert lists._inbox_row(record[:19] + (3, 99)) is first  # the search window's columns are not the row's
    assert first.conversation.tags == ("vip",) and first.unread and first.snippet == "Where is it?"
    seen = lists._inbox_row(record[:16] + ("2025-01-02 11:00:00.000000",) + record[17:])
    assert seen is not first and not seen.unread
    assert lists._inbox_row(record[:9] + (["vip", "late"],) + record[10:]).conversation.tags == ("vip", "late")

    timed = record[:11] + (due, due - timedelta(minutes=10), due, None) + record[15:]
    monkeypatch.setattr(sla, "utcnow", lambda: due - timedelta(minutes=30))
    early = lists._inbox_row(timed).conversation
    monkeypatch.setattr(sla, "utcnow", lambda: due - timedelta(minutes=5))
    late = lists._inbox_row(timed).conversation
    monkeypatch.setattr(sla, "utcnow", lambda: due + timedelta(minutes=2))
    over = lists._inbox_row(timed).conversation
    assert (early.sla_text, early.sla_state) == ("First response due in 30 min", "ok")
    assert (late.sla_text, late.sla_state) == ("First response due in 5 min", "at-risk")
    assert (over.sla_text, over.sla_state) == ("First response overdue by 2 min", "breached")


def test_the_templates_csrf_token_is_flask_wtfs_worked_out_once_per_request(app, monkeypatch):
    from flask import render_template_string
    from flask_wtf import csrf as flask_wtf_csrf

    from app import web

    calls = []
    real = web.generate_csrf
    monkeypatch.setattr(web, "generate_csrf", lambda: calls.append(1) or real())
    with app.test_request_context("/"):
        page = render_template_string("{{ csrf_token() }} {{ csrf_token() }} {{ csrf_token() }}")
        first, *others = page.split()
        assert others == [first, first] and first == flask_wtf_csrf.generate_csrf() and len(calls) == 1
        flask_wtf_csrf.validate_csrf(first)  # a real token of this session (raises if not)
    with app.test_request_context("/"):
        render_template_string("{{ csrf_token() }}")
        assert len(calls) == 2  # asked again by another request
