"""The search index's merge (SQLite): its segments into one, a step at a time (cron enqueues it hourly)."""
from app.inbox.search import merge_index
from jobs import app_context


def merge_search_index() -> int:
    with app_context():
        return merge_index()
