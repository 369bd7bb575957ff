"""`flask reports backfill`: the reports' facts of every conversation, rebuilt from its messages.

Run once after the `0036_facts` migration (conversations that existed before it have no facts), with
the SLA's judgement of each (`app.runtime.backfill`);
safe to run again (each row is recomputed, not added to).
"""
from __future__ import annotations

import click
from flask.cli import AppGroup

from app.runtime.backfill import backfill

reports_cli = AppGroup("reports", help="The reports' per-conversation facts.")


@reports_cli.command("backfill")
def backfill_command() -> None:
    """Rebuild the facts of every conversation from its messages."""
    click.echo(f"{backfill()} conversations")


def init_app(app) -> None:
    app.cli.add_command(reports_cli)
