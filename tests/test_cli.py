"""`flask users create` and `flask demo seed`."""
from __future__ import annotations

from sqlalchemy import func, select

from app.models.auth import Queue, User


def test_users_create_prompts_for_the_password(app, db):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["users", "create", "Boss@Example.test", "--role", "admin"],
                           input="s3cret-pw\ns3cret-pw\n")
    assert result.exit_code == 0, result.output
    assert "created admin boss@example.test" in result.output
    assert "s3cret-pw" not in result.output
    user = db.session.scalar(select(User).where(User.email == "boss@example.test"))
    assert user.role == "admin" and user.check_password("s3cret-pw") and user.password_hash != "s3cret-pw"


def test_users_create_refuses_a_duplicate_and_a_bad_role(app, db):
    runner = app.test_cli_runner()
    runner.invoke(args=["users", "create", "a@example.test"], input="pw\npw\n")
    again = runner.invoke(args=["users", "create", "A@example.test"], input="pw\npw\n")
    assert again.exit_code != 0 and "already exists" in again.output
    bad = runner.invoke(args=["users", "create", "b@example.test", "--role", "king"], input="pw\npw\n")
    assert bad.exit_code != 0 and "king" in bad.output


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
