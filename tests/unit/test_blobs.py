"""Both blob stores behind one interface: content addressing, idempotence, errors, durability."""
from __future__ import annotations

import hashlib
import io
import os

import pytest

from sqlalchemy import select

from app.blobs import FSYNC_THREADS, BlobNotFound, DatabaseBlobStore, DirectoryBlobStore, blob_store


@pytest.fixture(params=["dir", "db"])
def store(request, app, tmp_path):
    if request.param == "dir":
        return DirectoryBlobStore(tmp_path / "blobs")
    return DatabaseBlobStore()


def test_put_returns_sha256_and_get_returns_bytes(store):
    data = b"From: a@example.com\r\n\r\nhello\r\n"
    sha = store.put(data)
    assert sha == hashlib.sha256(data).hexdigest()
    assert store.get(sha) == data
    assert store.exists(sha)


def test_same_bytes_twice_is_one_blob(store):
    assert store.put(b"x" * 1000) == store.put(b"x" * 1000)


def test_put_file_streams(store):
    data = os.urandom(3 * (1 << 20) + 17)
    sha = store.put_file(io.BytesIO(data))
    assert store.get(sha) == data


@pytest.mark.parametrize("name", ["0" * 64, "../../etc/passwd", "ZZ" * 32, ""])
def test_missing_or_malformed_names_raise_blob_not_found(store, name):
    with pytest.raises(BlobNotFound):
        store.get(name)
    assert store.exists(name) is False


def test_directory_store_layout_and_no_leftovers(tmp_path):
    store = DirectoryBlobStore(tmp_path)
    sha = store.put(b"abc")
    assert (tmp_path / sha[:2] / sha[2:4] / sha).read_bytes() == b"abc"
    store.put_file(io.BytesIO(b"def"))
    assert not [p for p in tmp_path.rglob(".incoming-*")]


def test_failed_in_memory_put_leaves_no_temporary_file(tmp_path, monkeypatch):
    store = DirectoryBlobStore(tmp_path)

    def broken_fsync(fd):
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk on fire"):
        store.put(b"never stored")
    monkeypatch.undo()
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
    assert not store.exists(hashlib.sha256(b"never stored").hexdigest())


def test_failed_write_leaves_no_temporary_file(tmp_path):
    class Broken(io.BytesIO):
        def read(self, *args):
            raise OSError("disk on fire")

    store = DirectoryBlobStore(tmp_path)
    with pytest.raises(OSError, match="disk on fire"):
        store.put_file(Broken())
    assert list(tmp_path.iterdir()) == []


def test_database_store_commits_outside_the_callers_transaction(app, db):
    from app.models.blobs import Blob

    sha = DatabaseBlobStore().put(b"durable")
    db.session.rollback()  # the caller's rollback cannot undo an acknowledged blob
    assert db.session.get(Blob, sha).data == b"durable"


def test_configured_store(app):
    with app.app_context():
        assert isinstance(blob_store(), DirectoryBlobStore)
    app.config["BLOB_STORE"] = "db"
    app.extensions.pop("blob_store", None)
    with app.app_context():
        assert isinstance(blob_store(), DatabaseBlobStore)
    app.config["BLOB_STORE"] = "s3"
    app.extensions.pop("blob_store", None)
    with app.app_context(), pytest.raises(ValueError, match="BLOB_STORE must be 'dir' or 'db'"):
        blob_store()


def test_put_many_names_every_blob_in_order_once(store):
    datas = [b"one", b"two", b"one", os.urandom(5000)]
    store.put(b"two")  # already there: not written again, still named
    shas = store.put_many(datas)
    assert shas == [hashlib.sha256(d).hexdigest() for d in datas]
    assert [store.get(s) for s in shas] == datas
    assert store.put_many([]) == []


def test_put_many_makes_every_file_durable_before_naming_it_and_each_directory_once(tmp_path, monkeypatch):
    """The batch's promise is put's: fsync the bytes, rename, fsync the directory; grouped, never reordered."""
    store = DirectoryBlobStore(tmp_path)
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("rename", str(src), str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    datas = [os.urandom(100) for _ in range(20)] + [b"shared", b"shared"]
    shas = store.put_many(datas)
    monkeypatch.undo()

    renames = [e for e in events if e[0] == "rename"]
    assert sorted(dst for _, _, dst in renames) == sorted(str(store._path(s)) for s in set(shas))
    first_rename = events.index(renames[0])
    synced_files = {e[1] for e in events[:first_rename] if e[0] == "fsync"}
    assert {src for _, src, _ in renames} <= synced_files  # every file's bytes durable before any name exists
    dir_syncs = [e[1] for e in events[events.index(renames[-1]):] if e[0] == "fsync"]
    assert sorted(dir_syncs) == sorted({str(store._path(s).parent) for s in shas})  # each directory once, after


def test_failed_put_many_names_nothing_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    store = DirectoryBlobStore(tmp_path)
    datas = [b"first", b"second", b"third"]

    def broken_fsync(fd):
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk on fire"):
        store.put_many(datas)
    monkeypatch.undo()
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
    assert not any(store.exists(hashlib.sha256(d).hexdigest()) for d in datas)


def test_staged_blobs_are_durable_with_the_callers_commit_and_readable_at_once(store, db):
    """`stage` writes no file and no fsync of its own: the bytes commit with the caller's rows."""
    datas = [b"staged one", os.urandom(3000), b"staged one"]
    shas = store.stage(datas)
    assert shas == [hashlib.sha256(d).hexdigest() for d in datas]
    db.session.commit()
    assert [store.get(s) for s in shas] == datas
    assert all(store.exists(s) for s in shas)
    assert store.settle(shas[1]) == datas[1]
    assert store.get(shas[1]) == datas[1]


def test_a_rolled_back_stage_leaves_nothing(store, db):
    sha = store.stage([b"never committed"])[0]
    db.session.rollback()
    assert not store.exists(sha)
    with pytest.raises(BlobNotFound):
        store.settle(sha)


def test_settle_moves_a_spooled_blob_to_its_file_then_drops_the_row(app, db, tmp_path):
    from app.models.blobs import Blob

    store = DirectoryBlobStore(tmp_path)
    on_disk = store.put(b"already a file")
    shas = store.stage([b"spooled", b"already a file"])
    db.session.commit()
    assert db.session.scalars(select(Blob.sha256)).all() == [shas[0]]  # bytes on disk are not spooled again
    assert not store._path(shas[0]).exists()

    assert store.settle(shas[0]) == b"spooled"
    assert store._path(shas[0]).read_bytes() == b"spooled"
    db.session.expire_all()
    assert db.session.scalars(select(Blob.sha256)).all() == []
    assert store.settle(shas[0]) == b"spooled"  # again (another worker, a retried job): harmless
    assert store.settle(on_disk) == b"already a file"


def test_staging_the_same_bytes_again_keeps_the_row(store, db):
    sha = store.stage([b"twice"])[0]
    db.session.commit()
    assert store.stage([b"twice"]) == [sha]  # no duplicate-key error
    db.session.commit()
    assert store.get(sha) == b"twice"


def test_put_many_reuses_its_fsync_threads(tmp_path):
    import threading

    store = DirectoryBlobStore(tmp_path)
    for round_ in range(3):
        store.put_many([os.urandom(100) for _ in range(20)])
        fsync_threads = [t for t in threading.enumerate() if t.name.startswith("blob-fsync")]
        assert 0 < len(fsync_threads) <= FSYNC_THREADS


@pytest.mark.parametrize("kind", ["dir", "db"])
def test_settle_many_moves_every_spooled_blob_at_once_and_leaves_out_what_is_nowhere(app, db, tmp_path, kind):
    from app.models.blobs import Blob

    store = DirectoryBlobStore(tmp_path) if kind == "dir" else DatabaseBlobStore()
    on_disk = store.put(b"already there")
    shas = store.stage([b"spooled one", b"spooled two", b"spooled one"])
    db.session.commit()
    nowhere = "0" * 64
    settled = store.settle_many([*shas, on_disk, nowhere])
    assert settled == {shas[0]: b"spooled one", shas[1]: b"spooled two", on_disk: b"already there"}
    if kind == "dir":  # durable files now, and the spool rows gone
        assert [store._path(s).read_bytes() for s in shas[:2]] == [b"spooled one", b"spooled two"]
        db.session.expire_all()
        assert db.session.scalars(select(Blob.sha256)).all() == []
    assert store.settle_many(shas) == {shas[0]: b"spooled one", shas[1]: b"spooled two"}  # again: harmless
