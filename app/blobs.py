"""Content-addressed blob store for raw messages and attachments.

Blobs are named by the sha256 of their bytes, so storing the same bytes twice is
harmless and a name proves its content. Two backends behind one interface:

* `DirectoryBlobStore` (default, `BLOB_DIR`): `ab/cd/abcd...` files, written to a
  temporary file, fsynced, renamed into place, and the directory fsynced, so a
  `put` that returned survives a crash or power loss.
* `DatabaseBlobStore` (`BLOB_STORE=db`): a row in `blobs`, committed on its own
  connection before `put` returns, so several machines can share one PostgreSQL.

`put` is acknowledged only once the bytes are durable; callers (ingress, IMAP
polling) must not advance anything before it returns.
"""
from __future__ import annotations

import hashlib
import os
import secrets
import tempfile
from pathlib import Path
from typing import BinaryIO, Protocol

from flask import Flask, current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models.blobs import Blob


class BlobNotFound(KeyError):
    """No blob with that sha256."""


class BlobStore(Protocol):
    def put(self, data: bytes) -> str: ...
    def put_file(self, fileobj: BinaryIO) -> str: ...
    def get(self, sha256: str) -> bytes: ...
    def exists(self, sha256: str) -> bool: ...


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

    def put(self, data: bytes) -> str:
        """Bytes already in memory (a rendered reply, an attachment): one write, one fsync, one rename."""
        sha = hashlib.sha256(data).hexdigest()
        final = self._path(sha)
        if final.exists():
            return sha
        if final.parent not in self._made:
            final.parent.mkdir(parents=True, exist_ok=True)
            self._made.add(final.parent)
        tmp = final.parent / f".incoming-{secrets.token_hex(8)}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileNotFoundError:  # the directory went away since we made it
            final.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
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

    def get(self, sha256: str) -> bytes:
        try:
            return self._path(sha256).read_bytes()
        except FileNotFoundError:
            raise BlobNotFound(sha256) from None

    def exists(self, sha256: str) -> bool:
        try:
            return self._path(sha256).exists()
        except BlobNotFound:
            return False


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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

    def put_file(self, fileobj: BinaryIO) -> str:
        return self.put(fileobj.read())

    def get(self, sha256: str) -> bytes:
        with db.engine.connect() as conn:
            row = conn.execute(select(Blob.data).where(Blob.sha256 == _check_name(sha256))).first()
        if row is None:
            raise BlobNotFound(sha256)
        return bytes(row[0])

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


def blob_store() -> BlobStore:
    """The configured store of the current app (one instance per app)."""
    store = current_app.extensions.get("blob_store")
    if store is None:
        store = current_app.extensions["blob_store"] = make_store(current_app)
    return store
