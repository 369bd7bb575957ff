"""Small inbound defects: dedupe of header-less files, `flask mail ingest` on non-regular files and without Redis.

The CLI cases run `flask mail ingest` in a subprocess with a timeout, as ops run it: a
regression that blocks (a FIFO) fails the test instead of hanging CI, and stderr is the
real one (log records included), not the test runner's capture.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import func, select

from app.mail.parse import parse_message
from app.models.inbound import InboundRaw
from app.models.inbox import Message
from app.queues import get_queue
from app.runtime.ingest import dedupe_key
from tests.mail.conftest import make_address, message
from tests.subprocess_env import flask_cmd, flask_env

DATA = Path(__file__).resolve().parent.parent / "data" / "mail"
ADDRESS = "support@mail.pigeonhole.test"


def cli_ingest(app, tmp_path, *files, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(flask_cmd("mail", "ingest", "--address", ADDRESS, *map(str, files)),
                          env={**flask_env(app, tmp_path), **(env or {})}, capture_output=True, text=True,
                          timeout=120)


def json_lines(stdout: str) -> list[dict]:
    """Every line of stdout is one JSON object (nothing else is allowed there)."""
    return [json.loads(line) for line in stdout.splitlines()]


# --- dedupe of messages without headers --------------------------------------------------------

def test_two_files_without_headers_are_two_messages(app, db):
    make_address(ADDRESS)
    runner = app.test_cli_runner()
    out = runner.invoke(args=["mail", "ingest", "--address", ADDRESS, str(DATA / "noheaders-a.eml"),
                              str(DATA / "noheaders-b.eml")])
    statuses = [json.loads(line)["status"] for line in out.output.splitlines()]
    # Both are kept (no sender: stored with an error, for an admin), neither is "a duplicate" of the other.
    assert statuses == ["stored_with_error", "stored_with_error"]
    assert db.session.scalar(select(func.count()).select_from(Message)) == 2


def test_a_message_without_headers_dedupes_on_its_whole_bytes_whatever_the_line_endings():
    lf = (DATA / "noheaders-a.eml").read_bytes()
    crlf, cr = lf.replace(b"\n", b"\r\n"), lf.replace(b"\n", b"\r")
    keys = {dedupe_key(parse_message(raw), raw) for raw in (lf, crlf, cr, lf.rstrip(b"\n"))}
    assert len(keys) == 1
    other = (DATA / "noheaders-b.eml").read_bytes()
    assert dedupe_key(parse_message(other), other) not in keys
    # Only the first paragraph differs: the old key (body after the first blank line) could not tell them apart.
    assert lf.partition(b"\n\n")[2] == other.partition(b"\n\n")[2]


def test_messages_with_headers_keep_the_key_already_in_the_database():
    """Keys are stored: changing them for mail with headers would store re-ingested old mail twice."""
    raw = message(msgid=None, date=datetime(2026, 4, 1, 12, 0, tzinfo=timezone.utc), subject="Order 17")
    assert dedupe_key(parse_message(raw), raw) == \
        "sha:f15f624bb7cc1e96fa08d2b4f0fb23b4bff9474e63a558ef095d4091db3992e5"
    headers_only_x = b"X-Note: internal\r\n\r\nsame body\r\n"
    assert dedupe_key(parse_message(headers_only_x), headers_only_x) == \
        dedupe_key(parse_message(b"X-Other: 2\n\nsame body\n"), b"X-Other: 2\n\nsame body\n")
    assert dedupe_key(parse_message(raw.replace(b"Subject:", b"X-Relay: 1\r\nSubject:")), raw) == \
        dedupe_key(parse_message(raw), raw)
    with_id = message(msgid="<kept@example.com>")
    assert dedupe_key(parse_message(with_id), with_id) == "mid:<kept@example.com>"


# --- flask mail ingest: non-regular files --------------------------------------------------------

def test_ingest_refuses_a_fifo_and_a_directory_and_goes_on(app, db, tmp_path):
    make_address(ADDRESS)
    first, last = tmp_path / "first.eml", tmp_path / "last.eml"
    first.write_bytes(message(subject="Before the FIFO"))
    last.write_bytes(message(subject="After the FIFO"))
    fifo = tmp_path / "pipe.eml"
    os.mkfifo(fifo)
    folder = tmp_path / "folder"
    folder.mkdir()
    run = cli_ingest(app, tmp_path, first, fifo, folder, tmp_path / "missing.eml", last)
    assert run.returncode == 1, run.stderr
    out = json_lines(run.stdout)
    assert [(o["file"], o["status"]) for o in out] == [
        (str(first), "created"), (str(fifo), "error"), (str(folder), "error"), (str(tmp_path / "missing.eml"), "error"),
        (str(last), "created")]
    assert "not a regular file (a FIFO)" in out[1]["error"] and "directory" in out[2]["error"]
    assert "no such file" in out[3]["error"]
    assert out[1]["conversation_id"] is None and out[1]["message_id"] is None
    assert f"{fifo}: not a regular file" in run.stderr and "Traceback" not in run.stderr
    assert db.session.scalar(select(func.count()).select_from(InboundRaw)) == 2


# --- flask mail ingest without Redis ---------------------------------------------------------------

def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_ingest_without_redis_warns_once_and_keeps_stdout_clean(app, db, tmp_path):
    make_address(ADDRESS)
    files = []
    for n in range(6):
        path = tmp_path / f"m{n}.eml"
        path.write_bytes(message(subject=f"Question {n}", sender=f"Customer {n} <c{n}@example.com>"))
        files.append(path)
    started = datetime.now(timezone.utc)
    run = cli_ingest(app, tmp_path, *files, env={"REDIS_URL": f"redis://127.0.0.1:{closed_port()}/0"})
    assert run.returncode == 0, run.stderr
    out = json_lines(run.stdout)
    assert [o["status"] for o in out] == ["created"] * 6
    assert run.stderr.count("Redis is unavailable") == 1, run.stderr
    assert "flow step is not queued" in run.stderr and "flask mail requeue-flows --since" in run.stderr
    assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr

    # Redis is back: the command the warning names queues the six flow steps, once.
    since = run.stderr.split("--since ")[1].split()[0]
    assert datetime.fromisoformat(since) <= started
    queued = app.test_cli_runner().invoke(args=["mail", "requeue-flows", "--since", since])
    assert queued.exit_code == 0, queued.output
    ids = sorted(db.session.scalars(select(Message.id)))
    assert sorted(get_queue("flows").job_ids) == sorted(f"flow-message-{i}" for i in ids)
    assert "6 flow steps queued" in queued.output
    again = app.test_cli_runner().invoke(args=["mail", "requeue-flows", "--since", since])
    assert "0 flow steps queued" in again.output and get_queue("flows").count == 6


def test_requeue_flows_leaves_older_mail_and_mail_that_never_runs_a_flow(app, db, tmp_path):
    make_address(ADDRESS)
    runner = app.test_cli_runner()
    for raw in (message(subject="Help"), message(subject="Out of office", Auto_Submitted="auto-replied")):
        path = tmp_path / "m.eml"
        path.write_bytes(raw)
        runner.invoke(args=["mail", "ingest", "--address", ADDRESS, str(path)])
    get_queue("flows").empty()
    future = (datetime.now(timezone.utc) + timedelta(minutes=1)).isoformat()
    assert "0 flow steps queued" in runner.invoke(args=["mail", "requeue-flows", "--since", future]).output
    past = (datetime.now(timezone.utc) - timedelta(minutes=5)).isoformat()
    done = runner.invoke(args=["mail", "requeue-flows", "--since", past, "--address", ADDRESS])
    assert "1 flow step queued" in done.output, done.output
    help_id = db.session.scalar(select(Message.id).where(Message.subject == "Help"))
    assert get_queue("flows").job_ids == [f"flow-message-{help_id}"]
    refused = runner.invoke(args=["mail", "requeue-flows", "--since", "yesterday"])
    assert refused.exit_code != 0 and "--since" in refused.output
