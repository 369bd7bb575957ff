"""The ingress's SMTP session (aiosmtpd's `SMTP`, bounded): session caps, idle timeout, spooled DATA.

aiosmtpd as it comes holds every session until its 300 s timeout and keeps a
message's DATA in memory until the final dot, so unfinished messages and idle
connections cost the ingress memory without limit. `IngressSMTP` bounds them:

* **Session caps**: at most `INGRESS_MAX_SESSIONS` sessions at once, and at most
  `INGRESS_MAX_SESSIONS_PER_IP` from one client address. A connection beyond
  either is answered `421 4.7.0 Too many connections ...` instead of the greeting
  and closed; the sending server retries later, as with any 4xx.
* **Idle timeout**: a session that sends nothing for `INGRESS_IDLE_TIMEOUT_SECONDS`
  is closed. During DATA the clock restarts whenever bytes arrive, so a large
  message on a slow link is not cut off while it is still moving.
* **Spooled DATA**: a message's data is kept in memory only up to
  `INGRESS_SPOOL_THRESHOLD_BYTES`; past that it goes on to an anonymous temporary
  file (0600, in `INGRESS_SPOOL_DIR`, itself 0700; the file has no name, so a
  killed ingress leaves nothing behind). The size limit is counted as before:
  past `data_size_limit` nothing more is kept and the message gets `552`.

A message that finishes is read back and handed to the handler exactly as
aiosmtpd would (`envelope.original_content`), so accepting it is unchanged.
"""
from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import IO

from aiosmtpd.smtp import MISSING, SMTP, _DataState, syntax

log = logging.getLogger(__name__)

TOO_MANY = "421 4.7.0 Too many connections{}; try again later"
#: During DATA the idle clock restarts at most this often (not once per line).
_DATA_CLOCK_SECONDS = 0.5
_LOG_EVERY_SECONDS = 10.0


class SessionCounter:
    """Open sessions, in total and per client address (used only from the server's event loop thread)."""

    def __init__(self, max_sessions: int, max_per_ip: int) -> None:
        self.max_sessions = max_sessions
        self.max_per_ip = max_per_ip
        self.total = 0
        self.per_ip: Counter[str] = Counter()
        self._refused = 0  # refused since the last log line (a flood is logged every few seconds, not per connection)
        self._logged = float("-inf")

    def admit(self, ip: str) -> str | None:
        """Count a new session in and return None, or return why it is refused (then it is not counted)."""
        if self.max_sessions and self.total >= self.max_sessions:
            return self._refuse(ip, "")
        if self.max_per_ip and self.per_ip[ip] >= self.max_per_ip:
            return self._refuse(ip, " from your address")
        self.total += 1
        self.per_ip[ip] += 1
        return None

    def _refuse(self, ip: str, reason: str) -> str:
        self._refused += 1
        now = time.monotonic()
        if now - self._logged >= _LOG_EVERY_SECONDS:
            log.warning("refused %d connection(s) (last from %s): %d sessions open, %d from that address",
                        self._refused, ip, self.total, self.per_ip[ip])
            self._refused, self._logged = 0, now
        return reason

    def release(self, ip: str) -> None:
        self.total -= 1
        self.per_ip[ip] -= 1
        if self.per_ip[ip] <= 0:
            del self.per_ip[ip]


def spool_file(spool_dir: str, threshold: int) -> IO[bytes]:
    """Where one message's data goes: memory up to `threshold` bytes, then an unnamed 0600 file in `spool_dir`
    (`ensure_spool_dir` made it when the server started)."""
    if threshold <= 0:  # SpooledTemporaryFile(max_size=0) would never roll over
        return tempfile.TemporaryFile(dir=spool_dir)
    return tempfile.SpooledTemporaryFile(max_size=threshold, dir=spool_dir)


class IngressSMTP(SMTP):
    """aiosmtpd's SMTP session with the caps, the idle timeout and the spooled DATA described above."""

    # RFC 5321 says 1,000 octets per line; real mail (and many forwarders) send far longer ones.
    line_length_limit = 1 << 20

    def __init__(self, handler, *, sessions: SessionCounter, spool_dir: str, spool_threshold: int, **kwargs) -> None:
        super().__init__(handler, **kwargs)
        self.sessions = sessions
        self.spool_dir = spool_dir
        self.spool_threshold = spool_threshold
        self._counted_ip: str | None = None  # set while this session is counted in `sessions`
        self._refusal: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._original_transport is None and self._counted_ip is None and self._refusal is None:
            peer = transport.get_extra_info("peername")
            ip = peer[0] if peer else "unknown"
            self._refusal = self.sessions.admit(ip)
            if self._refusal is None:
                self._counted_ip = ip
        super().connection_made(transport)  # after STARTTLS this is called again: counted once

    def connection_lost(self, error: Exception | None) -> None:
        if self._counted_ip is not None:
            self.sessions.release(self._counted_ip)
            self._counted_ip = None
        super().connection_lost(error)

    async def _handle_client(self) -> None:
        if self._refusal is not None:
            await self.push(TOO_MANY.format(self._refusal))
            assert self.transport is not None
            self.transport.close()
            return
        await super()._handle_client()

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        """aiosmtpd's DATA (same answers, same size and line checks), with the data spooled instead of a list."""
        if await self.check_helo_needed():
            return
        if await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        with spool_file(self.spool_dir, self.spool_threshold) as spool:
            state = await self._receive(spool)
            if state == _DataState.TOO_LONG:
                await self.push("500 Line too long (see RFC5321 4.5.3.1.6)")
            elif state == _DataState.TOO_MUCH:
                await self.push("552 Error: Too much mail data")
            if state != _DataState.NOMINAL:
                self._set_post_data_state()
                return
            spool.seek(0)
            content = spool.read()  # a finished message is handed on whole, as aiosmtpd does
        self.envelope.content = self.envelope.original_content = content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push("250 OK" if status is MISSING else status)

    async def _receive(self, spool: IO[bytes]) -> _DataState:
        """Read DATA up to the lone dot into `spool` (dot-unstuffed); the state says whether it is all there."""
        num_bytes, limit, state = 0, self.data_size_limit, _DataState.NOMINAL
        fragments: list[bytes] = []  # the pieces of the current line (more than one only for an overlong line)
        clock = time.monotonic()
        while self.transport is not None:
            try:
                line = await self._reader.readuntil(b"\r\n")
            except asyncio.CancelledError:
                log.info("connection lost during DATA")
                self._writer.close()
                raise
            except asyncio.LimitOverrunError as error:  # a line longer than the reader's buffer
                if state == _DataState.NOMINAL:
                    state = _DataState.TOO_LONG
                line = await self._reader.read(error.consumed)
            now = time.monotonic()
            if now - clock > _DATA_CLOCK_SECONDS:  # bytes arrived: the session is not idle
                self._reset_timeout()
                clock = now
            if not fragments and line == b".\r\n":
                break
            num_bytes += len(line)
            if state == _DataState.NOMINAL and limit and num_bytes > limit:
                state = _DataState.TOO_MUCH
            fragments.append(line if state == _DataState.NOMINAL else b"")  # refused: only where lines end counts
            if not line.endswith(b"\r\n"):
                continue
            whole = b"".join(fragments)
            fragments.clear()
            if state == _DataState.NOMINAL and len(whole) > self.line_length_limit:
                state = _DataState.TOO_LONG
            if state != _DataState.NOMINAL:
                _discard(spool)
                continue
            spool.write(whole[1:] if whole.startswith(b".") else whole)  # RFC 5321 4.5.2 transparency
        return state


def _discard(spool: IO[bytes]) -> None:
    """Drop what a refused message's spool holds (it will be answered with an error, not stored)."""
    if spool.tell():
        spool.seek(0)
        spool.truncate()


def ensure_spool_dir(spool_dir: str) -> None:
    """The spool folder exists and only this user can enter it."""
    Path(spool_dir).mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(spool_dir, 0o700)
