"""The DKIM re-check job: look up again the records of keys that are not verified yet (cron enqueues it)."""
from app.runtime.dkim import recheck_dkim_keys
from jobs import app_context


def recheck_dkim_keys_job() -> int:
    with app_context():
        return recheck_dkim_keys()
