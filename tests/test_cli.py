"""`flask users create` and `flask demo seed`."""
from __future__ import annotations

import os
import pty
import subprocess
import time

from sqlalchemy import func, select

from app.models.auth import Queue, User
from tests.subprocess_env import ROOT, flask_cmd, flask_env


def test_users_create_reads_the_password_from_stdin_when_it_is_not_a_terminal(app, db):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["users", "create", "Boss@Example.test", "--role", "admin"],
                           input="s3cret passphrase here\n")
    assert result.exit_code == 0, result.output
    assert "created admin boss@example.test" in result.output
    assert "s3cret passphrase here" not in result.output
    user = db.session.scalar(select(User).where(User.email == "boss@example.test"))
    assert user.role == "admin" and user.check_password("s3cret passphrase here") and user.password_hash != "s3cret passphrase here"


def test_users_create_refuses_a_duplicate_and_a_bad_role(app, db):
    runner = app.test_cli_runner()
    runner.invoke(args=["users", "create", "a@example.test"], input="a fine long passphrase\n")
    again = runner.invoke(args=["users", "create", "A@example.test"], input="a fine long passphrase\n")
    assert again.exit_code != 0 and "already exists" in again.output
    bad = runner.invoke(args=["users", "create", "b@example.test", "--role", "king"], input="a fine long passphrase\n")
    assert bad.exit_code != 0 and "king" in bad.output
    empty = runner.invoke(args=["users", "create", "c@example.test"], input="")
    assert empty.exit_code != 0 and "no password" in empty.output


def test_users_set_password_ends_every_session(app, db, client):
    from app.models.auth import UserSession
    from tests.factories import PASSWORD, make_user
    from tests.helpers import csrf_token

    user = make_user("agent")
    client.post("/login", data={"email": user.email, "password": PASSWORD, "csrf_token": csrf_token(client)})
    assert client.get("/inbox/").status_code == 200
    runner = app.test_cli_runner()
    short = runner.invoke(args=["users", "set-password", user.email], input="short\n")
    assert short.exit_code != 0 and "at least 12 characters" in short.output
    result = runner.invoke(args=["users", "set-password", user.email.upper()], input="a new long password\n")
    assert result.exit_code == 0, result.output
    assert f"password changed for {user.email}; 1 session ended" in result.output
    assert client.get("/inbox/").status_code == 302
    db.session.expire_all()
    assert db.session.get(User, user.id).check_password("a new long password")
    assert db.session.scalar(select(func.count()).select_from(UserSession)) == 0
    missing = runner.invoke(args=["users", "set-password", "nobody@example.test"], input="a new long password\n")
    assert missing.exit_code != 0 and "no user" in missing.output


def test_users_create_takes_no_password_option(app, db):
    """A password on the command line stays in the shell's history and shows in `ps`."""
    result = app.test_cli_runner().invoke(args=["users", "create", "d@example.test", "--password", "in-ps"], input="a fine long passphrase\n")
    assert result.exit_code == 2 and "No such option" in result.output
    assert db.session.scalar(select(User).where(User.email == "d@example.test")) is None


def test_users_create_at_a_terminal_asks_twice_without_echo(app, db, tmp_path):
    main, child = pty.openpty()
    process = subprocess.Popen(flask_cmd("users", "create", "tty@example.test", "--role", "supervisor"),
                               stdin=child, stdout=child, stderr=child, env=flask_env(app, tmp_path), cwd=ROOT)
    os.close(child)
    seen = b""

    def read_until(text: bytes) -> None:
        nonlocal seen
        deadline = time.monotonic() + 60
        while text not in seen and time.monotonic() < deadline:
            try:
                seen += os.read(main, 1024)
            except OSError:
                break
        assert text in seen, seen

    read_until(b"Password: ")
    os.write(main, b"typed passphrase 1\n")
    read_until(b"Repeat for confirmation: ")
    os.write(main, b"typed passphrase 1\n")
    read_until(b"created supervisor tty@example.test")
    assert process.wait(60) == 0
    os.close(main)
    assert b"typed passphrase 1" not in seen  # never echoed
    db.session.expire_all()
    user = db.session.scalar(select(User).where(User.email == "tty@example.test"))
    assert user.check_password("typed passphrase 1")


def test_demo_seed_is_idempotent(app, db):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["demo", "seed"])
    assert first.exit_code == 0 and "user admin@demo.test (admin)" in first.output
    second = runner.invoke(args=["demo", "seed"])
    assert second.exit_code == 0 and "user " not in second.output
    assert db.session.scalar(select(func.count()).select_from(User)) == 3
    general = db.session.scalar(select(Queue).where(Queue.name == "General"))
    assert {u.email for u in general.members} == {"agent@demo.test", "supervisor@demo.test"}
    admin = db.session.scalar(select(User).where(User.email == "admin@demo.test"))
    assert admin.check_password("demo")
