"""For the SSRF guard's tests: a network where no connection ever leaves
loopback, and small loopback HTTP servers that record what reached them.

The `net` fixture stubs the resolver (`socket.getaddrinfo`) and spies on
`socket.socket.connect`:
- names given with `net.resolve(name, *addresses)` resolve to those addresses;
  IP literals (decimal and octal IPv4 included) and `localhost` resolve as the
  system resolves them, numerically; every other name fails, as in DNS;
- every connect is recorded; one to a non-loopback address fails the test,
  unless `net.stand_in(ip, port, server)` routes it to a loopback server
  (a public host played by a local server, for hops the guard allows).

tests/conftest.py registers this module as a plugin.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

# A public address (is_global) that the tests' hosts resolve to; connections
# to it go to a loopback server through net.stand_in(), never out.
PUBLIC_IP = "93.184.215.14"


@dataclass
class Seen:
    path: str
    host: str


@dataclass
class LoopbackServer:
    """A threaded HTTP/1.1 server on 127.0.0.1 that answers every GET with
    `respond(handler)` and records each request (path and Host header)."""

    respond: Callable[[BaseHTTPRequestHandler], None]
    seen: list[Seen] = field(default_factory=list)
    bytes_sent: int = 0

    def __post_init__(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            owner = server

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server.seen.append(Seen(self.path, self.headers.get("Host", "")))
                server.respond(self)

        class Quiet(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address) -> None:
                # A client hanging up early is what several tests want.
                if not isinstance(sys.exc_info()[1], OSError):
                    super().handle_error(request, client_address)

        self.httpd = Quiet(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # --- answers ------------------------------------------------------------------

    @staticmethod
    def body(data: bytes, *, status: int = 200) -> Callable:
        def respond(h: BaseHTTPRequestHandler) -> None:
            h.send_response(status)
            h.send_header("Content-Type", "video/mp4")
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)

        return respond

    @staticmethod
    def redirect(location: str, *, status: int = 302) -> Callable:
        def respond(h: BaseHTTPRequestHandler) -> None:
            h.send_response(status)
            h.send_header("Location", location)
            h.send_header("Content-Length", "0")
            h.end_headers()

        return respond


@pytest.fixture
def serve():
    """serve(respond) starts a LoopbackServer; all are stopped after the test."""
    servers: list[LoopbackServer] = []

    def start(respond: Callable) -> LoopbackServer:
        server = LoopbackServer(respond)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


class Net:
    def __init__(self, real_getaddrinfo, real_connect) -> None:
        self._getaddrinfo = real_getaddrinfo
        self._connect = real_connect
        self.names: dict[str, list[list[str]]] = {}
        self.lookups: list[str] = []
        self.connects: list[tuple[str, int]] = []
        self.violations: list[tuple[str, int]] = []
        self.stand_ins: dict[tuple[str, int], int] = {}

    def resolve(self, name: str, *addresses: str, then: tuple[str, ...] = ()) -> None:
        """`name` resolves to `addresses`; to `then` from the second lookup on."""
        self.names[name.lower()] = [list(addresses)] + ([list(then)] if then else [])

    def stand_in(self, ip: str, port: int, server: LoopbackServer) -> None:
        self.stand_ins[(ip, port)] = server.port

    def getaddrinfo(self, host, port, family=0, type=0, proto=0, flags=0):
        name = host.decode() if isinstance(host, bytes) else str(host)
        self.lookups.append(name)
        answers = self.names.get(name.lower())
        if answers is None:
            if name.lower() != "localhost":
                flags |= socket.AI_NUMERICHOST  # never a DNS query
            return self._getaddrinfo(host, port, family, type, proto, flags)
        addresses = answers[0] if len(answers) == 1 or self.lookups.count(name) == 1 else answers[1]
        out = []
        for address in addresses:
            ip = ipaddress.ip_address(address)
            if ip.version == 6:
                out.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0)))
            else:
                out.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)))
        return out

    def connect(self, sock, address):
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return self._connect(sock, address)
        host, port = address[0], address[1]
        self.connects.append((host, port))
        if (host, port) in self.stand_ins:
            return self._connect(sock, ("127.0.0.1", self.stand_ins[(host, port)]))
        if not ipaddress.ip_address(host.split("%", 1)[0]).is_loopback:
            self.violations.append((host, port))
            raise AssertionError(f"a connection to {host}:{port} was attempted")
        return self._connect(sock, address)

    def connects_to(self, port: int) -> int:
        return sum(1 for _, p in self.connects if p == port)


@pytest.fixture
def net(monkeypatch):
    net = Net(socket.getaddrinfo, socket.socket.connect)
    monkeypatch.setattr(socket, "getaddrinfo", net.getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", lambda sock, address: net.connect(sock, address))
    yield net
    assert not net.violations, f"connections left loopback: {net.violations}"
