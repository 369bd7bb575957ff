"""Command-line entry points (`flask --app wsgi ...`).

* `flask users create EMAIL --role admin`  prompts for a password, or reads stdin (`setup.py`)
* `flask users set-password EMAIL`          a new password (asked, or stdin); ends the user's sessions
* `flask demo seed`                         idempotent demo data (`setup.py`)
* `flask worker [QUEUE ...] [--burst]`      an RQ worker (JSON serializer, all queues by default) (`processes.py`)
* `flask cron [--once]`                     the scheduler loop: enqueues due periodic jobs (`processes.py`)
* `flask smtp-sink [--port 8025]`           development SMTP server writing to the outbox folder (`processes.py`)
* `flask ingress`, `flask mail ingest|poll` inbound mail (`mail.py`)
* `flask mail send-test --from ADDR --to RCPT`  a test email through the send queue; waits and prints its status
  (`send_test.py`)
* `flask dkim generate|records|verify DOMAIN`  DKIM keys and DNS checks, JSON out (`dkim.py`)
* `flask reports backfill`                  the reports' facts of every conversation (`reports.py`)
"""
from __future__ import annotations

from flask import Flask

from app.cli import dkim, mail, processes, reports, setup
from app.cli import send_test  # noqa: F401 - adds `flask mail send-test` to the mail group


def init_app(app: Flask) -> None:
    app.cli.add_command(setup.users_cli)
    app.cli.add_command(setup.demo_cli)
    app.cli.add_command(processes.worker_command)
    app.cli.add_command(processes.cron_command)
    app.cli.add_command(processes.smtp_sink_command)
    mail.init_app(app)
    dkim.init_app(app)
    reports.init_app(app)
