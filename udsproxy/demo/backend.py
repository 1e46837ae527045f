"""The demo/test application server: a small HTTP/1.1 (h11) and raw TCP backend on Twisted.

Used in-process by the demo (``make_backend_service``) and as a separate process by the
integration tests (``python -m udsproxy.demo.backend --socket PATH --name b0``).

HTTP routes (every response carries ``X-Backend: <name>``, ``X-Connection-Id`` and
``X-Connection-Request``, the 1-based index of the request on its connection):

* ``/``                 200 ``hello from <name>\\n``
* ``/large?bytes=N``    N bytes of ``large_body(N)``, streamed with back-pressure
* ``/echo``             the request body back, with ``X-Body-Sha256`` and ``X-Request-Headers``
* ``/upload``           JSON ``{"bytes": n, "sha256": hex}`` of the body (not buffered)
* ``/headers``          JSON of the raw request line and headers
* ``/slow?ms=N``        answers after N ms
* ``/close``            answers with ``Connection: close``, then closes
* ``/status?code=N``    answers with status N (200..599)
* ``/respond?h=Name:Value&...`` answers 200 with those header fields, in order (URL-encoded)
* ``/chunked?n=K&ms=M`` a chunked response of K chunks, M ms apart
* ``/die``              closes without answering (``?rst=1``: aborts with a reset)
* ``/partial``          a head with ``Content-Length: 1000``, 10 bytes, then a close

Raw modes: ``tcp-echo`` echoes bytes (half-close aware), ``tcp-name`` writes ``<name>\\n``
first, then echoes.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import socket
import stat
import struct
import sys
from typing import Any, Callable, Iterator, List, Optional, Sequence, Tuple, Union
from urllib.parse import parse_qs, urlsplit

import h11
from twisted.application import service
from twisted.internet import error as ierror
from twisted.internet import interfaces
from twisted.internet.base import DelayedCall
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.protocol import Factory, Protocol
from twisted.python.failure import Failure
from zope.interface import implementer

from udsproxy.config.model import ABNS, ABNSZ, IPV4, IPV6, UNIX, Address
from udsproxy.demo import websocket as ws

MODES = ("http", "tcp-echo", "tcp-name")

# A 61-byte (prime) printable pattern: a misplaced chunk shows up in a diff, not only in a hash.
_PATTERN = b"udsproxy demo backend deterministic payload 0123456789abcdef\n"
_CHUNK = 64 * 1024
_BLOCK = _PATTERN * (_CHUNK // len(_PATTERN) + 2)

# Pause reading a pipelining client once this much unparsed input waits behind a response.
_MAX_BUFFERED_INPUT = 1024 * 1024

_connection_ids = itertools.count(1)

_REASONS = {
    200: b"OK",
    201: b"Created",
    204: b"No Content",
    301: b"Moved Permanently",
    302: b"Found",
    304: b"Not Modified",
    400: b"Bad Request",
    403: b"Forbidden",
    404: b"Not Found",
    408: b"Request Timeout",
    413: b"Payload Too Large",
    429: b"Too Many Requests",
    500: b"Internal Server Error",
    502: b"Bad Gateway",
    503: b"Service Unavailable",
    504: b"Gateway Timeout",
}


def large_body(n: int, offset: int = 0) -> bytes:
    """The ``n`` bytes that ``/large`` sends starting at ``offset`` (tests compare with it)."""
    out = []
    while n > 0:
        take = min(n, _CHUNK)
        out.append(_slice(offset, take))
        offset += take
        n -= take
    return b"".join(out)


def _slice(offset: int, n: int) -> bytes:
    """At most ``_CHUNK`` bytes of the endless pattern, starting at ``offset``."""
    start = offset % len(_PATTERN)
    return _BLOCK[start : start + n]


def parse_address(text: str) -> Address:
    """Parse ``/path``, ``unix@/path``, ``abns@name``, ``abnsz@name``, ``[ipv4@]host:port``."""
    prefix, sep, rest = text.partition("@")
    if not sep:
        prefix, rest = ("unix", text) if text.startswith("/") else ("ipv4", text)
    prefix = prefix.lower()
    if prefix == "unix":
        return Address(UNIX, path=rest)
    if prefix in (ABNS, ABNSZ):
        if not rest:
            raise ValueError(f"empty abstract socket name in {text!r}")
        return Address(prefix, path=rest)
    if prefix in ("ipv4", "ipv6", "tcp"):
        host, colon, port = rest.rpartition(":")
        if not colon or not port.isdigit():
            raise ValueError(f"expected host:port in {text!r}")
        host = host.strip("[]")
        family = IPV6 if prefix == "ipv6" or ":" in host else IPV4
        return Address(family, host=host, port=int(port))
    raise ValueError(f"unknown address family {prefix!r} in {text!r}")


def _unix_bind_path(address: Address) -> Union[str, bytes]:
    """What ``listenUNIX`` binds: the file path, or the NUL-led abstract name."""
    sockaddr = address.sockaddr()
    assert isinstance(sockaddr, (str, bytes))
    return sockaddr


def _remove_stale_socket(path: str) -> None:
    """Unlink a leftover socket file nobody listens on; refuse to replace anything else."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise ierror.CannotListenError(None, path, "exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(path)
    except OSError:
        os.unlink(path)  # refused: a stale file from a dead process
        return
    finally:
        probe.close()
    raise ierror.CannotListenError(None, path, "another process is listening on it")


def _default_reactor() -> Any:
    """The global reactor, imported late so importing this module never installs one."""
    from twisted.internet import reactor

    return reactor


def _transport(proto: Protocol) -> Any:
    """The connected transport, untyped: zope interfaces give mypy no usable method types."""
    assert proto.transport is not None
    return proto.transport


def _raw_headers(request: h11.Request) -> List[List[str]]:
    """The request headers as received: original name case, order and repeats."""
    return [[n.decode("latin-1"), v.decode("latin-1")] for n, v in request.headers.raw_items()]


# ----------------------------------------------------------------------------- HTTP


class _LargeBody:
    """Streams ``large_body`` while the connection's write buffer has room."""

    def __init__(self, proto: BackendHTTP, total: int) -> None:
        self._proto = proto
        self._sent = 0
        self._total = total

    def pump(self) -> None:
        """Write chunks until the transport pauses us or the body is complete."""
        proto = self._proto
        # write() calls proto.pauseProducing() synchronously once the buffer passes
        # bufferSize, so this loop never queues more than about one buffer plus one chunk.
        while not proto.write_paused and not proto.closing and self._sent < self._total:
            n = min(_CHUNK, self._total - self._sent)
            proto.send(h11.Data(data=_slice(self._sent, n)))
            self._sent += n
        if self._sent >= self._total and proto.pump == self.pump:
            proto.pump = None
            proto.send(h11.EndOfMessage())
            proto.finish_response()


@implementer(interfaces.IHalfCloseableProtocol, interfaces.IPushProducer)
class BackendHTTP(Protocol):
    """One HTTP/1.1 server connection: keep-alive, in-order pipelining, chunked bodies.

    The protocol is its transport's streaming producer: while the write buffer is full it
    neither reads nor answers, so a client that does not read cannot make it buffer
    without bound (large bodies and long pipelines alike).
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.conn_id = next(_connection_ids)
        self.conn = h11.Connection(h11.SERVER)
        self.request: Optional[h11.Request] = None
        self.request_count = 0
        self.body: List[bytes] = []
        self.body_len = 0
        self.body_hash = hashlib.sha256()
        self.responding = False
        self.closing = False
        self.lost = False
        self.write_paused = False
        self.read_eof = False
        self.pump: Optional[Callable[[], None]] = None  # continues a body the buffer stopped
        self._processing = False
        self._reading_paused = False
        self._timers: List[DelayedCall] = []
        self.ws: Optional[ws.FrameParser] = None  # set once /ws switched to WebSocket

    # -- transport events

    def connectionMade(self) -> None:
        self.tr().registerProducer(self, True)

    # IPushProducer: the transport reports on its write buffer.

    def pauseProducing(self) -> None:
        self.write_paused = True
        self._update_reading()

    def resumeProducing(self) -> None:
        self.write_paused = False
        self._update_reading()
        if self.pump is not None:
            self.pump()
        else:
            self.process()

    def stopProducing(self) -> None:
        self.write_paused = True

    def dataReceived(self, data: bytes) -> None:
        if self.ws is not None:
            self.ws_received(data)
            return
        try:
            self.conn.receive_data(data)
        except RuntimeError:
            return  # data after we decided to close; nothing can use it
        self.process()

    def readConnectionLost(self) -> None:
        # Reading past EOF would report it again: never resume reading after this.
        self.read_eof = True
        if self.ws is not None:
            self.close()
            return
        # The client half-closed: still answer what it sent, then close (h11 turns the EOF
        # into ConnectionClosed after the last complete request).
        try:
            self.conn.receive_data(b"")
        except RuntimeError:
            pass
        self.process()

    def writeConnectionLost(self) -> None:
        self.abort()

    def connectionLost(self, reason: Optional[Failure] = None) -> None:
        self.lost = True
        self.pump = None
        for timer in self._timers:
            if timer.active():
                timer.cancel()
        self._timers.clear()

    # -- request parsing

    def process(self) -> None:
        """Handle every complete event h11 has, stopping while a response is in flight."""
        if self._processing or self.closing or self.lost:
            return
        self._processing = True
        try:
            while not (self.responding or self.write_paused or self.closing or self.lost):
                try:
                    event = self.conn.next_event()
                except h11.RemoteProtocolError as exc:
                    self._protocol_error(exc)
                    return
                if event is h11.NEED_DATA or event is h11.PAUSED:
                    break
                if isinstance(event, h11.Request):
                    self._start_request(event)
                elif isinstance(event, h11.Data):
                    self.body_len += len(event.data)
                    self.body_hash.update(event.data)
                    if self._keeps_body():
                        self.body.append(event.data)
                elif isinstance(event, h11.EndOfMessage):
                    self.responding = True
                    self.dispatch()
                elif isinstance(event, h11.ConnectionClosed):
                    self.close()
                    return
            self._update_reading()
        finally:
            self._processing = False

    def _update_reading(self) -> None:
        """Read only while the write buffer has room and the unparsed input is small."""
        if self.transport is None or self.lost or self.read_eof:
            return
        backlog = len(self.conn.trailing_data[0]) > _MAX_BUFFERED_INPUT
        pause = self.write_paused or (self.responding and backlog)
        if pause and not self._reading_paused:
            self._reading_paused = True
            self.tr().pauseProducing()
        elif not pause and self._reading_paused:
            self._reading_paused = False
            self.tr().resumeProducing()

    def _start_request(self, request: h11.Request) -> None:
        self.request = request
        self.request_count += 1
        self.body = []
        self.body_len = 0
        self.body_hash = hashlib.sha256()
        if self.conn.they_are_waiting_for_100_continue:
            self.send(h11.InformationalResponse(status_code=100, headers=[], reason=b"Continue"))

    def _keeps_body(self) -> bool:
        return self.request is not None and self._path() == "/echo"

    def _protocol_error(self, exc: h11.RemoteProtocolError) -> None:
        if self.conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            status = exc.error_status_hint
            body = f"bad request: {exc}\n".encode()
            try:
                self.send(
                    h11.Response(
                        status_code=status,
                        headers=self._headers(
                            [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))],
                            close=True,
                        ),
                        reason=_REASONS.get(status, b""),
                    )
                )
                self.send(h11.Data(data=body))
                self.send(h11.EndOfMessage())
            except h11.LocalProtocolError:
                pass
        self.close()

    # -- responses

    def _path(self) -> str:
        assert self.request is not None
        return urlsplit(self.request.target.decode("latin-1")).path

    def _query(self) -> dict[str, str]:
        assert self.request is not None
        query = urlsplit(self.request.target.decode("latin-1")).query
        return {k: v[-1] for k, v in parse_qs(query).items()}

    def _int_arg(self, key: str, default: int) -> int:
        try:
            return int(self._query().get(key, default))
        except ValueError:
            return default

    def _headers(
        self, extra: Sequence[Tuple[str, str]] = (), close: bool = False
    ) -> List[Tuple[str, str]]:
        headers = [
            ("X-Backend", self.name),
            ("X-Connection-Id", str(self.conn_id)),
            ("X-Connection-Request", str(self.request_count)),
            ("Server", "udsproxy-demo-backend"),
        ]
        headers.extend(extra)
        if close:
            headers.append(("Connection", "close"))
        return headers

    def tr(self) -> Any:
        """The transport (connected; see ``_transport``)."""
        return _transport(self)

    def send(self, event: h11.Event) -> None:
        """Serialize one h11 event to the transport (nothing once the connection is gone)."""
        if self.lost or self.transport is None:
            return
        data = self.conn.send(event)
        if data:
            self.tr().write(data)

    def _body_allowed(self, status: int) -> bool:
        assert self.request is not None
        return self.request.method != b"HEAD" and status not in (204, 304)

    def respond(
        self,
        status: int,
        body: bytes,
        extra: Sequence[Tuple[str, str]] = (),
        content_type: str = "text/plain",
        close: bool = False,
    ) -> None:
        """Send a whole response with a Content-Length and finish the request."""
        headers = [("Content-Type", content_type)] if status not in (204, 304) else []
        if status != 204:
            headers.append(("Content-Length", str(len(body))))
        headers.extend(extra)
        self.send(
            h11.Response(
                status_code=status,
                headers=self._headers(headers, close),
                reason=_REASONS.get(status, b""),
            )
        )
        if body and self._body_allowed(status):
            self.send(h11.Data(data=body))
        self.send(h11.EndOfMessage())
        self.finish_response()

    def finish_response(self) -> None:
        """The response is fully written: close, or get ready for the next pipelined request."""
        if self.lost or self.closing:
            return
        self.responding = False
        self.request = None
        self.body = []
        if self.conn.our_state is h11.MUST_CLOSE or self.conn.their_state is h11.CLOSED:
            self.close()
            return
        try:
            self.conn.start_next_cycle()
        except h11.LocalProtocolError:
            self.close()
            return
        self._update_reading()
        self.process()

    def close(self) -> None:
        """Close after flushing what is already written."""
        self.closing = True
        self.pump = None
        if self.transport is not None and not self.lost:
            # A registered (possibly paused) producer would keep the transport open forever.
            self.tr().unregisterProducer()
            self.tr().loseConnection()

    def abort(self) -> None:
        """Close at once, with a reset."""
        self.closing = True
        self.pump = None
        if self.transport is not None and not self.lost:
            self.tr().abortConnection()

    def _later(self, seconds: float, fn: Callable[[], None]) -> None:
        self._timers = [t for t in self._timers if t.active()]
        self._timers.append(_default_reactor().callLater(seconds, fn))

    def dispatch(self) -> None:
        """Answer the complete request in ``self.request``."""
        assert self.request is not None
        path = self._path()
        handler = _ROUTES.get(path)
        if handler is None:
            self.respond(404, f"no route {path}\n".encode())
        else:
            handler(self)

    def route_ws(self) -> None:
        """WebSocket echo: 101, a greeting frame naming this backend, then every frame back."""
        assert self.request is not None
        fields = {k.lower(): v for k, v in self.request.headers}
        key = fields.get(b"sec-websocket-key")
        if fields.get(b"upgrade", b"").lower() != b"websocket" or key is None:
            self.respond(426, b"a WebSocket handshake is expected\n", [("Upgrade", "websocket")])
            return
        self.send(
            h11.InformationalResponse(
                status_code=101,
                headers=[
                    ("Upgrade", "websocket"),
                    ("Connection", "Upgrade"),
                    ("Sec-WebSocket-Accept", ws.accept_key(key).decode()),
                ],
                reason=b"Switching Protocols",
            )
        )
        self.ws = ws.FrameParser()
        self.tr().write(ws.encode_frame(ws.TEXT, f"hello from {self.name}".encode()))
        early = self.conn.trailing_data[0]
        if early:
            self.ws_received(early)

    def ws_received(self, data: bytes) -> None:
        assert self.ws is not None
        try:
            frames = self.ws.feed(data)
        except ws.FrameError as exc:
            payload = struct.pack("!H", exc.code) + str(exc).encode()[:100]
            self.tr().write(ws.encode_frame(ws.CLOSE, payload))
            self.close()
            return
        for fin, opcode, payload in frames:
            if opcode == ws.PING:
                self.tr().write(ws.encode_frame(ws.PONG, payload))
            elif opcode == ws.CLOSE:
                self.tr().write(ws.encode_frame(ws.CLOSE, payload[:2]))
                self.close()
                return
            elif opcode != ws.PONG:
                self.tr().write(ws.encode_frame(opcode, payload, fin=fin))

    def route_root(self) -> None:
        self.respond(200, f"hello from {self.name}\n".encode())

    def route_large(self) -> None:
        total = max(0, self._int_arg("bytes", 1024 * 1024))
        self.send(
            h11.Response(
                status_code=200,
                headers=self._headers(
                    [("Content-Type", "application/octet-stream"), ("Content-Length", str(total))]
                ),
                reason=b"OK",
            )
        )
        if total == 0 or not self._body_allowed(200):
            self.send(h11.EndOfMessage())
            self.finish_response()
            return
        # The pump finishes the response itself, once the last chunk is queued;
        # resumeProducing() calls it again whenever the write buffer drains.
        self.pump = _LargeBody(self, total).pump
        self.pump()

    def route_echo(self) -> None:
        assert self.request is not None
        body = b"".join(self.body)
        raw = _raw_headers(self.request)
        content_type = "application/octet-stream"
        for name, value in self.request.headers:
            if name == b"content-type":
                content_type = value.decode("latin-1")
        self.respond(
            200,
            body,
            [
                ("X-Body-Sha256", hashlib.sha256(body).hexdigest()),
                ("X-Request-Headers", json.dumps(raw, separators=(",", ":"))),
            ],
            content_type=content_type,
        )

    def route_upload(self) -> None:
        doc = {"bytes": self.body_len, "sha256": self.body_hash.hexdigest()}
        self.respond(200, json.dumps(doc).encode() + b"\n", content_type="application/json")

    def route_headers(self) -> None:
        assert self.request is not None
        doc = {
            "method": self.request.method.decode("latin-1"),
            "target": self.request.target.decode("latin-1"),
            "http_version": self.request.http_version.decode("latin-1"),
            "headers": _raw_headers(self.request),
        }
        self.respond(200, json.dumps(doc).encode() + b"\n", content_type="application/json")

    def route_slow(self) -> None:
        ms = max(0, self._int_arg("ms", 1000))
        self._later(ms / 1000.0, lambda: self.respond(200, f"slow {ms} ms\n".encode()))

    def route_close(self) -> None:
        self.respond(200, b"closing\n", close=True)

    def route_status(self) -> None:
        code = self._int_arg("code", 200)
        if not 200 <= code <= 599:
            self.respond(400, f"status must be 200..599, not {code}\n".encode())
            return
        self.respond(code, f"status {code}\n".encode())

    def route_respond(self) -> None:
        assert self.request is not None
        query = urlsplit(self.request.target.decode("latin-1")).query
        fields = []
        for item in parse_qs(query).get("h", []):
            name, sep, value = item.partition(":")
            if not sep or not name:
                self.respond(400, f"h={item!r}: write Name:Value\n".encode())
                return
            fields.append((name, value.strip()))
        self.respond(200, b"respond\n", fields)

    def route_chunked(self) -> None:
        count = max(0, self._int_arg("n", 3))
        delay = max(0, self._int_arg("ms", 0)) / 1000.0
        self.send(
            h11.Response(
                status_code=200,
                headers=self._headers([("Content-Type", "text/plain")]),
                reason=b"OK",
            )
        )
        chunks = iter(range(count))
        allowed = self._body_allowed(200)

        def step() -> None:
            for i in chunks:
                if allowed:
                    self.send(h11.Data(data=f"chunk {i}\n".encode()))
                if delay:
                    self._later(delay, step)
                    return
            self.send(h11.EndOfMessage())
            self.finish_response()

        step()

    def route_die(self) -> None:
        if self._query().get("rst"):
            self.abort()
        else:
            self.close()

    def route_partial(self) -> None:
        self.send(
            h11.Response(
                status_code=200,
                headers=self._headers(
                    [("Content-Type", "application/octet-stream"), ("Content-Length", "1000")]
                ),
                reason=b"OK",
            )
        )
        self.send(h11.Data(data=large_body(10)))
        self.close()


_ROUTES: dict[str, Callable[[BackendHTTP], None]] = {
    "/": BackendHTTP.route_root,
    "/large": BackendHTTP.route_large,
    "/echo": BackendHTTP.route_echo,
    "/upload": BackendHTTP.route_upload,
    "/headers": BackendHTTP.route_headers,
    "/slow": BackendHTTP.route_slow,
    "/close": BackendHTTP.route_close,
    "/status": BackendHTTP.route_status,
    "/respond": BackendHTTP.route_respond,
    "/chunked": BackendHTTP.route_chunked,
    "/die": BackendHTTP.route_die,
    "/partial": BackendHTTP.route_partial,
    "/ws": BackendHTTP.route_ws,
}


# ----------------------------------------------------------------------------- raw TCP


@implementer(interfaces.IHalfCloseableProtocol)
class TCPEcho(Protocol):
    """Echoes bytes; on the client's FIN it flushes what is left, then closes."""

    def __init__(self, greeting: bytes = b"") -> None:
        self.greeting = greeting

    def connectionMade(self) -> None:
        transport = _transport(self)
        # The transport is its own producer: a full write buffer stops reading, so a client
        # that sends without reading cannot make us buffer without bound.
        transport.registerProducer(transport, True)
        if self.greeting:
            transport.write(self.greeting)

    def dataReceived(self, data: bytes) -> None:
        _transport(self).write(data)

    def readConnectionLost(self) -> None:
        transport = _transport(self)
        # loseConnection waits for a paused producer forever: drop it first.
        transport.unregisterProducer()
        transport.loseConnection()

    def writeConnectionLost(self) -> None:
        _transport(self).abortConnection()


class BackendFactory(Factory):
    """Builds the protocol of one ``mode`` for one backend ``name``."""

    noisy = False  # no "Starting factory" lines in the demo's output

    def __init__(self, name: str, mode: str = "http") -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
        self.name = name
        self.mode = mode

    def buildProtocol(self, addr: object) -> Protocol:
        proto: Protocol
        if self.mode == "http":
            proto = BackendHTTP(self.name)
        elif self.mode == "tcp-name":
            proto = TCPEcho((self.name + "\n").encode())
        else:
            proto = TCPEcho()
        proto.factory = self
        return proto


# ----------------------------------------------------------------------------- service


class BackendService(service.Service):
    """Listens on one address while running; a socket file is unlinked on stop."""

    def __init__(
        self,
        name: str,
        address: str,
        mode: str = "http",
        on_ready: Optional[Callable[[str], None]] = None,
        reactor: Any = None,
    ) -> None:
        self.setName(f"backend-{name}@{address}")
        self.backend_name = name
        self.address = parse_address(address)
        self.factory = BackendFactory(name, mode)
        self.on_ready = on_ready
        self._reactor = reactor
        self.port: Any = None  # an IListeningPort
        self.bound: str = ""

    def _get_reactor(self) -> Any:
        return _default_reactor() if self._reactor is None else self._reactor

    def startService(self) -> None:
        """Listen now (synchronously), so a bind error fails the start loudly."""
        reactor = self._get_reactor()
        addr = self.address
        if addr.is_unix:
            if addr.family == UNIX:
                _remove_stale_socket(addr.path)
            self.port = reactor.listenUNIX(
                _unix_bind_path(addr), self.factory, backlog=128, mode=0o666
            )
            self.bound = str(addr)
        else:
            self.port = reactor.listenTCP(addr.port, self.factory, backlog=128, interface=addr.host)
            host = self.port.getHost()
            family = "ipv6" if addr.family == IPV6 else "ipv4"
            self.bound = f"{family}@{addr.host}:{host.port}"
        super().startService()
        if self.on_ready is not None:
            self.on_ready(self.bound)

    def stopService(self) -> Optional[Deferred[Any]]:
        super().stopService()
        port, self.port = self.port, None
        if port is None:
            return None
        return maybeDeferred(port.stopListening)


def make_backend_service(
    name: str,
    address: str,
    mode: str = "http",
    on_ready: Optional[Callable[[str], None]] = None,
) -> service.Service:
    """A service serving backend ``name`` on ``address`` (``/path``, ``abnsz@x``, ``host:port``)."""
    return BackendService(name, address, mode, on_ready)


# ----------------------------------------------------------------------------- command line


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m udsproxy.demo.backend",
        description="Demo/test backend: HTTP/1.1 or raw echo on unix sockets or TCP.",
    )
    p.add_argument("--name", default="backend", help="backend name (X-Backend header)")
    p.add_argument("--mode", choices=MODES, default="http")
    p.add_argument("--socket", action="append", default=[], metavar="PATH", help="socket file")
    p.add_argument(
        "--listen", action="append", default=[], metavar="ADDR", help="unix@/p, abns@n, abnsz@n"
    )
    p.add_argument("--tcp", action="append", default=[], metavar="HOST:PORT")
    return p


def _addresses(args: argparse.Namespace) -> Iterator[str]:
    for path in args.socket:
        yield f"unix@{path}"
    yield from args.listen
    for hostport in args.tcp:
        yield f"ipv4@{hostport}" if "@" not in hostport else hostport


def _log_warnings_to_stderr() -> None:
    """Send Twisted's warnings and errors (e.g. a traceback in a protocol) to stderr.

    Without an observer they would vanish; stdout stays reserved for READY lines.
    """
    from twisted.logger import (
        FilteringLogObserver,
        LogLevel,
        LogLevelFilterPredicate,
        globalLogBeginner,
        textFileLogObserver,
    )

    predicate = LogLevelFilterPredicate(defaultLogLevel=LogLevel.warn)
    observer = FilteringLogObserver(textFileLogObserver(sys.stderr), [predicate])
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the backend until SIGTERM/SIGINT; prints ``READY <address>`` per listener."""
    args = _parser().parse_args(argv)
    addresses = list(_addresses(args))
    if not addresses:
        print("error: give at least one --socket, --listen or --tcp", file=sys.stderr)
        return 2
    _log_warnings_to_stderr()
    reactor = _default_reactor()

    def ready(bound: str) -> None:
        print(f"READY {bound}", flush=True)

    top = service.MultiService()
    try:
        for address in addresses:
            svc = BackendService(args.name, address, args.mode, ready, reactor)
            svc.setServiceParent(top)
            svc.startService()
    except (ValueError, ierror.CannotListenError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        for svc in list(top):
            svc.stopService()
        return 1
    top.running = True  # the children were started one by one, above
    # SIGTERM/SIGINT stop the reactor; stopping the listeners unlinks their socket files.
    reactor.addSystemEventTrigger("before", "shutdown", top.stopService)
    reactor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
