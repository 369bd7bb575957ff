"""Small in-process caches: a size-bounded LRU map, and keys made of every value they stand for.

Both serve caches of derived, deterministic output (a message's sanitised frame, a rendered
row or tile): the key is everything the output is computed from, so a change to any of it
is a different key and stale output is never served; nothing needs to be invalidated, old
entries just age out.
"""
from __future__ import annotations

import dataclasses
import operator
import threading
from collections import OrderedDict
from datetime import date, datetime, time, timedelta


class SizedLRU:
    """A least-recently-used map bounded by the total size of its values (thread-safe).

    A value larger than an eighth of the budget is not kept (one huge item must not flush
    everything else).
    """

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.size = 0
        self._items: OrderedDict[object, tuple[object, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            self._items.move_to_end(key)
            return item[0]

    def put(self, key, value, size: int) -> None:
        if size > self.budget // 8:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self.size -= old[1]
            self._items[key] = (value, size)
            self.size += size
            while self.size > self.budget:
                _, (_, dropped) = self._items.popitem(last=False)
                self.size -= dropped

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.size = 0

    def __len__(self) -> int:
        return len(self._items)


_SCALARS = frozenset({str, int, float, bool, type(None), bytes, datetime, date, time, timedelta})
_GETTERS: dict[type, object] = {}  # dataclass / NamedTuple type -> getter of all its fields


def _getter(kind: type):
    get = _GETTERS.get(kind)
    if get is None:
        if dataclasses.is_dataclass(kind):
            names = [f.name for f in dataclasses.fields(kind)]
        elif issubclass(kind, tuple) and hasattr(kind, "_fields"):  # a NamedTuple
            names = list(kind._fields)
        else:
            # An ORM object, say: what a template reads of it may change without the object being
            # another, so it cannot be part of a key. Pass plain data (a dataclass, a NamedTuple).
            raise TypeError(f"plain() takes plain data, not {kind.__qualname__}")
        get = operator.attrgetter(*names) if len(names) != 1 else (lambda v, _n=names[0]: (getattr(v, _n),))
        _GETTERS[kind] = get
    return get


def plain(value):
    """`value` as a hashable key made of all of it: scalars as they are; lists, tuples, dicts,
    dataclasses and NamedTuples as tuples of their type and every item or field, recursively.
    Anything else raises TypeError."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is tuple or kind is list:
        items = value
    elif kind is dict:
        items = [x for k in sorted(value, key=repr) for x in (k, value[k])]
    else:
        items = _getter(kind)(value)
    return (kind, *[v if type(v) in _SCALARS else plain(v) for v in items])
