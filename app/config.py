"""Configuration, read once from the environment.

Every setting has a safe development default so `create_app()` works on a fresh
checkout; production sets `SECRET_KEY`, `DATABASE_URL` and `REDIS_URL`. The README
documents each variable in one table; keep the two in step.
"""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = Path(os.environ.get("PIGEONHOLE_INSTANCE", ROOT / "instance"))


def _bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def _database_url() -> str:
    url = os.environ.get("DATABASE_URL", f"sqlite:///{INSTANCE / 'pigeonhole.db'}")
    # Heroku-style URLs name the old driver; we ship psycopg 3.
    if url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url[len("postgres://"):]
    elif url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


class Config:
    """One class, read from the environment at `create_app()` time."""

    def __init__(self) -> None:
        self.INSTANCE_DIR = str(INSTANCE)
        # At start, take group/other permissions off what the instance folder, BLOB_DIR and OUTBOX_DIR hold,
        # with a warning in the log (app/private_files.py).
        self.INSTANCE_CHECK = _bool("INSTANCE_CHECK", True)
        self.SECRET_KEY = os.environ.get("SECRET_KEY") or self._dev_secret()
        self.SQLALCHEMY_DATABASE_URI = _database_url()
        # A server database may drop idle connections: test each one before use. A SQLite file cannot,
        # and the ping would be one more statement on every request and job.
        self.SQLALCHEMY_ENGINE_OPTIONS = {} if self.SQLALCHEMY_DATABASE_URI.startswith("sqlite") \
            else {"pool_pre_ping": True}
        self.SQLITE_MMAP_SIZE = _int("SQLITE_MMAP_SIZE", 1 << 30)  # memory-mapped reads (app/sqlite_reads.py)
        self.REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
        # Redis behind Sentinel (failover): "host:port,host:port"; the master is asked of them by its service
        # name, and REDIS_URL then gives only the database number and password (`app.queues.redis_connection`).
        self.REDIS_SENTINELS = os.environ.get("REDIS_SENTINELS", "")
        self.REDIS_SENTINEL_SERVICE = os.environ.get("REDIS_SENTINEL_SERVICE", "pigeonhole")
        self.PLATFORM_MAIL_DOMAIN = os.environ.get("PLATFORM_MAIL_DOMAIN", "mail.pigeonhole.test")
        self.MAIL_SECRET_KEY = os.environ.get("MAIL_SECRET_KEY", "")  # Fernet key(s); derived from SECRET_KEY if empty
        self.MAIL_TLS_CA_FILE = os.environ.get("MAIL_TLS_CA_FILE", "")  # extra CA bundle for mail servers
        self.BLOB_STORE = os.environ.get("BLOB_STORE", "dir")  # "dir" or "db"
        self.BLOB_DIR = os.environ.get("BLOB_DIR", str(INSTANCE / "blobs"))
        # Agents' uploads are refused while they would leave less free space than this under BLOB_DIR,
        # so the last space stays for inbound mail (0: no reserve; the `db` store is never checked).
        self.BLOB_UPLOAD_MIN_FREE_BYTES = _int("BLOB_UPLOAD_MIN_FREE_BYTES", 0)
        self.PORT = _int("PORT", 5000)
        self.CRON_TICK_SECONDS = float(os.environ.get("CRON_TICK_SECONDS", "5"))  # how often `flask cron` ticks
        self.DEMO_PASSWORD = os.environ.get("DEMO_PASSWORD", "demo")

        # Sessions and cookies.
        self.SESSION_COOKIE_HTTPONLY = True
        self.SESSION_COOKIE_SAMESITE = "Lax"
        self.SESSION_COOKIE_SECURE = _bool("SESSION_COOKIE_SECURE", False)
        self.REMEMBER_COOKIE_HTTPONLY = True
        self.REMEMBER_COOKIE_SAMESITE = "Lax"
        self.REMEMBER_COOKIE_SECURE = self.SESSION_COOKIE_SECURE
        self.WTF_CSRF_TIME_LIMIT = None  # the token lives as long as the session
        self.PASSWORD_HASH_METHOD = "scrypt"  # tests use a cheaper pbkdf2

        # Server-side sessions (app/auth/sessions.py): how long a sign-in lasts without and with "Keep me signed in".
        self.SESSION_HOURS = _int("SESSION_HOURS", 24)
        self.REMEMBER_DAYS = _int("REMEMBER_DAYS", 30)

        # Sign-in throttling (app/auth/throttle.py), counted before the password is checked: failures per
        # account from one client address, per client address, and a slow-down per account from anywhere.
        self.LOGIN_MAX_FAILURES_PER_ACCOUNT = _int("LOGIN_MAX_FAILURES_PER_ACCOUNT", 5)
        self.LOGIN_MAX_FAILURES_PER_ADDRESS = _int("LOGIN_MAX_FAILURES_PER_ADDRESS", 20)
        self.LOGIN_THROTTLE_SECONDS = _int("LOGIN_THROTTLE_SECONDS", 15 * 60)
        self.LOGIN_SLOW_DOWN_AFTER = _int("LOGIN_SLOW_DOWN_AFTER", 10)
        self.LOGIN_SLOW_DOWN_SECONDS = _int("LOGIN_SLOW_DOWN_SECONDS", 10)
        # Password hashes computed at once per process; a sign-in beyond waits this long, then is told to retry.
        self.PASSWORD_HASH_CONCURRENCY = _int("PASSWORD_HASH_CONCURRENCY", 2)
        self.PASSWORD_HASH_WAIT_SECONDS = float(os.environ.get("PASSWORD_HASH_WAIT_SECONDS", "0.5"))
        # New passwords (NIST SP 800-63B): at least this long, at most 1024; a one-time reset link lasts this long.
        self.PASSWORD_MIN_LENGTH = max(8, _int("PASSWORD_MIN_LENGTH", 12))
        self.PASSWORD_RESET_HOURS = _int("PASSWORD_RESET_HOURS", 24)

        # Health checks must answer fast even when Redis is gone.
        self.REDIS_HEALTH_TIMEOUT = float(os.environ.get("REDIS_HEALTH_TIMEOUT", "1.0"))
        # A worker heartbeats at least every WORKER_TTL_SECONDS - 15 s (idle) or half of it (busy); one whose
        # heartbeat is older is dead (killed) and no longer counted by /healthz and the Ops page.
        self.WORKER_TTL_SECONDS = max(2, int(os.environ.get("WORKER_TTL_SECONDS", "60")))
        # /metrics wants "Authorization: Bearer <METRICS_TOKEN>"; unset, it answers loopback clients only.
        self.METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
        # "json": one JSON object per log line (request, job, address and message ids as fields).
        self.LOG_FORMAT = os.environ.get("LOG_FORMAT", "text")

        # Experience flows: automatic mail cap, intent threshold, regex time limit.
        self.AUTO_REPLIES_PER_HOUR = _int("AUTO_REPLIES_PER_HOUR", 3)
        self.INTENT_MIN_CONFIDENCE = float(os.environ.get("INTENT_MIN_CONFIDENCE", "0.5"))
        self.FLOW_REGEX_TIMEOUT_MS = _int("FLOW_REGEX_TIMEOUT_MS", 50)
        # Agent workspace: composer limits, the inbox, presence.
        self.COMPOSER_MAX_ATTACHMENT_BYTES = _int("COMPOSER_MAX_ATTACHMENT_BYTES", 10 * 1024 * 1024)
        self.COMPOSER_MAX_ATTACHMENTS = _int("COMPOSER_MAX_ATTACHMENTS", 10)
        self.COMPOSER_MAX_TOTAL_BYTES = _int("COMPOSER_MAX_TOTAL_BYTES", 25 * 1024 * 1024)
        # Rich-text editor: the largest image an admin may upload into a header or footer.
        self.TEMPLATE_IMAGE_MAX_BYTES = _int("TEMPLATE_IMAGE_MAX_BYTES", 1024 * 1024)
        self.LOCK_REPLY_RECIPIENTS = _bool("LOCK_REPLY_RECIPIENTS", False)
        # Agents may Transfer a conversation to any queue (on), or only to queues they are a member of.
        self.TRANSFER_TO_ANY_QUEUE = _bool("TRANSFER_TO_ANY_QUEUE", True)
        self.INBOX_PAGE_SIZE = _int("INBOX_PAGE_SIZE", 50)
        self.INBOX_POLL_SECONDS = _int("INBOX_POLL_SECONDS", 10)
        self.PRESENCE_SECONDS = _int("PRESENCE_SECONDS", 30)
        # Live updates (app/inbox/live.py): a comment this often keeps each agent's event stream open through
        # proxies (and checks the sign-in); a stream ends after this many seconds and the browser opens a new one.
        self.LIVE_HEARTBEAT_SECONDS = float(os.environ.get("LIVE_HEARTBEAT_SECONDS", "15"))
        self.LIVE_MAX_AGE_SECONDS = float(os.environ.get("LIVE_MAX_AGE_SECONDS", "300"))

        # Behind a TLS-terminating proxy, trust its X-Forwarded-* headers (count of proxies).
        self.TRUSTED_PROXIES = _int("TRUSTED_PROXIES", 0)

        # Email channel setup: addresses per custom domain, and how long Test Connection waits.
        self.MAX_ADDRESSES_PER_CUSTOM_DOMAIN = _int("MAX_ADDRESSES_PER_CUSTOM_DOMAIN", 3)
        self.PROBE_TIMEOUT_SECONDS = float(os.environ.get("PROBE_TIMEOUT_SECONDS", "10"))
        # Mailbox servers on loopback, link-local or private addresses (app/mail/netguard.py): refused unless on
        # (a mail server on the local network; the demo's and the tests' servers on 127.0.0.1).
        self.MAIL_ALLOW_PRIVATE_HOSTS = _bool("MAIL_ALLOW_PRIVATE_HOSTS", False)
        # Signing in without encryption to a server on loopback (nothing crosses a network). Turn it off where
        # other users of the machine could listen on a loopback port.
        self.MAIL_PLAINTEXT_SIGN_IN_ON_LOOPBACK = _bool("MAIL_PLAINTEXT_SIGN_IN_ON_LOOPBACK", True)
        # Inbound mail (SMTP ingress, mailbox polling, ingest, threading).
        self.INGRESS_HOST = os.environ.get("INGRESS_HOST", "127.0.0.1")
        self.INGRESS_PORT = _int("INGRESS_PORT", 2525)
        self.INGRESS_HOSTNAME = os.environ.get("INGRESS_HOSTNAME", "")  # name in the SMTP greeting; FQDN if empty
        self.INGRESS_TLS_CERT = os.environ.get("INGRESS_TLS_CERT", "")  # PEM certificate: offer STARTTLS
        self.INGRESS_TLS_KEY = os.environ.get("INGRESS_TLS_KEY", "")
        self.INGRESS_MAX_RECIPIENTS = _int("INGRESS_MAX_RECIPIENTS", 100)
        # Ingress bounds (app/runtime/ingress_smtp.py): sessions at once, in total and per client address (421
        # beyond); seconds a session may send nothing; message data kept in memory before it is spooled to disk.
        self.INGRESS_MAX_SESSIONS = _int("INGRESS_MAX_SESSIONS", 200)
        self.INGRESS_MAX_SESSIONS_PER_IP = _int("INGRESS_MAX_SESSIONS_PER_IP", 20)
        self.INGRESS_IDLE_TIMEOUT_SECONDS = float(os.environ.get("INGRESS_IDLE_TIMEOUT_SECONDS", "60"))
        self.INGRESS_SPOOL_THRESHOLD_BYTES = _int("INGRESS_SPOOL_THRESHOLD_BYTES", 1024 * 1024)
        self.INGRESS_SPOOL_DIR = os.environ.get("INGRESS_SPOOL_DIR", str(INSTANCE / "spool"))
        self.INBOUND_MAX_MESSAGE_SIZE = _int("INBOUND_MAX_MESSAGE_SIZE", 25 * 1024 * 1024)
        self.INBOUND_MAX_ATTACHMENTS = _int("INBOUND_MAX_ATTACHMENTS", 100)
        self.THREAD_WINDOW_DAYS = _int("THREAD_WINDOW_DAYS", 14)
        # Service levels (app/runtime/sla.py): minutes before a due time that a conversation is "at risk"
        self.SLA_WARNING_MINUTES = _int("SLA_WARNING_MINUTES", 15)
        self.POLL_INTERVAL = _int("POLL_INTERVAL", 30)
        self.POLL_MAX_BACKOFF = _int("POLL_MAX_BACKOFF", 3600)
        self.POLL_LOCK_SECONDS = _int("POLL_LOCK_SECONDS", 300)
        # Ingest's per-address lock: a lease renewed while its worker lives (freed within it when the worker dies),
        # and how long another worker waits for it before going on unlocked (the dedupe constraint still holds).
        self.INGEST_LOCK_LEASE_SECONDS = float(os.environ.get("INGEST_LOCK_LEASE_SECONDS", "15"))
        self.INGEST_LOCK_WAIT_SECONDS = float(os.environ.get("INGEST_LOCK_WAIT_SECONDS", "120"))
        self.POLL_BATCH_SIZE = _int("POLL_BATCH_SIZE", 500)
        self.POLL_BATCH_BYTES = _int("POLL_BATCH_BYTES", 64 * 1024 * 1024)
        self.MAIL_TIMEOUT = float(os.environ.get("MAIL_TIMEOUT", "30"))
        # First connection to a mailbox: "publish" (mail since the address was published) or a number of days.
        self.MAILBOX_BACKFILL = os.environ.get("MAILBOX_BACKFILL", "publish")
        # What to do with customer mail once it is stored: "keep" (default), "seen" (IMAP only), "delete".
        self.MAILBOX_AFTER_FETCH = os.environ.get("MAILBOX_AFTER_FETCH", "keep")
        # A mailbox whose polls fail for this many minutes is shown to admins and mailed to them (once).
        self.MAILBOX_ALERT_MINUTES = float(os.environ.get("MAILBOX_ALERT_MINUTES", "15"))
        # The site's address as admins reach it (https://pigeonhole.example): links in mail to admins are absolute.
        self.PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "")
        self.INGEST_RETRY_SECONDS = _int("INGEST_RETRY_SECONDS", 60)
        # Cron queues again the flow step of a message stored this long ago whose flow never ran (its
        # job was lost), looking back FLOW_SWEEP_HOURS, at most every FLOW_SWEEP_SECONDS.
        self.FLOW_RETRY_SECONDS = _int("FLOW_RETRY_SECONDS", 60)
        self.FLOW_SWEEP_HOURS = _int("FLOW_SWEEP_HOURS", 24)
        self.FLOW_SWEEP_SECONDS = _int("FLOW_SWEEP_SECONDS", 30)
        # SQLite: cron has the search index's segments merged into one this often (app.inbox.search.merge_index).
        self.SEARCH_MERGE_SECONDS = _int("SEARCH_MERGE_SECONDS", 3600)
        # Push (`flask mail idle`, app/runtime/idle/): IMAP IDLE per published mailbox that offers it.
        # IDLE is re-issued this often (RFC 2177: servers may drop it after 30 minutes; capped at 29).
        self.IDLE_RENEW_SECONDS = min(_int("IDLE_RENEW_SECONDS", 25 * 60), 29 * 60)
        self.IDLE_REFRESH_SECONDS = float(os.environ.get("IDLE_REFRESH_SECONDS", "30"))  # re-read published mailboxes
        self.IDLE_LEASE_SECONDS = float(os.environ.get("IDLE_LEASE_SECONDS", "60"))  # a dead holder's mailboxes wait this
        self.IDLE_POLL_INTERVAL = _int("IDLE_POLL_INTERVAL", 600)  # cron's safety-net poll while IDLE is healthy
        self.IDLE_RETRY_SECONDS = float(os.environ.get("IDLE_RETRY_SECONDS", "2"))  # first reconnect delay, doubled
        self.IDLE_MAX_BACKOFF = float(os.environ.get("IDLE_MAX_BACKOFF", "300"))
        self.IDLE_RECHECK_SECONDS = _int("IDLE_RECHECK_SECONDS", 3600)  # asks a server without IDLE again after this
        self.IDLE_MAX_MAILBOXES = _int("IDLE_MAX_MAILBOXES", 1000)  # connections one `flask mail idle` holds
        # Fetches (and logins) one `flask mail idle` runs at once: bounds its memory, database connections and
        # the burst of TLS handshakes when it starts with hundreds of mailboxes.
        self.IDLE_FETCH_CONCURRENCY = _int("IDLE_FETCH_CONCURRENCY", 8)
        # Outbound mail: the platform relay, SMTP client limits, retries and the send lease.
        self.SMTP_RELAY_URL = os.environ.get("SMTP_RELAY_URL", "")  # smtp://user:pass@host:587?tls=starttls
        self.SMTP_HELO_NAME = os.environ.get("SMTP_HELO_NAME", "")  # EHLO name; PLATFORM_MAIL_DOMAIN if empty
        self.SMTP_TIMEOUT_SECONDS = float(os.environ.get("SMTP_TIMEOUT_SECONDS", "60"))
        self.SEND_LEASE_SECONDS = _int("SEND_LEASE_SECONDS", 600)
        self.SEND_MAX_ATTEMPTS = _int("SEND_MAX_ATTEMPTS", 10)
        self.SEND_RETRY_BASE_SECONDS = float(os.environ.get("SEND_RETRY_BASE_SECONDS", "60"))
        self.SEND_RETRY_MAX_SECONDS = float(os.environ.get("SEND_RETRY_MAX_SECONDS", "3600"))
        self.SEND_BATCH_SIZE = _int("SEND_BATCH_SIZE", 50)
        # A send job with nothing left to send keeps its connection this long for what the next Sends
        # bring (polling every 20 ms); `flask worker --burst` sets 0.
        self.SEND_LINGER_SECONDS = float(os.environ.get("SEND_LINGER_SECONDS", "1"))
        # Limits of one outgoing message: To + Cc + Bcc addresses, and the size of the rendered bytes
        # (attachments are base64 in it: a third bigger than the files).
        self.SEND_MAX_RECIPIENTS = _int("SEND_MAX_RECIPIENTS", 50)
        # Bounce suppression: this many final 4.x.x failures within the window suppress an address
        # (a 5.x.x failure suppresses at once); app.runtime.suppression.
        self.SOFT_BOUNCE_LIMIT = _int("SOFT_BOUNCE_LIMIT", 5)
        self.SOFT_BOUNCE_WINDOW_DAYS = _int("SOFT_BOUNCE_WINDOW_DAYS", 7)
        self.SEND_MAX_MESSAGE_BYTES = _int("SEND_MAX_MESSAGE_BYTES", 35 * 1024 * 1024)
        # "Send test email": how many test emails one admin may send per hour (not a mail cannon).
        self.SEND_TEST_LIMIT_PER_HOUR = _int("SEND_TEST_LIMIT_PER_HOUR", 10)
        # Deliverability (docs/dkim.md): DNS lookups of the DKIM/SPF/DMARC/MX checks, and what they expect.
        self.DNS_RESOLVER = os.environ.get("DNS_RESOLVER", "")  # host or host:port of a DNS server; empty: the system's
        self.DNS_TIMEOUT_SECONDS = float(os.environ.get("DNS_TIMEOUT_SECONDS", "5"))
        self.SPF_INCLUDE = os.environ.get("SPF_INCLUDE", "")  # the SPF term that authorises the relay: include:... / ip4:...
        # Polled mail: the Authentication-Results header is believed only from these authserv-ids (`*` wildcards).
        self.AUTH_RESULTS_TRUSTED_HOSTS = os.environ.get(
            "AUTH_RESULTS_TRUSTED_HOSTS", "mx.google.com,*.prod.outlook.com,spf.protection.outlook.com")
        self.MX_HOST = os.environ.get("MX_HOST", "")  # where the platform domain's MX must point; INGRESS_HOSTNAME if empty
        # A DKIM key whose check is Pending or Temporary Failure is checked again by cron this often.
        self.DKIM_RECHECK_SECONDS = _int("DKIM_RECHECK_SECONDS", 600)
        # OAuth 2.0 mailboxes (app/mail/oauth.py; docs/oauth.md tells how to register the app).
        for name in ("GOOGLE_CLIENT_ID", "GOOGLE_CLIENT_SECRET", "MICROSOFT_CLIENT_ID", "MICROSOFT_CLIENT_SECRET",
                     "MICROSOFT_APP_TENANT", "MICROSOFT_APP_CLIENT_ID", "MICROSOFT_APP_CLIENT_SECRET",
                     "GENERIC_AUTHORIZATION_URL", "GENERIC_TOKEN_URL", "GENERIC_INTROSPECTION_URL",
                     "GENERIC_CLIENT_ID", "GENERIC_CLIENT_SECRET", "GENERIC_SCOPE", "GENERIC_GRANT"):
            setattr(self, f"OAUTH_{name}", os.environ.get(f"OAUTH_{name}", ""))
        self.OAUTH_MICROSOFT_TENANT = os.environ.get("OAUTH_MICROSOFT_TENANT", "common")
        self.OAUTH_MICROSOFT_AUTHORITY = os.environ.get("OAUTH_MICROSOFT_AUTHORITY", "https://login.microsoftonline.com")
        # Where an app-only token (it opens every mailbox of the tenant) may be sent: host names
        # ending in one of these (Exchange Online's), besides private hosts when MAIL_ALLOW_PRIVATE_HOSTS.
        self.OAUTH_MICROSOFT_APP_HOSTS = os.environ.get("OAUTH_MICROSOFT_APP_HOSTS", ".office365.com .outlook.com").split()
        # Google's endpoints (the documented ones by default; tests and proxies point them elsewhere).
        self.OAUTH_GOOGLE_AUTHORIZATION_URL = os.environ.get("OAUTH_GOOGLE_AUTHORIZATION_URL",
                                                             "https://accounts.google.com/o/oauth2/v2/auth")
        self.OAUTH_GOOGLE_TOKEN_URL = os.environ.get("OAUTH_GOOGLE_TOKEN_URL", "https://oauth2.googleapis.com/token")
        self.OAUTH_GENERIC_NAME = os.environ.get("OAUTH_GENERIC_NAME", "")  # "Sign in with {name}"
        self.OAUTH_GENERIC_SASL = os.environ.get("OAUTH_GENERIC_SASL", "XOAUTH2")  # or OAUTHBEARER
        # Renew an access token this long before it expires, so no sign-in uses one about to lapse.
        self.OAUTH_REFRESH_MARGIN_SECONDS = _int("OAUTH_REFRESH_MARGIN_SECONDS", 300)
        self.OAUTH_TIMEOUT_SECONDS = float(os.environ.get("OAUTH_TIMEOUT_SECONDS", "20"))
        self.ORGANISATION_NAME = os.environ.get("ORGANISATION_NAME", "")  # ORG of the contact card
        self.OUTBOX_DIR = os.environ.get("OUTBOX_DIR", "")  # development: the SMTP sink's folder, shown at /ops/outbox

    @staticmethod
    def _dev_secret() -> str:
        """A per-checkout random key kept under instance/, never in the repository."""
        path = INSTANCE / "secret_key"
        try:
            return path.read_text().strip()
        except FileNotFoundError:
            import secrets

            path.parent.mkdir(parents=True, exist_ok=True)
            key = secrets.token_urlsafe(48)
            path.write_text(key)
            path.chmod(0o600)
            return key
