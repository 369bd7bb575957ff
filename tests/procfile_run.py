"""The Procfile's processes under honcho, for tests that run Pigeonhole as a deployment and kill parts of it.

Each process runs under a honcho of its own (`honcho start -f Procfile <name>`), as a process manager with
one unit per process would: killing one does not stop the others (one honcho stops all of its processes
when one dies), and a killed process is started again with the same command. Everything started here has
the environment's `PIGEONHOLE_INSTANCE`, so `kill_started_with` removes whatever a failed test left.

Also here: customer mail to push over SMTP (new mails, duplicates, replies to earlier ones) and a sender
that retries like a real one, and the signed-in agent that replies through the web.
"""
from __future__ import annotations

import os
import queue
import random
import re
import signal
import smtplib
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HONCHO = str(Path(sys.executable).parent / "honcho")


def _ppid(pid: str) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rsplit(b")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def children(pid: int) -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and _ppid(p) == pid]


class Procfile:
    """Starts the Procfile's processes by name, each under its own honcho, with `env`; logs in `logs`."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env | {"PATH": f"{Path(sys.executable).parent}:{env.get('PATH', os.environ['PATH'])}"}
        self.logs = logs
        logs.mkdir(parents=True, exist_ok=True)
        self.running: dict[str, subprocess.Popen] = {}
        self.restarts: list[str] = []

    def start(self, name: str, process: str | None = None, **env: str) -> None:
        """Start the Procfile's `process` (default: `name`) as `name`, with extra settings `env`."""
        process = process or name
        log = open(self.logs / f"{name}.log", "ab")
        self.running[name] = subprocess.Popen(
            [HONCHO, "start", "-f", str(ROOT / "Procfile"), "-d", str(ROOT), process],
            env=self.env | env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.running[name].extra_env = env  # type: ignore[attr-defined]
        self.running[name].process_name = process  # type: ignore[attr-defined]
        log.close()

    def pid(self, name: str, timeout: float = 30) -> int:
        """The pid of `name`'s own process (the Procfile's command, not honcho nor the shell)."""
        deadline = time.monotonic() + timeout
        while True:
            pending = children(self.running[name].pid)
            while pending:
                pid = pending.pop(0)
                argv = _cmdline(pid).split(b"\0")
                if Path(argv[0].decode()).name not in ("sh", "dash", "bash") and (
                        b"flask" in argv or any(b"gunicorn" in arg for arg in argv)):
                    return pid  # not the shell honcho runs the command with: the command itself
                pending += children(pid)
            assert time.monotonic() < deadline, f"{name} did not start: {self.log(name)[-2000:]}"
            time.sleep(0.05)

    def kill(self, name: str, *, with_work_horse: bool = False) -> int:
        """SIGKILL `name`'s process (with `with_work_horse`, its work horse at the same moment: a machine
        crash), let its honcho end, and start it again with the same command; the pid killed."""
        pid = self.pid(name)
        victims = [pid] + (children(pid) if with_work_horse else [])
        for victim in victims:
            os.kill(victim, signal.SIGKILL)
        old = self.running[name]
        old.wait(30)  # honcho sees its only process die and exits
        self.restarts.append(name)
        self.start(name, old.process_name, **old.extra_env)  # type: ignore[attr-defined]
        return pid

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """SIGTERM every honcho (it passes it on), then SIGKILL whatever of ours is left."""
        from tests.subprocess_env import kill_started_with

        for proc in self.running.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.running.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                pass
        kill_started_with(self.env)


# --- Customer mail -----------------------------------------------------------------------------------------

PHRASES = ("I was charged twice for my order, please refund the payment", "Where is my parcel? Tracking shows nothing",
           "I want to return the broken kettle", "I cannot log in to my account, password reset fails",
           "Can I change the delivery address of my order", "Thanks for the quick help last week")


@dataclass
class Mail:
    message_id: str  # without angle brackets
    raw: bytes
    kind: str  # new, reply (In-Reply-To an earlier one), duplicate (the same Message-ID again)


def customer_mails(n: int, rcpt: str, seed: int = 1, duplicates: float = 0.05, replies: float = 0.10) -> list[Mail]:
    """`n` mails to `rcpt`: mostly new conversations, some replies to earlier mails of the same customer
    (In-Reply-To, References, "Re:"), some sent again as they were (a sender's retry: same Message-ID)."""
    rng = random.Random(seed)
    out: list[Mail] = []
    originals: list[tuple[str, str, str, Mail]] = []
    for i in range(n):
        draw = rng.random()
        if originals and draw < duplicates:
            earlier = rng.choice(originals)[3]
            out.append(Mail(earlier.message_id, earlier.raw, "duplicate"))
            continue
        msg = EmailMessage()
        kind = "new"
        if originals and draw < duplicates + replies:
            parent_id, sender, subject, _ = rng.choice(originals)
            msg["In-Reply-To"] = msg["References"] = f"<{parent_id}>"
            subject = subject if subject.startswith("Re: ") else f"Re: {subject}"
            kind = "reply"
        else:
            sender = f"Customer {i} <customer{seed}-{i}@example.com>"
            phrase = rng.choice(PHRASES)
            subject = f"{phrase[:40]} #{i}"
        msg["From"] = sender
        msg["To"] = rcpt
        msg["Subject"] = subject
        message_id = make_msgid(f"s{seed}-{i}", domain="example.com")
        msg["Message-ID"] = message_id
        msg.set_content("Hello,\n\n" + rng.choice(PHRASES) + ".\n\nRegards,\nCustomer\n")
        mail = Mail(message_id.strip("<>"), msg.as_bytes(), kind)
        out.append(mail)
        originals.append((mail.message_id, sender, subject, mail))
    return out


@dataclass
class Sender:
    """Pushes mail over SMTP from `connections` threads spread over `ports` (MX hosts of equal preference):
    a refused or cut connection, or a 4xx, is retried on the next port, as a sending server would.
    `acknowledged` holds the Message-IDs answered 250 (once per 250); `retries` counts the retries."""

    ports: list[int]
    rcpt: str
    connections: int = 4
    rate: float | None = None  # mails per second over all connections; None: as fast as they go
    acknowledged: list[str] = field(default_factory=list)
    retries: int = 0
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._queue: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._started = 0.0

    def send(self, mails: list[Mail]) -> None:
        for mail in mails:
            self._queue.put(mail)
        if not self._threads:
            self._started = time.monotonic()
            self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                             for i in range(self.connections)]
            for thread in self._threads:
                thread.start()

    @property
    def sent(self) -> int:
        with self._lock:
            return len(self.acknowledged)

    def join(self, timeout: float = 600) -> None:
        for _ in self._threads:
            self._queue.put(None)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.1, deadline - time.monotonic()))
        assert not any(t.is_alive() for t in self._threads), "the senders did not finish"
        self._threads = []

    def _run(self, index: int) -> None:
        smtp, turn, count = None, index, 0
        while True:
            mail = self._queue.get()
            if mail is None:
                break
            if self.rate:
                delay = self._started + (index + count * self.connections) / self.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            count += 1
            deadline = time.monotonic() + 180
            while True:
                try:
                    if smtp is None:
                        smtp = smtplib.SMTP("127.0.0.1", self.ports[turn % len(self.ports)], timeout=60)
                    smtp.sendmail("customer@example.com", [self.rcpt], mail.raw)
                    with self._lock:
                        self.acknowledged.append(mail.message_id)
                    break
                except (OSError, smtplib.SMTPException) as exc:
                    with self._lock:
                        self.retries += 1
                        if len(self.errors) < 50:
                            self.errors.append(repr(exc))
                    try:
                        if smtp is not None:
                            smtp.close()
                    except OSError:
                        pass
                    smtp, turn = None, turn + 1
                    if time.monotonic() > deadline:
                        raise AssertionError(f"mail {mail.message_id} never accepted: {exc!r}")
                    time.sleep(0.2)
        if smtp is not None:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                pass


# --- An agent in the web workspace -------------------------------------------------------------------------

class Agent:
    """A signed-in agent talking HTTP to the web processes (a `requests` session with its cookies and the
    CSRF token the pages give): Reply on a conversation, write, Send."""

    def __init__(self, base: str, email: str, password: str) -> None:
        import requests

        self.base = base
        self.http = requests.Session()
        # A connection per request: a kept-alive one that gunicorn closes (idle for its keep-alive time) just as
        # a request leaves fails with no answer, and a POST is not retried (it would send a reply twice).
        self.http.headers["Connection"] = "close"
        page = self.http.get(f"{base}/login", timeout=60).text
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        answer = self.http.post(f"{base}/login", data={"email": email, "password": password, "csrf_token": token},
                                allow_redirects=False, timeout=60)
        assert answer.status_code == 302, answer.text[:2000]
        page = self.http.get(f"{base}/inbox/", timeout=60).text
        self.token = re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1)

    def reply(self, conversation_id: int, to: str, subject: str, body: str) -> None:
        """Reply (a draft), then Send; confirms when a newer customer message arrived meanwhile."""
        headers = {"X-CSRFToken": self.token}
        answer = self.http.post(f"{self.base}/inbox/c/{conversation_id}/compose", data={"kind": "reply"},
                                headers=headers, allow_redirects=False, timeout=60)
        assert answer.status_code == 302, (answer.status_code, answer.text[:2000])
        draft_id = int(re.search(r"draft=(\d+)", answer.headers["Location"]).group(1))
        form = {"to": to, "subject": subject, "body": f"<p>{body}</p>"}
        answer = self.http.post(f"{self.base}/inbox/drafts/{draft_id}/send", data=form, headers=headers,
                                allow_redirects=False, timeout=60)
        if answer.status_code == 422 and "A newer message is in this conversation" in answer.text:
            answer = self.http.post(f"{self.base}/inbox/drafts/{draft_id}/send", data=form | {"confirm_newer": "1"},
                                    headers=headers, allow_redirects=False, timeout=60)
        assert answer.status_code in (302, 303), (answer.status_code, answer.text[:2000])
