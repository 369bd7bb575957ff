"""A real DNS server on loopback for tests (dnslib's server), serving records the test sets.

`LoopbackDNS()` listens on UDP and TCP of one free port of 127.0.0.1; `address` is what
`DNS_RESOLVER` takes. `txt(name, value)` publishes a TXT record (split into 255-byte
strings, as a DNS host would), `mx(name, host)` an MX record, `remove(name)` drops a
name's records, and `silence(name)` makes the server never answer for a name (a timeout).
Names it has no record of get NXDOMAIN.
"""
from __future__ import annotations

import socket
import threading

from dnslib import MX, QTYPE, RCODE, RR, TXT, DNSRecord
from dnslib.server import BaseResolver, DNSHandler, DNSLogger, DNSServer

from tests.servers import free_port


class _Handler(DNSHandler):
    def handle(self):
        data = self.request[0] if self.server.socket_type == socket.SOCK_DGRAM else None
        if data is not None:
            try:
                name = str(DNSRecord.parse(data).q.qname).rstrip(".").lower()
            except Exception:  # noqa: BLE001 - not a DNS packet: let dnslib answer with its error
                name = ""
            if name in self.server.resolver.silent:
                return  # no answer: the client times out
        super().handle()


class _Records(BaseResolver):
    def __init__(self) -> None:
        self.records: dict[str, list[tuple[int, object]]] = {}
        self.silent: set[str] = set()
        self.lock = threading.Lock()

    def resolve(self, request, handler):
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        with self.lock:
            found = list(self.records.get(name, []))
        if not found:
            reply.header.rcode = RCODE.NXDOMAIN
        for rtype, rdata in found:
            if request.q.qtype in (rtype, QTYPE.ANY):
                reply.add_answer(RR(request.q.qname, rtype, rdata=rdata, ttl=60))
        return reply


class LoopbackDNS:
    def __init__(self) -> None:
        self.resolver = _Records()
        self.port = free_port()
        logger = DNSLogger(log="-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False)
        self.servers = [DNSServer(self.resolver, address="127.0.0.1", port=self.port, tcp=tcp, logger=logger,
                                  handler=_Handler) for tcp in (False, True)]
        for server in self.servers:
            server.start_thread()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _add(self, name: str, rtype: int, rdata) -> None:
        with self.resolver.lock:
            self.resolver.records.setdefault(name.rstrip(".").lower(), []).append((rtype, rdata))

    def txt(self, name: str, value: str) -> None:
        data = value.encode()
        self._add(name, QTYPE.TXT, TXT([data[i:i + 255] for i in range(0, len(data), 255)]))

    def mx(self, name: str, host: str, preference: int = 10) -> None:
        self._add(name, QTYPE.MX, MX(host, preference))

    def remove(self, name: str) -> None:
        with self.resolver.lock:
            self.resolver.records.pop(name.rstrip(".").lower(), None)

    def silence(self, name: str) -> None:
        self.resolver.silent.add(name.rstrip(".").lower())

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
            server.server.server_close()  # dnslib's stop() leaves the socket open
