"""Migrations: one head, `flask db upgrade` builds the schema, and the models agree with it."""
from __future__ import annotations

import subprocess

from alembic.autogenerate import compare_metadata
from alembic.config import Config as AlembicConfig
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect

from tests.subprocess_env import ROOT, flask_cmd, flask_env


def test_single_alembic_head():
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    assert len(ScriptDirectory.from_config(cfg).get_heads()) == 1


def test_upgrade_builds_the_schema_on_an_empty_sqlite_file_and_matches_the_models(app, tmp_path):
    from app.extensions import db

    path = tmp_path / "fresh.db"
    env = flask_env(app, tmp_path)
    env["DATABASE_URL"] = f"sqlite:///{path}"
    run = subprocess.run(flask_cmd("db", "upgrade"), env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    engine = create_engine(f"sqlite:///{path}")
    try:
        # The SQLite search index (conversations_fts and its shadow tables) lives outside the models.
        tables = {t for t in inspect(engine).get_table_names() if not t.startswith("conversations_fts")}
        assert {t.name for t in db.metadata.sorted_tables} | {"alembic_version"} == tables
        with engine.connect() as conn:
            opts = {"compare_type": False,
                    "include_name": lambda name, kind, _: not (kind == "table" and name.startswith("conversations_fts"))}
            diff = compare_metadata(MigrationContext.configure(conn, opts=opts), db.metadata)
        assert diff == [], f"models and migrations disagree: {diff}"
    finally:
        engine.dispose()
