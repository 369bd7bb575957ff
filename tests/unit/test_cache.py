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
    assert not any("_external" in map(str, key) or "_anchor" in map(str, key) for key in _urls._items)
    with app.test_request_context("/"):
        assert cached_url_for("inbox.index", q=True) == "/inbox/?q=True"
        assert cached_url_for("inbox.index", q=1) == "/inbox/?q=1"
