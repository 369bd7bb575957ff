"""`flask smtp-sink`: the demo's SMTP server, run as the command scripts/run starts."""
from __future__ import annotations

import json
import signal
import smtplib
import subprocess

from app.mail.sink import list_outbox, read_outbox
from tests.servers import free_port, wait_for_port
from tests.subprocess_env import flask_cmd, flask_env


def test_smtp_sink_command_writes_messages_to_the_outbox(app, tmp_path):
    port, outbox = free_port(), tmp_path / "outbox"
    proc = subprocess.Popen(flask_cmd("smtp-sink", "--port", str(port), "--dir", str(outbox)),
                            env=flask_env(app, tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_port(port, timeout=60)
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            refused = smtp.sendmail("a@mail.pigeonhole.test", ["carol@example.com", "boss@acme.test"],
                                    "From: a@mail.pigeonhole.test\r\nTo: carol@example.com\r\n"
                                    "Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n\r\nhello\r\n")
        assert refused == {}
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert f"SMTP sink on 127.0.0.1:{port}" in out
    [entry] = list_outbox(outbox)
    assert entry.subject == "Grüße" and entry.hidden_recipients == ["boss@acme.test"]
    envelope = json.loads((outbox / f"{entry.name}.json").read_text())
    assert envelope["rcpt_tos"] == ["carol@example.com", "boss@acme.test"]
    assert read_outbox(outbox, entry.name).text == "hello\n"
    assert not list(outbox.glob(".tmp-*"))


def test_list_outbox_newest_first_and_limit(tmp_path):
    from datetime import datetime, timedelta, timezone

    from app.mail.sink import write_message

    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for i in range(3):
        write_message(tmp_path, "a@x", ["b@y"], f"Subject: m{i}\r\n\r\nx\r\n".encode(), start + timedelta(seconds=i))
    assert [e.subject for e in list_outbox(tmp_path)] == ["m2", "m1", "m0"]
    assert [e.subject for e in list_outbox(tmp_path, limit=1)] == ["m2"]
    assert list_outbox(tmp_path / "missing") == []
