"""Pigeonhole: the email channel of a contact center.

`create_app()` builds the Flask app: configuration from the environment,
extensions bound with `init_app`, blueprints imported here (not at module import),
security headers, logging, error pages and CLI commands. It does no I/O: no
migrations, no connections, no writes (the dev secret aside, see `Config`).
"""
from __future__ import annotations

from flask import Flask


def create_app(config: dict | None = None) -> Flask:
    from app.config import Config

    app = Flask(__name__, template_folder="../templates", static_folder="../static")
    app.config.from_object(Config())
    if config:
        app.config.update(config)

    from app import logs, security, sqlite_reads, web
    from app.extensions import csrf, db, htmx, login, mail, migrate

    logs.init_app(app)
    db.init_app(app)
    sqlite_reads.init_app(app)
    migrate.init_app(app, db, directory=str(_migrations_dir()), render_as_batch=True)
    csrf.init_app(app)
    htmx.init_app(app)
    mail.init_app(app)
    login.init_app(app)
    security.init_app(app)
    web.init_app(app)

    from app import models  # noqa: F401  (register every table)
    from app.auth.views import bp as auth_bp
    from app.channels.views import bp as channels_bp
    from app.flows.views import bp as flows_bp
    from app.inbox.views import bp as inbox_bp
    from app.ops.views import bp as ops_bp
    from app.publish.views import bp as publish_bp
    from app.responses.views import bp as responses_bp

    for bp in (auth_bp, inbox_bp, channels_bp, publish_bp, flows_bp, responses_bp, ops_bp):
        app.register_blueprint(bp)

    from app import cli

    cli.init_app(app)
    return app


def _migrations_dir():
    from pathlib import Path

    return Path(__file__).resolve().parent.parent / "migrations"
