"""SQLite connections read through a memory map (app/sqlite_reads.py)."""
from __future__ import annotations

from sqlalchemy import text


def _mmap_size(config: dict) -> int:
    from app import create_app
    from app.extensions import db

    app = create_app(config)
    with app.app_context():
        try:
            with db.engine.connect() as conn:
                return conn.execute(text("PRAGMA mmap_size")).scalar()
        finally:
            db.engine.dispose()


def test_every_sqlite_connection_maps_the_file_unless_turned_off(tmp_path):
    url = f"sqlite:///{tmp_path / 'mapped.db'}"
    assert _mmap_size({"SQLALCHEMY_DATABASE_URI": url, "SQLITE_MMAP_SIZE": 64 << 20}) == 64 << 20
    assert _mmap_size({"SQLALCHEMY_DATABASE_URI": url, "SQLITE_MMAP_SIZE": 0}) == 0
