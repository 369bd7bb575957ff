"""`release_batch_memory`: the heap a batch freed goes back to the operating system."""
from __future__ import annotations

import ctypes.util

from app.runtime.mailbox import release_batch_memory


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_freed_heap_in_the_middle_goes_back_to_the_system():
    assert ctypes.util.find_library("c")  # the machines this runs on have glibc
    release_batch_memory()
    # 80 MB in 2 KB pieces (malloc's heap, not Python's small-object arenas), the last one kept:
    # freeing the rest leaves free pages below a piece in use, which free() alone never returns.
    pieces = [bytes(2000) + bytes([i % 256]) for i in range(40_000)]
    keep = pieces[-1]
    with_pieces = rss_mb()
    del pieces
    freed_only = rss_mb()
    assert release_batch_memory() is True
    released = rss_mb()
    assert with_pieces - freed_only < 30, "free() returned the pages already: nothing for this test to show"
    assert freed_only - released > 40
    assert keep
