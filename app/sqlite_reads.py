"""Memory-mapped reads for SQLite connections (`PRAGMA mmap_size`).

By default SQLite copies every page it reads from the operating system's file cache
into a 2 MB page cache of its own, one system call per page; a search over a million
messages reads a few thousand pages (the full-text index, then the matching messages)
and spends more time copying than searching (docs/workspace.md has `bench/web.py`'s
figures). With `mmap_size`, reads come
straight from the file cache, shared by every connection and process instead of one
page cache each. Writes, WAL and `synchronous` are unchanged (SQLite maps the file
read-only and writes as before).

`SQLITE_MMAP_SIZE` (bytes, default 1 GiB; 0 turns it off) is how much of the file may be
mapped: address space, not memory. The durability pragmas (WAL, synchronous, busy
timeout) are set for every connection in `app/extensions.py`.
"""
from __future__ import annotations

from functools import partial

from flask import Flask
from sqlalchemy import event

from app.extensions import db


def _memory_mapped_reads(size: int, dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA mmap_size={int(size)}")
    finally:
        cursor.close()


def init_app(app: Flask) -> None:
    """Have the app's SQLite engines map their file on every new connection (no I/O here)."""
    size = int(app.config.get("SQLITE_MMAP_SIZE") or 0)
    if size <= 0:
        return
    with app.app_context():
        for engine in db.engines.values():
            if engine.dialect.name == "sqlite":
                event.listen(engine, "connect", partial(_memory_mapped_reads, size))
