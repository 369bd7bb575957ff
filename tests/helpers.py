"""Small helpers for tests that talk to the app through its test client."""
from __future__ import annotations

import re
import threading


def csrf_token(client, url: str = "/login") -> str:
    """The CSRF token a page gives this client (from its hidden field or hx-headers)."""
    html = client.get(url).get_data(as_text=True)
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or \
        re.search(r'"X-CSRFToken": "([^"]+)"', html)
    assert match, f"no CSRF token on {url}"
    return match.group(1)


class CountQueries:
    """Counts the SQL statements the app sends while the block runs: `with CountQueries(db) as q: ...; q.count`."""

    def __init__(self, db) -> None:
        self.engine = db.engine
        self.statements: list[str] = []

    def _record(self, conn, cursor, statement, parameters, context, executemany) -> None:
        self.statements.append(statement)

    @property
    def count(self) -> int:
        return len(self.statements)

    def __enter__(self) -> "CountQueries":
        from sqlalchemy import event

        event.listen(self.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *exc) -> None:
        from sqlalchemy import event

        event.remove(self.engine, "before_cursor_execute", self._record)


def twice_in_parallel(app, call) -> list:
    """Two processes at once (two cron ticks, say): `call()` in two threads, each with its own app context and
    database session, released together by a barrier; their results."""
    results, errors = [], []
    barrier = threading.Barrier(2)

    def run():
        try:
            with app.app_context():
                barrier.wait()
                results.append(call())
        except Exception as exc:  # pragma: no cover - shown by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return results
