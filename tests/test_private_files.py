"""Files under instance/ are private (issue 19, item 7): created 0600 / folders 0700, older ones fixed with a warning.

Real processes in a fresh instance folder: `flask db upgrade` and `flask demo seed` create the
SQLite database (WAL mode) and the dev secret, `flask ingress` stores a message's raw bytes in
the blob store while it runs; an older checkout's world-readable Redis file and log are fixed.
"""
from __future__ import annotations

import os
import smtplib
import stat
import subprocess

from app.private_files import make_private, private_paths, secure_instance
from tests.servers import free_port, wait_for_port
from tests.subprocess_env import ROOT, flask_cmd, flask_env


def mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def everything(root):
    yield root
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            yield os.path.join(folder, name)


def test_a_fresh_instance_is_private_and_older_readable_files_are_fixed_with_a_warning(app, tmp_path):
    os.umask(0o022)  # the shell's usual umask: without the fix everything below is 0644 / 0755
    instance = tmp_path / "instance"
    (instance / "redis").mkdir(parents=True)
    (instance / "logs").mkdir()
    aof = instance / "redis" / "appendonly.aof"
    aof.write_text("*1\r\n$4\r\nPING\r\n")
    old_log = instance / "logs" / "web.log"
    old_log.write_text("an old log line\n")
    assert mode(aof) == 0o644 and mode(instance / "redis") == 0o755
    env = flask_env(app, tmp_path)
    env.pop("SECRET_KEY")  # the dev secret is made in the instance folder
    env.update(DATABASE_URL=f"sqlite:///{instance / 'pigeonhole.db'}", BLOB_DIR=str(instance / "blobs"))

    upgrade = subprocess.run(flask_cmd("db", "upgrade"), env=env, cwd=ROOT, capture_output=True, text=True,
                             timeout=120)
    assert upgrade.returncode == 0, upgrade.stderr
    assert "were readable by other users (group or world); made them private" in upgrade.stderr
    assert str(aof) in upgrade.stderr and str(old_log) in upgrade.stderr
    assert (mode(aof), mode(old_log), mode(instance / "redis"), mode(instance)) == (0o600, 0o600, 0o700, 0o700)
    seed = subprocess.run(flask_cmd("demo", "seed"), env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert seed.returncode == 0, seed.stderr
    assert "readable by other users" not in seed.stderr  # nothing left to fix

    port = free_port()
    ingress = subprocess.Popen(flask_cmd("ingress", "--port", str(port)), env=env, cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, timeout=30)
        domain = app.config["PLATFORM_MAIL_DOMAIN"]
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            smtp.sendmail("carla@example.com", [f"support@{domain}"],
                          b"From: carla@example.com\r\nSubject: private\r\n\r\nhello\r\n")
        assert (instance / "pigeonhole.db-wal").exists()  # the ingress holds the database open in WAL mode
        created = list(everything(str(instance)))
    finally:
        ingress.terminate()
        ingress.wait(10)
    names = {os.path.basename(p) for p in created}
    assert {"secret_key", "pigeonhole.db", "pigeonhole.db-wal", "pigeonhole.db-shm", "blobs"} <= names
    blobs = [p for p in created if p.startswith(str(instance / "blobs")) and os.path.isfile(p)]
    assert blobs  # the raw message, stored before the 250
    wrong = {p: oct(mode(p)) for p in created if os.path.exists(p)
             and mode(p) != (0o700 if os.path.isdir(p) else 0o600)}
    assert wrong == {}


def test_make_private_leaves_symbolic_links_and_their_targets_alone(tmp_path):
    outside = tmp_path / "shared.txt"
    outside.write_text("not ours")
    outside.chmod(0o644)
    inside = tmp_path / "instance"
    inside.mkdir(mode=0o755)
    (inside / "link").symlink_to(outside)
    fixed, cut = make_private(inside)
    assert fixed == [str(inside)] and not cut
    assert mode(outside) == 0o644 and mode(inside) == 0o700


def test_the_checked_folders_follow_the_configuration(tmp_path):
    config = {"INSTANCE_DIR": str(tmp_path / "i"), "BLOB_STORE": "dir", "BLOB_DIR": str(tmp_path / "b"),
              "OUTBOX_DIR": "", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'd' / 'x.db'}"}
    db = str(tmp_path / "d" / "x.db")
    assert private_paths(config) == [str(tmp_path / "i"), str(tmp_path / "b"), db, db + "-wal", db + "-shm",
                                     db + "-journal"]
    config.update(BLOB_STORE="db", SQLALCHEMY_DATABASE_URI="postgresql+psycopg://h/db")
    assert private_paths(config) == [str(tmp_path / "i")]


def test_a_database_in_a_shared_folder_leaves_the_folder_and_its_other_files_alone(tmp_path):
    """A bench with its SQLite file in /tmp made /tmp itself and everything under it owner-only."""
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    neighbour = shared / "someone-elses.txt"
    neighbour.write_text("x")
    os.chmod(neighbour, 0o644)
    database = shared / "bench.db"
    database.write_text("")
    os.chmod(database, 0o644)
    config = {"INSTANCE_DIR": str(tmp_path / "i"), "BLOB_STORE": "db", "OUTBOX_DIR": "",
              "SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}"}
    assert secure_instance(config) == [str(database)]
    assert mode(shared) == 0o1777 and mode(neighbour) == 0o644 and mode(database) == 0o600
    # Named as a private folder itself, a sticky folder is still left alone.
    assert make_private(shared) == ([], False) and mode(shared) == 0o1777
