"""Content-addressed blob store for raw messages and attachments.

Blobs are named by the sha256 of their bytes, so storing the same bytes twice is
harmless and a name proves its content. Two backends behind one interface:

* `DirectoryBlobStore` (default, `BLOB_DIR`): `ab/cd/abcd...` files, written to a
  temporary file, fsynced, renamed into place, and the directory fsynced, so a
  `put` that returned survives a crash or power loss.
* `DatabaseBlobStore` (`BLOB_STORE=db`): a row in `blobs`, committed on its own
  connection before `put` returns, so several machines can share one PostgreSQL.

`put` is acknowledged only once the bytes are durable; callers (ingress, IMAP
polling) must not advance anything before it returns. `put_many` makes a batch
durable together with the same promise for every blob: all files are written
first, then fsynced concurrently (the journal of ext4/xfs merges concurrent
fsyncs into one commit, where one-by-one each paid a journal commit), renamed,
and each touched directory fsynced once.

`stage` is the cheapest durable write there is for a caller that commits anyway
(the SMTP ingress before its 250): the blobs become rows of `blobs` inside the
caller's transaction, durable with its commit, with no fsync of their own. For the
database store that is simply where blobs live. For the directory store the rows
are a spool: `get` and `exists` read them until `settle` (the ingest job, off the
SMTP session's path) has written the file durably and deleted the row.
"""
from __future__ import annotations

import errno
import hashlib
import os
import secrets
import tempfile
import threading
from datetime import datetime, timezone
from pathlib import Path
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from typing import BinaryIO, Protocol

from flask import Flask, current_app, has_app_context
from sqlalchemy import bindparam, delete, select, text
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models.blobs import Blob


class BlobNotFound(KeyError):
    """No blob with that sha256."""


class NoRoom(OSError):
    """A write refused before it began: it would leave less free space than the reserve (`require_room`)."""

    def __init__(self, free: int, size: int, reserve: int) -> None:
        super().__init__(errno.ENOSPC, f"{free} bytes free, {size} wanted, {reserve} kept in reserve")


#: Threads that fsync a batch's files at once (fsync releases the GIL; the journal merges their commits).
FSYNC_THREADS = 8


class BlobStore(Protocol):
    def put(self, data: bytes) -> str: ...
    def put_many(self, datas: Sequence[bytes]) -> list[str]: ...
    def put_file(self, fileobj: BinaryIO) -> str: ...
    def stage(self, datas: Sequence[bytes]) -> list[str]: ...
    def settle(self, sha256: str) -> bytes: ...
    def settle_many(self, shas: Sequence[str]) -> dict[str, bytes]: ...
    def get(self, sha256: str) -> bytes: ...
    def exists(self, sha256: str) -> bool: ...
    def free_bytes(self) -> int | None: ...


def _check_name(sha256: str) -> str:
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise BlobNotFound(sha256)
    return sha256


class DirectoryBlobStore:
    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self._made: set[Path] = set()  # shard directories known to exist (saves a mkdir per put)

    def _path(self, sha256: str) -> Path:
        _check_name(sha256)
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def free_bytes(self) -> int | None:
        """Bytes an unprivileged writer may still use on the store's file system."""
        self.root.mkdir(parents=True, exist_ok=True)
        stat = os.statvfs(self.root)
        return stat.f_bavail * stat.f_frsize

    def put(self, data: bytes) -> str:
        """Bytes already in memory (a rendered reply, an attachment): one write, one fsync, one rename."""
        sha = hashlib.sha256(data).hexdigest()
        final = self._path(sha)
        if final.exists():
            return sha
        fd, tmp = self._open_temporary(final)
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, final)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        _fsync_dir(final.parent)
        return sha

    def put_many(self, datas: Sequence[bytes]) -> list[str]:
        """Several blobs, durable together: write all, fsync all files (concurrently), rename, fsync each dir once.

        Returns the names in the order given. When it returns, every blob is durable;
        when it raises, none is named (temporary files are removed), as with `put`.
        """
        shas = [hashlib.sha256(data).hexdigest() for data in datas]
        todo: dict[str, bytes] = {}
        for sha, data in zip(shas, datas):
            if sha not in todo and not self._path(sha).exists():
                todo[sha] = data
        if not todo:
            return shas
        if len(todo) == 1:
            self.put(next(iter(todo.values())))
            return shas
        written: list[tuple[int, Path, Path]] = []  # (fd, temporary, final)
        try:
            for sha, data in todo.items():
                final = self._path(sha)
                fd, tmp = self._open_temporary(final)
                written.append((fd, tmp, final))
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
            _concurrently(os.fsync, [fd for fd, _tmp, _final in written])
        except BaseException:
            for fd, tmp, _final in written:
                os.close(fd)
                if os.path.exists(tmp):
                    os.unlink(tmp)
            raise
        for fd, tmp, final in written:
            os.close(fd)
            os.replace(tmp, final)
        _concurrently(_fsync_dir, sorted({final.parent for _fd, _tmp, final in written}))
        return shas

    def _open_temporary(self, final: Path) -> tuple[int, Path]:
        if final.parent not in self._made:
            final.parent.mkdir(parents=True, exist_ok=True)
            self._made.add(final.parent)
        tmp = final.parent / f".incoming-{secrets.token_hex(8)}"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), tmp
        except FileNotFoundError:  # the directory went away since we made it
            final.parent.mkdir(parents=True, exist_ok=True)
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), tmp

    def put_file(self, fileobj: BinaryIO) -> str:
        """Stream `fileobj` to disk (constant memory), fsync, then name it by its hash."""
        self.root.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in iter(lambda: fileobj.read(1 << 20), b""):
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            sha = digest.hexdigest()
            final = self._path(sha)
            if final.exists():
                os.unlink(tmp)
                return sha
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, final)
            _fsync_dir(final.parent)
            return sha
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def stage(self, datas: Sequence[bytes]) -> list[str]:
        """Blobs as spooled rows of `blobs` in `db.session`'s transaction (durable with its commit); names in order.

        Bytes already on disk are not spooled again. `settle` moves a spooled blob to its file.
        """
        shas = [hashlib.sha256(data).hexdigest() for data in datas]
        _insert_rows({sha: data for sha, data in zip(shas, datas) if not self._path(sha).exists()})
        return shas

    def settle(self, sha256: str) -> bytes:
        """The blob's bytes, its file made durable first when it was only spooled (the spool row is then deleted).

        Safe to repeat and to run in several workers at once: the file is written whole or
        not at all, and a row is deleted only once its file is durable.
        """
        try:
            return self._path(sha256).read_bytes()
        except FileNotFoundError:
            pass
        data = _spooled(sha256)
        if data is None:
            raise BlobNotFound(sha256)
        self.put(data)
        with db.engine.begin() as conn:
            conn.execute(delete(Blob).where(Blob.sha256 == sha256))
        return data

    def settle_many(self, shas: Sequence[str]) -> dict[str, bytes]:
        """`settle` for several blobs at once: the spooled ones made durable together (`put_many`), then their
        spool rows deleted in one statement. Blobs found nowhere are left out of the answer; errors are raised."""
        found: dict[str, bytes] = {}
        missing = []
        for sha in dict.fromkeys(shas):
            try:
                found[sha] = self._path(sha).read_bytes()
            except FileNotFoundError:
                missing.append(sha)
        spooled = _spooled_many(missing)
        if spooled:
            self.put_many(list(spooled.values()))
            with db.engine.begin() as conn:
                conn.execute(delete(Blob).where(Blob.sha256.in_(list(spooled))))
        return found | spooled

    def get(self, sha256: str) -> bytes:
        try:
            return self._path(sha256).read_bytes()
        except FileNotFoundError:
            pass
        data = _spooled(sha256)  # staged by the ingress, not settled yet
        if data is None:
            raise BlobNotFound(sha256)
        return data

    def exists(self, sha256: str) -> bool:
        try:
            return self._path(sha256).exists() or _spooled(sha256) is not None
        except BlobNotFound:
            return False


def _spooled(sha256: str) -> bytes | None:
    """A blob's bytes from the `blobs` table (committed rows, on a connection of its own), or None.

    Without an app there is no database, so nothing was staged (a store used on its own).
    """
    if not has_app_context():
        return None
    with db.engine.connect() as conn:
        row = conn.execute(select(Blob.data).where(Blob.sha256 == _check_name(sha256))).first()
    return None if row is None else bytes(row[0])


def _spooled_many(shas: Sequence[str]) -> dict[str, bytes]:
    """`_spooled` for several blobs in one query: the ones found, by name."""
    if not shas or not has_app_context():
        return {}
    with db.engine.connect() as conn:
        rows = conn.execute(select(Blob.sha256, Blob.data).where(Blob.sha256.in_([_check_name(s) for s in shas])))
        return {sha: bytes(data) for sha, data in rows}


def _insert_rows(todo: dict[str, bytes]) -> None:
    """Rows of `blobs` for `todo` (sha256 -> bytes) in `db.session`'s transaction; rows already there are kept."""
    if not todo:
        return
    now = datetime.now(timezone.utc)
    rows = [{"sha256": sha, "size": len(data), "data": data, "created_at": now} for sha, data in todo.items()]
    db.session.connection().execute(_INSERT_IF_MISSING, rows)


_table = Blob.__table__
#: A row already there (staged before, or by another session at the same moment) is kept: same bytes.
#: Text, because the dialects' `on_conflict_do_nothing` statements are compiled anew on every call.
_INSERT_IF_MISSING = text(
    "INSERT INTO blobs (sha256, size, data, created_at) VALUES (:sha256, :size, :data, :created_at) "
    "ON CONFLICT (sha256) DO NOTHING"  # SQLite and PostgreSQL alike
).bindparams(*(bindparam(c.name, type_=c.type) for c in (_table.c.sha256, _table.c.size, _table.c.data,
                                                             _table.c.created_at)))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _concurrently(func, args: list) -> None:
    """`func(arg)` for each arg on a few threads; the first error is raised once all are done.

    The threads are the process's one fsync pool, kept between calls: starting threads
    for every batch cost the ingress's writer more than the fsyncs they ran.
    """
    if len(args) <= 1:
        for arg in args:
            func(arg)
        return
    futures = [_fsync_pool().submit(func, arg) for arg in args]
    wait(futures)
    for future in futures:
        future.result()


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _fsync_pool() -> ThreadPoolExecutor:
    """The fsync threads of this process, started on first use."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(FSYNC_THREADS, thread_name_prefix="blob-fsync")
        return _pool


def _forget_pool_after_fork() -> None:
    """A forked child (an RQ work horse) inherits the pool's object but none of its threads."""
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_pool_after_fork)


class DatabaseBlobStore:
    """Blobs as rows; each `put` commits on its own connection, outside the caller's session."""

    def put(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        try:
            with db.engine.begin() as conn:
                found = conn.execute(select(Blob.sha256).where(Blob.sha256 == sha)).first()
                if found is None:
                    conn.execute(Blob.__table__.insert().values(sha256=sha, size=len(data), data=data))
        except IntegrityError:
            pass  # another writer stored the same bytes first
        return sha

    def put_many(self, datas: Sequence[bytes]) -> list[str]:
        """All missing blobs in one transaction (committed before it returns)."""
        shas = [hashlib.sha256(data).hexdigest() for data in datas]
        todo = dict(zip(shas, datas))
        if not todo:
            return shas
        with db.engine.begin() as conn:
            found = set(conn.scalars(select(Blob.sha256).where(Blob.sha256.in_(list(todo)))))
            rows = [{"sha256": sha, "size": len(data), "data": data} for sha, data in todo.items() if sha not in found]
            if rows:
                try:
                    with conn.begin_nested():
                        conn.execute(Blob.__table__.insert(), rows)
                except IntegrityError:  # another writer stored some of them first: one by one
                    for row in rows:
                        try:
                            with conn.begin_nested():
                                conn.execute(Blob.__table__.insert().values(**row))
                        except IntegrityError:
                            pass
        return shas

    def put_file(self, fileobj: BinaryIO) -> str:
        return self.put(fileobj.read())

    def free_bytes(self) -> int | None:
        """Unknown: the database's own disk is the database administrator's to watch."""
        return None

    def stage(self, datas: Sequence[bytes]) -> list[str]:
        """Blob rows in `db.session`'s transaction (durable with its commit); names in order."""
        shas = [hashlib.sha256(data).hexdigest() for data in datas]
        _insert_rows(dict(zip(shas, datas)))
        return shas

    def settle(self, sha256: str) -> bytes:
        """A staged row is where this store keeps blobs already: only read it."""
        return self.get(sha256)

    def settle_many(self, shas: Sequence[str]) -> dict[str, bytes]:
        """Only reads, in one query: the blobs found, by name."""
        return _spooled_many(list(dict.fromkeys(shas)))

    def get(self, sha256: str) -> bytes:
        data = _spooled(sha256)
        if data is None:
            raise BlobNotFound(sha256)
        return data

    def exists(self, sha256: str) -> bool:
        try:
            self.get(sha256)
        except BlobNotFound:
            return False
        return True


def make_store(app: Flask) -> BlobStore:
    kind = app.config["BLOB_STORE"]
    if kind == "db":
        return DatabaseBlobStore()
    if kind == "dir":
        return DirectoryBlobStore(app.config["BLOB_DIR"])
    raise ValueError(f"BLOB_STORE must be 'dir' or 'db', not {kind!r}")


def require_room(store: BlobStore, size: int, reserve: int) -> None:
    """Raise `NoRoom` (an `OSError` with ENOSPC) when writing `size` bytes would leave less than `reserve` free.

    For writes that can wait (an agent's upload), so they never take the last space that
    inbound mail needs: the ingress and polling do not call it. A store that cannot tell
    its free space (the database) is never refused here.
    """
    free = store.free_bytes() if reserve > 0 else None
    if free is not None and free - size < reserve:
        raise NoRoom(free, size, reserve)


def blob_store() -> BlobStore:
    """The configured store of the current app (one instance per app)."""
    store = current_app.extensions.get("blob_store")
    if store is None:
        store = current_app.extensions["blob_store"] = make_store(current_app)
    return store
