"""Pigeonhole: the email channel of a contact center.

`create_app()` builds the Flask app: configuration from the environment,
extensions bound with `init_app`, blueprints imported here (not at module import),
security headers, logging, error pages and CLI commands. It does no I/O: no
migrations, no connections, no writes (the dev secret aside, see `Config`), except
that it makes the process's files private: umask 077, and the group/other bits taken
off what the instance folder already holds (`app.private_files`, once per process).
"""
from __future__ import annotations

from pathlib import Path

from flask import Flask

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def create_app(config: dict | None = None) -> Flask:
    # The imports live here, not at the top: Python runs this file before any `app.*` module, so a
    # top-level import of the areas would make every `import app.mail.parse` (a worker's job, a
    # benchmark, a unit test) load the whole web app, and the areas' views import this package.
    from app import cli, logs, private_files, security, sqlite_reads, web
    from app import models  # noqa: F401 - importing it declares every table
    from app.auth import passwords, sessions
    from app.auth.admin_views import bp as users_bp
    from app.auth.views import bp as auth_bp
    from app.channels.views import bp as channels_bp
    from app.channels import dkim_views  # noqa: F401 - adds the DKIM Configuration pages to channels_bp
    from app.channels import send_test_views  # noqa: F401 - adds Send test email to channels_bp
    from app.channels import forwarding_views  # noqa: F401 - adds Forwarding (platform addresses) to channels_bp
    from app.config import Config
    from app.extensions import csrf, db, htmx, login, mail, migrate
    from app.flows.views import bp as flows_bp
    from app.flows import timer_views  # noqa: F401 - adds Queue › Timers (timed rules, alerts) to flows_bp
    from app.inbox.pages import bp as inbox_bp
    from app.inbox import composer_views, views as inbox_views  # noqa: F401 - add their routes to inbox_bp
    from app.ops import metrics as ops_metrics
    from app.inbox import organize_views  # noqa: F401 - tags, priority, snooze, merge, split, trail export
    from app.inbox import contact_views  # noqa: F401 - contacts, note Edit/Delete, @mentions, notifications
    from app.ops.views import bp as ops_bp
    from app.reports.views import bp as reports_bp
    from app.publish.views import bp as publish_bp
    from app.responses.views import bp as responses_bp

    private_files.restrict_umask()  # before Config(): the dev secret, the SQLite file and logs are created 0600
    app = Flask(__name__, template_folder="../templates", static_folder="../static")
    app.config.from_object(Config())
    if config:
        app.config.update(config)

    logs.init_app(app)
    if app.config["INSTANCE_CHECK"]:
        private_files.secure_instance(app.config)
    db.init_app(app)
    sqlite_reads.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS), render_as_batch=True)
    csrf.init_app(app)
    htmx.init_app(app)
    mail.init_app(app)
    login.init_app(app)
    security.init_app(app)
    passwords.init_app(app)
    sessions.init_app(app)
    web.init_app(app)
    for bp in (auth_bp, inbox_bp, channels_bp, publish_bp, flows_bp, responses_bp, ops_bp, users_bp,
               reports_bp):
        app.register_blueprint(bp)
    ops_metrics.init_app(app)  # /metrics, and the duration of every request
    cli.init_app(app)
    return app
