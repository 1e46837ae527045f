"""TCP mode: one client connection, one server slot, a byte splice with back-pressure.

A session takes its server through a :class:`~udsproxy.stream.ServerAttempt` (slot,
connect, retries and redispatch as HAProxy does, the same path HTTP exchanges take), then
splices bytes both ways. Back-pressure is Twisted's producer/consumer: each transport is registered as the
other's producer, so when one side's write buffer passes its ``bufferSize`` (16 KiB,
``net.connect.WRITE_HIGH_WATER``) the other side stops reading — at most that plus one
64 KiB read are held per direction. Bytes a client sends before its server is connected
are held up to a bound of their own (``PRECONNECT_BUFFER``), then its
transport is paused. Half-closes pass through (a FIN becomes ``shutdown(SHUT_WR)`` on the
other side; the other direction keeps flowing).

Idle timeouts (``timeout client``/``server``, ``tunnel`` when set, ``client-fin`` /
``server-fin`` after a half-close) are checked by the shared :class:`IdleSweeper` with the
tunnel rule both modes share (:func:`udsproxy.stream.tunnel_idle`): the smaller timeout
decides and the log says which side (``cD`` / ``sD``).
"""

from __future__ import annotations

import enum
from typing import Any, Callable, List, Optional, Set

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from .backend import Backend
from .config.model import Algorithm, Proxy
from .log import SessionRecord, format_tcplog, is_null_session
from .log.targets import LogSink
from .net.connect import connect
from .net.probe import peer_closed
from .runtime import ProxyCounters, ServerState
from .stream import ServerAttempt, client_key, resolve_timeouts, tunnel_deadline, tunnel_idle
from .sweeper import IdleSweeper

log = Logger()

# Bytes held from a client before its server connection exists (then reading pauses).
PRECONNECT_BUFFER = 65536


class Phase(enum.Enum):
    """SERVER (waiting for a slot or connecting: the attempt's state says which) -> TUNNEL
    -> CLOSED; CLOSED from anywhere."""

    SERVER = "server"
    TUNNEL = "tunnel"
    CLOSED = "closed"


CLEAN = Failure(ConnectionDone())


class TCPContext:
    """What every session of one listener shares: config, runtime state, reactor, log."""

    def __init__(
        self,
        frontend: Proxy,
        frontend_counters: ProxyCounters,
        backend: Optional[Backend],
        reactor: Any,
        sweeper: IdleSweeper,
        sink: Optional[LogSink],
        listener_id: int,
        on_open: Callable[[], None] = lambda: None,
        on_close: Callable[[], None] = lambda: None,
        connector: Callable[..., Any] = connect,
    ) -> None:
        self.frontend = frontend
        self.connector = connector  # net.connect; tests pass a fake
        self.counters = frontend_counters
        self.backend = backend
        self.reactor = reactor
        self.sweeper = sweeper
        self.sink = sink if sink is not None and sink.enabled else None
        self.listener_id = listener_id
        self.on_open = on_open
        self.on_close = on_close
        # A TCP session is a tunnel from the start: its timeouts are the tunnel's.
        self.timeouts = resolve_timeouts(frontend, backend.proxy if backend is not None else None)
        # Only 'source' hashes in TCP mode: HTTP hashes fall back to round robin (HAProxy).
        self.source_key = (
            backend is not None and backend.proxy.balance.algorithm == Algorithm.SOURCE
        )
        # Live sessions: for "shutdown sessions" and "show sess" on the stats socket, and tests.
        self.sessions: Set[TCPSession] = set()
        # HAProxy: httplog on a TCP frontend falls back to tcplog.
        self.tcplog = frontend.has_option("tcplog") or frontend.has_option("httplog")
        self.dontlognull = frontend.has_option("dontlognull")


@implementer(IHalfCloseableProtocol)
class ClientSide(Protocol):
    """The client's connection: feeds its session."""

    def __init__(self, ctx: TCPContext) -> None:
        self.ctx = ctx
        self.session: Optional[TCPSession] = None

    def connectionMade(self) -> None:
        self.session = TCPSession(self.ctx, self)

    def dataReceived(self, data: bytes) -> None:
        assert self.session is not None
        self.session.from_client(data)

    def readConnectionLost(self) -> None:
        assert self.session is not None
        self.session.client_fin()

    def writeConnectionLost(self) -> None:
        pass

    def connectionLost(self, reason: Failure = CLEAN) -> None:
        if self.session is not None:
            self.session.client_lost(reason)


@implementer(IHalfCloseableProtocol)
class ServerSide(Protocol):
    """The server's connection: feeds the same session."""

    def __init__(self, session: TCPSession) -> None:
        self.session = session

    def dataReceived(self, data: bytes) -> None:
        self.session.from_server(data)

    def readConnectionLost(self) -> None:
        self.session.server_fin()

    def writeConnectionLost(self) -> None:
        pass

    def connectionLost(self, reason: Failure = CLEAN) -> None:
        self.session.server_lost(reason)


class TCPSession:
    """One proxied TCP connection, from accept to its log line."""

    def __init__(self, ctx: TCPContext, client: ClientSide) -> None:
        self.ctx = ctx
        self.client = client
        self.server: Optional[ServerSide] = None
        # Transports typed Any: zope interfaces do not type-check as protocols.
        transport = client.transport
        assert transport is not None
        self.client_t: Any = transport
        self.server_t: Any = None
        self.phase = Phase.SERVER
        self.attempt: Optional[ServerAttempt] = None
        self.held: List[bytes] = []
        self.held_size = 0
        self.client_paused = False
        self.client_eof = False
        self.server_eof = False
        self.client_gone = False
        self.server_gone = False
        self.flags = "--"
        self.bytes_in = 0
        self.bytes_out = 0
        clock = ctx.reactor
        self.accepted = clock.seconds()
        self.last_activity = self.accepted
        peer = self.client_t.getPeer()
        self.peer = peer
        self.peer_is_unix = not isinstance(peer, (IPv4Address, IPv6Address))
        ctx.counters.open(self.accepted)
        ctx.on_open()
        ctx.sessions.add(self)
        if ctx.backend is None:
            self.flags = "SC"
            self.close_client()
            return
        self.attempt = ServerAttempt(
            ctx.backend, self, clock, ctx.connector, ctx.timeouts.connect, self.accepted
        )
        self.attempt.request(key=client_key(peer) if ctx.source_key else None)

    @property
    def target(self) -> Optional[ServerState]:
        """The server this session holds a slot on, if any."""
        return self.attempt.server if self.attempt is not None else None

    # ----------------------------------------------------------------- the attempt's stream
    def ready_connection(self, server: ServerState) -> None:
        return None  # TCP mode never reuses a connection

    def server_protocol(self, server: ServerState) -> ServerSide:
        return ServerSide(self)

    def no_server(self, flags: str) -> None:
        if self.phase is Phase.CLOSED:
            return
        self.flags = flags
        self.close_client()

    def shutdown(self, flags: str) -> None:
        """The server was marked down (``on-marked-down shutdown-sessions``): end now."""
        self.abort(flags)

    def server_connected(self, server: ServerSide, reused: bool) -> None:
        server_t: Any = server.transport
        self.server = server
        self.server_t = server_t
        self.phase = Phase.TUNNEL
        client_t = self.client_t
        server_t.registerProducer(client_t, True)
        client_t.registerProducer(server_t, True)
        if self.held:
            server_t.writeSequence(self.held)
            self.held = []
            self.held_size = 0
        if self.client_paused:
            self.client_paused = False
            client_t.resumeProducing()
        if self.client_eof:
            server_t.loseWriteConnection()
        self.last_activity = self.ctx.sweeper.now
        self.ctx.sweeper.add(self)

    # ----------------------------------------------------------------- data
    def from_client(self, data: bytes) -> None:
        self.bytes_in += len(data)
        if self.server_t is not None:
            self.last_activity = self.ctx.sweeper.now
            self.server_t.write(data)
            return
        self.held.append(data)
        self.held_size += len(data)
        if self.held_size >= PRECONNECT_BUFFER and not self.client_paused:
            self.client_paused = True
            self.client_t.pauseProducing()

    def from_server(self, data: bytes) -> None:
        self.bytes_out += len(data)
        self.last_activity = self.ctx.sweeper.now
        self.client_t.write(data)

    def client_fin(self) -> None:
        self.client_eof = True
        self.last_activity = self.ctx.sweeper.now
        if self.server_t is not None:
            self.server_t.loseWriteConnection()
        elif self.peer_is_unix and peer_closed(self.client_t.fileno()):
            # Gone for good, not half-closed: leave the queue (or the connect) now.
            self.client_t.abortConnection()

    def server_fin(self) -> None:
        self.server_eof = True
        self.last_activity = self.ctx.sweeper.now
        self.client_t.loseWriteConnection()

    # ----------------------------------------------------------------- endings
    def check_idle(self, now: float) -> Optional[float]:
        # The client's write half is shut once the server's FIN was passed on, and back.
        timeouts = self.ctx.timeouts
        flags = tunnel_idle(timeouts, now - self.last_activity, self.server_eof, self.client_eof)
        if flags is not None:
            self.abort(flags)
            return None
        return tunnel_deadline(timeouts, self.last_activity, self.server_eof, self.client_eof)

    def abort(self, flags: str) -> None:
        """End both sides now (a timeout): buffered data is dropped."""
        if self.flags == "--":
            self.flags = flags
        for transport in (self.client_t, self.server_t):
            if transport is not None:
                transport.abortConnection()

    def close_client(self) -> None:
        """Close the client after a refusal or a failed connect (nothing was relayed)."""
        self.client_t.loseConnection()
        if self.client_gone:
            self.finish()

    def client_lost(self, reason: Failure) -> None:
        self.client_gone = True
        if self.phase is Phase.TUNNEL:
            if not reason.check(ConnectionDone) and self.flags == "--":
                self.flags = "CD"
            if self.server_t is not None and not self.server_gone:
                self.server_t.loseConnection()
                return  # finish() when the server side is gone too
        elif self.phase is not Phase.CLOSED and self.flags == "--":
            self.flags = self.attempt.abort_flags if self.attempt is not None else "CQ"
        self.finish()

    def server_lost(self, reason: Failure) -> None:
        self.server_gone = True
        if not reason.check(ConnectionDone) and self.flags == "--":
            self.flags = "SD"
        if not self.client_gone:
            self.client_t.loseConnection()
            return
        self.finish()

    def finish(self) -> None:
        """Release everything this session holds, once, and write its log line."""
        if self.phase is Phase.CLOSED:
            return
        self.phase = Phase.CLOSED
        self.ctx.sessions.discard(self)
        self.ctx.sweeper.discard(self)
        self.write_log()  # before releasing: HAProxy's counters include this session
        target = self.target
        attempt = self.attempt
        if target is not None and attempt is not None:
            connected = self.server_t is not None
            times = None
            if connected:
                total = int((self.ctx.reactor.seconds() - self.accepted) * 1000)
                times = (attempt.t_queue or 0, attempt.t_connect or 0, 0, total)
            target.note_stream(None, False, self.flags, times, False if connected else None)
        if attempt is not None:
            attempt.close()
        if target is not None:
            target.note_bytes(bytes_in=self.bytes_in, bytes_out=self.bytes_out)
        self.ctx.counters.bin += self.bytes_in
        self.ctx.counters.bout += self.bytes_out
        self.ctx.counters.close()
        self.ctx.on_close()

    def write_log(self) -> None:
        ctx = self.ctx
        if ctx.sink is None:
            return
        now = ctx.reactor.seconds()
        attempt = self.attempt
        rec = SessionRecord(
            frontend=ctx.frontend.name,
            backend=ctx.backend.name if ctx.backend is not None else None,
            server=self.target.name if self.target is not None else None,
            accept_time=self.accepted,
            t_queue=attempt.t_queue if attempt is not None else None,
            t_connect=attempt.t_connect if attempt is not None else None,
            t_total=int((now - self.accepted) * 1000),
            bytes_read=self.bytes_out,
            bytes_in=self.bytes_in,
            termination=self.flags,
            actconn=ctx.counters.global_counters.curr_conns,
            feconn=ctx.counters.scur,
            beconn=ctx.backend.state.beconn if ctx.backend is not None else 0,
            srv_conn=self.target.scur if self.target is not None else 0,
            retries=attempt.retries if attempt is not None else 0,
            redispatched=attempt.redispatched if attempt is not None else False,
        )
        if isinstance(self.peer, (IPv4Address, IPv6Address)):
            rec.client_ip, rec.client_port = self.peer.host, self.peer.port
        else:
            rec.listener_id = ctx.listener_id
        if ctx.dontlognull and is_null_session(rec):
            return
        if ctx.tcplog:
            ctx.sink.session(format_tcplog(rec))
        else:
            client = (
                f"{rec.client_ip}:{rec.client_port}" if rec.client_ip else f"unix:{ctx.listener_id}"
            )
            ctx.sink.session(
                f"Connect from {client} to {ctx.frontend.name} ({ctx.frontend.name}/TCP)"
            )


class TCPFactory(Factory):
    """Builds the client side of a TCP-mode session for one listener."""

    noisy = False

    def __init__(self, ctx: TCPContext) -> None:
        self.ctx = ctx

    def buildProtocol(self, addr: Any) -> ClientSide:
        return ClientSide(self.ctx)
