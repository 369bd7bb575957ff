"""Setting up an installation: `flask users create`, `flask demo seed`."""
from __future__ import annotations

import sys

import click
from flask.cli import AppGroup

from sqlalchemy import select

from app.auth import audit
from app.auth.password_rules import check_new_password
from app.auth.services import UserExists, change_password, create_user, normalise_email
from app.models.auth import User
from app.demo import seed
from app.extensions import db

users_cli = AppGroup("users", help="Manage users.")
demo_cli = AppGroup("demo", help="Demo data.")


@users_cli.command("create")
@click.argument("email")
@click.option("--role", type=click.Choice(["admin", "supervisor", "agent"]), default="agent", show_default=True)
@click.option("--name", default="", help="Display name (defaults to the email's local part).")
def create_user_command(email: str, role: str, name: str) -> None:
    """Create a user with EMAIL and a role.

    The password is never an argument (it would stay in the shell's history and show in `ps`):
    at a terminal it is asked for twice, unseen; otherwise it is the first line of standard
    input (`printf '%s\\n' "$PW" | flask users create ...`).
    """
    password = read_password()
    try:
        check_new_password(password, email)
        user = create_user(email, password, role, name)
    except UserExists:
        raise click.ClickException(f"a user with the email {email} already exists") from None
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    audit.record("create", user, None, via="command line", role=user.role, email=user.email)
    db.session.commit()
    click.echo(f"created {user.role} {user.email}")


@users_cli.command("set-password")
@click.argument("email")
def set_password_command(email: str) -> None:
    """Give the user with EMAIL a new password (read as `create` reads it) and end all their sessions."""
    user = db.session.scalar(select(User).where(User.email == normalise_email(email)))
    if user is None:
        raise click.ClickException(f"no user with the email {email}")
    try:
        ended = change_password(user, None, read_password())
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    db.session.commit()
    click.echo(f"password changed for {user.email}; {ended} session{'s' if ended != 1 else ''} ended")


def read_password() -> str:
    """A new password: prompted for (hidden, confirmed) at a terminal, else the first line of stdin."""
    if sys.stdin.isatty():
        return click.prompt("Password", hide_input=True, confirmation_prompt=True)
    line = sys.stdin.readline()
    if not line:
        raise click.ClickException("no password: type it at the prompt, or give it as the first line of standard input")
    return line.rstrip("\r\n")


@demo_cli.command("seed")
def seed_command() -> None:
    """Create the demo users, queue and configuration (safe to run again)."""
    created = seed()
    db.session.commit()
    for line in created:
        click.echo(line)
    click.echo("demo data ready")
