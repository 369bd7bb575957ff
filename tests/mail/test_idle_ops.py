"""Ops › Inbound mail shows each IMAP mailbox's push state, read from what `flask mail idle` keeps in Redis.

A real IdleSupervisor (what `flask mail idle` runs) in this process, against a real Dovecot
with IDLE and one without; the page is read as an admin through the test client.
"""
from __future__ import annotations

import html
import os
import re
import socket
import threading

from app.runtime.idle import IdleSupervisor, idle_statuses
from app.queues import redis_connection
from tests.mail.conftest import make_address, message
from tests.mail.test_idle import dovecot_without_idle, healthy, holder, recent, stored_subjects, wait_until  # noqa: F401
from tests.mail.test_mailboxes import append, imap_address


def idle_cell(client, address: str) -> str:
    page = client.get("/ops/inbound/").get_data(as_text=True)
    row = re.search(r"<tr>\s*<td>" + re.escape(address) + r"</td>.*?</tr>", page, re.S)
    assert row, page
    cell = re.search(r'<td class="idle-state">(.*?)</td>', row.group(0), re.S).group(1)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", cell.replace("<br>", " "))).split())


def test_inbound_mail_shows_who_holds_each_idle_mailbox_since_when_its_last_exists_and_re_issue(
        recent, db, dovecot, dovecot_without_idle, mailbox_user, client, login_as):
    recent.config.update(IDLE_REFRESH_SECONDS=0.2, IDLE_LEASE_SECONDS=1.5, IDLE_RENEW_SECONDS=1)
    login_as("admin")
    login, password = mailbox_user
    pushed = imap_address(dovecot, login, password)
    # Its certificate is another CA's: it is reached on loopback without TLS.
    plain = make_address("plain@acme.test", "custom", usage="inbound", username="plain@acme.test",
                         password="pw-plain", incoming_protocol="imap", incoming_host="127.0.0.1",
                         incoming_port=dovecot_without_idle.ports["imap"], incoming_security="none")
    assert idle_cell(client, login) == "not held by any flask mail idle: polling"

    supervisor = IdleSupervisor(recent)
    stop = threading.Event()
    thread = threading.Thread(target=supervisor.run, args=(stop,))
    thread.start()
    try:
        wait_until(lambda: healthy(pushed.id), what="a healthy IDLE connection")
        append(dovecot, login, password, [message(to=login, subject="Pushed")])
        wait_until(lambda: stored_subjects(db, pushed.id) == ["Pushed"], timeout=5, what="the pushed message")
        watcher = supervisor.watchers[pushed.id]
        wait_until(lambda: watcher.last_reissue is not None, timeout=5, what="IDLE re-issued")
        status = wait_until(lambda: (s := idle_statuses(redis_connection(), [pushed.id])[pushed.id]).last_reissue
                            and s, timeout=5, what="the re-issue in Redis")
        assert status.mode == "idle" and status.holder == supervisor.owner == holder(pushed.id)
        assert (status.host, status.pid) == (socket.gethostname(), os.getpid())
        assert status.since is not None and status.last_exists is not None and status.last_exists >= status.since

        cell = idle_cell(client, login)
        assert cell.startswith(f"IDLE since {status.since.strftime('%Y-%m-%d %H:%M:%S')}, held by "
                               f"{socket.gethostname()} (process {status.pid})"), cell
        assert f"lease holder {supervisor.owner}" in cell
        assert f"last new mail (EXISTS) {status.last_exists.strftime('%Y-%m-%d %H:%M:%S')}" in cell
        assert "IDLE re-issued" in cell
        wait_until(lambda: idle_cell(client, "plain@acme.test") == "polling only: the server offers no IDLE",
                   what="the no-IDLE server shown as polling only")
    finally:
        stop.set()
        thread.join(15)
    assert idle_cell(client, login) == "not held by any flask mail idle: polling"  # leases given back
    assert plain.id not in supervisor.watchers
