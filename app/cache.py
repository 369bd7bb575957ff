"""Small in-process caches: a size-bounded LRU map, and keys made of every value they stand for.

Both serve caches of derived, deterministic output (a message's sanitised frame, a rendered
row or tile): the key is everything the output is computed from, so a change to any of it
is a different key and stale output is never served; nothing needs to be invalidated, old
entries just age out.
"""
from __future__ import annotations

import dataclasses
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
_KEYS: dict[type, object] = {}  # dataclass / NamedTuple type -> its `plain()` function


def _key_function(kind: type):
    """`plain()` for one dataclass or NamedTuple type: a function written for its fields, built
    once (an inbox page keys 50 rows, and a generic loop over the fields costs twice as much)."""
    key = _KEYS.get(kind)
    if key is None:
        if dataclasses.is_dataclass(kind):
            names = [f.name for f in dataclasses.fields(kind)]
        elif issubclass(kind, tuple) and hasattr(kind, "_fields"):  # a NamedTuple
            names = list(kind._fields)
        else:
            # An ORM object, say: what a template reads of it may change without the object being
            # another, so it cannot be part of a key. Pass plain data (a dataclass, a NamedTuple).
            raise TypeError(f"plain() takes plain data, not {kind.__qualname__}")
        # Field names are identifiers (dataclasses and NamedTuples check), so they can be code.
        body = "".join(f"    x{i} = v.{name}\n    if type(x{i}) not in scalars: x{i} = plain(x{i})\n"
                       for i, name in enumerate(names))
        source = f"def key(v):\n{body}    return (kind, {''.join(f'x{i}, ' for i in range(len(names)))})\n"
        namespace = {"scalars": _SCALARS, "plain": plain, "kind": kind}
        exec(compile(source, f"<plain key of {kind.__qualname__}>", "exec"), namespace)  # noqa: S102
        key = _KEYS[kind] = namespace["key"]
    return key


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
        return _key_function(kind)(value)
    return (kind, *[v if type(v) in _SCALARS else plain(v) for v in items])
