"""In-memory HTTP mode: a proxy listener's context on a Clock, fake clients and fake servers.

A :class:`Harness` builds the runtime and :class:`HTTPContext` of a config's first frontend;
``client()`` opens a client connection on a :class:`Transport` (a StringTransport that
delivers ``loseConnection`` as ``connectionLost``), and every connect the proxy makes
becomes a :class:`FakeServer` the test reads requests from and answers, or fails.
"""

from __future__ import annotations

import textwrap
from typing import Any, Callable, List, Optional, Tuple

import h11
from twisted.internet.address import IPv4Address, UNIXAddress
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from udsproxy.backend import build_backends
from udsproxy.config.parser import parse_text
from udsproxy.http.frontend import ClientConnection, HTTPContext
from udsproxy.http.upstream import Pools
from udsproxy.net.connect import connect_error
from udsproxy.runtime import Runtime
from udsproxy.sweeper import IdleSweeper

TCP_PEER = IPv4Address("TCP", "10.0.0.1", 4242)
UNIX_PEER = UNIXAddress(None)


class Transport(StringTransport):
    """A StringTransport whose close reaches the protocol, as a real one's does."""

    def __init__(self, peer: Any = None) -> None:
        super().__init__(peerAddress=peer or TCP_PEER)
        self.protocol: Any = None
        self.aborted = False
        self.write_closed = False

    def write(self, data: Any) -> None:
        # As our real transports (net.connect._WriteNow): a view of a read buffer is
        # taken, and what is kept of it is a copy.
        super().write(data if type(data) is bytes else bytes(data))

    def loseWriteConnection(self) -> None:
        self.write_closed = True

    def abortConnection(self) -> None:
        self.aborted = True
        self.loseConnection()

    def loseConnection(self) -> None:
        if not self.disconnecting:
            super().loseConnection()
            if self.producer is not None:
                self.unregisterProducer()
            if self.protocol is not None:
                self.protocol.connectionLost(Failure(ConnectionDone()))

    def fileno(self) -> int:
        return -1


class FakeServer:
    """The server end of one proxy->server connection: parses requests, sends answers."""

    def __init__(self, name: str, protocol: Any) -> None:
        self.name = name
        self.protocol = protocol
        self.transport = Transport(UNIX_PEER)
        self.transport.protocol = protocol
        self.h11 = h11.Connection(h11.SERVER)
        protocol.makeConnection(self.transport)
        self.events: List[Any] = []

    def read(self) -> List[Any]:
        """Events parsed from what the proxy wrote since the last call."""
        data = self.transport.value()
        self.transport.clear()
        if data:
            self.h11.receive_data(data)
        out = []
        while True:
            event = self.h11.next_event()
            if event in (h11.NEED_DATA, h11.PAUSED):
                break
            out.append(event)
            if isinstance(event, h11.ConnectionClosed):
                break
        self.events.extend(out)
        return out

    def requests(self) -> List[h11.Request]:
        return [e for e in self.events if isinstance(e, h11.Request)]

    def feed(self, data: bytes) -> None:
        self.protocol.dataReceived(data)

    def respond(
        self,
        status: int = 200,
        body: bytes = b"ok",
        headers: List[Tuple[str, str]] = (),  # type: ignore[assignment]
        end: bool = True,
    ) -> None:
        """Answer the request read last (read() first)."""
        hdrs = list(headers)
        if not any(k.lower() in ("content-length", "transfer-encoding") for k, _ in hdrs):
            hdrs.append(("Content-Length", str(len(body))))
        hdrs.append(("X-Backend", self.name))
        out = self.h11.send(h11.Response(status_code=status, headers=hdrs))
        reqs = self.requests()
        if reqs and reqs[-1].method == b"HEAD":
            body = b""  # the length is announced, the body never sent
        if body:
            out += self.h11.send(h11.Data(data=body))
        if end:
            out += self.h11.send(h11.EndOfMessage())
        self.feed(out)
        if end and self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
            self.h11.start_next_cycle()

    def close(self) -> None:
        """The server closes its end."""
        self.transport.loseConnection()


class FakeConnector:
    """Stands in for net.connect. Each connect makes a FakeServer, unless told to fail."""

    def __init__(self) -> None:
        self.servers: List[FakeServer] = []
        self.failures: List[Tuple[str, int]] = []  # (server path, errno) to fail once each
        self.pending: Optional[Deferred] = None
        self.hold = False  # True: connects stay in progress until release()
        self.calls: List[str] = []

    def __call__(
        self, reactor: Any, address: Any, factory: Callable[[], Any], timeout: Optional[int]
    ) -> Deferred:
        self.calls.append(address.path)
        for i, (path, err) in enumerate(self.failures):
            if path == address.path:
                del self.failures[i]
                return fail(connect_error(address, err))
        if self.hold:
            d: Deferred = Deferred()
            self._held = (d, address, factory)
            self.pending = d
            return d
        return succeed(self._make(address, factory))

    def _make(self, address: Any, factory: Callable[[], Any]) -> Any:
        protocol = factory()
        server = FakeServer(address.path.rsplit("/", 1)[-1].split(".")[0], protocol)
        self.servers.append(server)
        return protocol

    def release(self) -> None:
        d, address, factory = self._held
        self.hold = False
        self.pending = None
        d.callback(self._make(address, factory))

    def server(self, name: str) -> List[FakeServer]:
        return [s for s in self.servers if s.name == name]


class FakeClient:
    """A client connection: writes requests, parses what the proxy answers."""

    def __init__(self, harness: Harness, peer: Any = None) -> None:
        self.protocol = ClientConnection(harness.ctx)
        self.transport = Transport(peer)
        self.transport.protocol = self.protocol
        self.protocol.makeConnection(self.transport)
        self.h11 = h11.Connection(h11.CLIENT)

    def send(self, data: bytes) -> None:
        self.protocol.dataReceived(data)

    def request(
        self,
        method: str = "GET",
        target: str = "/",
        headers: List[Tuple[str, str]] = (),  # type: ignore[assignment]
        body: bytes = b"",
    ) -> None:
        """Send a whole request through the client's own h11 (keep-alive)."""
        if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
            self.h11.start_next_cycle()
        hdrs = [("Host", "app")] + list(headers)
        if body and not any(k.lower() == "transfer-encoding" for k, _ in hdrs):
            hdrs.append(("Content-Length", str(len(body))))
        out = self.h11.send(h11.Request(method=method, target=target, headers=hdrs))
        if body:
            out += self.h11.send(h11.Data(data=body))
        out += self.h11.send(h11.EndOfMessage())
        self.send(out)

    def raw(self) -> bytes:
        data = self.transport.value()
        self.transport.clear()
        return data

    def responses(self) -> List[Tuple[int, dict, bytes]]:
        """Complete responses received since the last call: (status, headers, body)."""
        data = self.raw()
        if data:
            self.h11.receive_data(data)
        out = []
        status, hdrs, body = 0, {}, b""
        while True:
            event = self.h11.next_event()
            if event in (h11.NEED_DATA, h11.PAUSED):
                break
            if isinstance(event, h11.Response):
                status = event.status_code
                hdrs = {k.decode(): v.decode() for k, v in event.headers}
                body = b""
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                out.append((status, hdrs, body))
                if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
                    self.h11.start_next_cycle()
                else:
                    break
            elif isinstance(event, h11.ConnectionClosed):
                break
        return out

    def close(self) -> None:
        self.transport.loseConnection()


class LogSinkStub:
    """Collects session lines and events."""

    enabled = True

    def __init__(self) -> None:
        self.lines: List[str] = []
        self.levels: List[str] = []  # each line's
        self.events: List[Tuple[str, str]] = []

    def session(self, line: str, level: str = "info") -> None:
        self.lines.append(line)
        self.levels.append(level)

    def event(self, text: str, level: str) -> bool:
        self.events.append((level, text))
        return False


# One frontend sending to one server: the config of many dialogue tests.
ONE_SERVER = """
frontend fe
    bind 127.0.0.1:8080
    default_backend be
backend be
    server a /s/a.sock
"""

BASE = """
global
    log stdout format raw local0
defaults
    mode http
    log global
    option httplog
    timeout connect 1s
    timeout client 10s
    timeout server 10s
"""


class Harness:
    """The first frontend of ``config`` (BASE is prepended) on a Clock."""

    def __init__(self, config: str, base: str = BASE) -> None:
        cfg = parse_text(textwrap.dedent(base) + textwrap.dedent(config), "test.cfg")
        self.config = cfg
        self.clock = Clock()
        self.runtime = Runtime(cfg, self.clock)
        self.backends = build_backends(self.runtime)
        self.sweeper = IdleSweeper(self.clock, 100)
        self.pools = Pools(self.sweeper)
        self.connector = FakeConnector()
        self.sink = LogSinkStub()
        fe = cfg.frontends[0]
        be_cfg = cfg.backend_for(fe)
        self.backend = self.backends[be_cfg.name] if be_cfg else None
        self.ctx = HTTPContext(
            frontend=fe,
            frontend_counters=self.runtime.frontends[fe.name],
            backend=self.backend,
            global_=cfg.global_,
            reactor=self.clock,
            sweeper=self.sweeper,
            pools=self.pools,
            sink=self.sink,  # type: ignore[arg-type]
            listener_id=1,
            connector=self.connector,
            backends=self.backends,
        )

    def client(self, peer: Any = None) -> FakeClient:
        return FakeClient(self, peer)

    def advance(self, seconds: float, step: float = 0.05) -> None:
        """Move the clock in small steps so the sweeper ticks on the way."""
        left = seconds
        while left > 1e-9:
            delta = min(step, left)
            self.clock.advance(delta)
            left -= delta

    def server_load(self) -> List[Tuple[str, int, int]]:
        """(name, scur, qcur) per server, plus the backend's queue length."""
        assert self.backend is not None
        return [(s.name, s.scur, s.qcur) for s in self.backend.servers]

    def quiet(self) -> bool:
        """No slot held, nobody queued, no client left, no timer pending."""
        assert self.backend is not None
        return (
            all(s.scur == 0 for s in self.backend.servers)
            and len(self.backend.queue) == 0
            and not self.ctx.clients
            and not [c for c in self.clock.getDelayedCalls() if c.active()]
        )


def answer_all(h: Harness) -> None:
    """Every fake server answers each complete request, with its name as the body."""
    progress = True
    while progress:
        progress = False
        for server in list(h.connector.servers):
            server.read()
            done = (h11.DONE, h11.MUST_CLOSE)
            if server.h11.their_state in done and server.h11.our_state is h11.SEND_RESPONSE:
                server.respond(body=server.name.encode())
                progress = True
