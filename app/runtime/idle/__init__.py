"""Push for custom-domain IMAP mailboxes: `flask mail idle` holds one IMAP IDLE connection per mailbox.

* `supervisor.py`  the process: follows the published configuration, leases, heartbeats
* `watcher.py`     one mailbox's connection and its fetch-on-EXISTS loop (a thread each)
* `leases.py`      Redis leases (one holder per mailbox across processes and machines),
                   heartbeats for cron, marks for servers without IDLE, and `idle_statuses()`
                   (who holds each mailbox and how its connection is) for Ops › Inbound mail

Fetching is the poller's (`app.runtime.poll.poll_address`): same lock, same watermark,
same ingest, so push and polling can run side by side and polling stays the safety net.
docs/idle.md describes the process, its settings and its measurements.
"""
from app.runtime.idle.leases import IdleStatus, idle_statuses
from app.runtime.idle.supervisor import IdleSupervisor, fingerprint, idle_candidates

__all__ = ["IdleStatus", "IdleSupervisor", "fingerprint", "idle_candidates", "idle_statuses"]
