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
from typing import Any, Callable, Mapping, Optional, Set, Tuple

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from .backend import Backend
from .config.model import Algorithm, Proxy
from .log import SessionRecord
from .log.targets import LogSink
from .logformat.session import SessionLog, address_pair
from .net.connect import connect
from .net.probe import peer_closed
from .routing import (
    Missing,
    Router,
    TcpVerdict,
    compile_connection_rules,
    connection_info,
    connection_verdict,
    content_verdict,
    make_router,
    server_rules,
)
from .rules import RuleContext
from .runtime import ProxyCounters, ServerState
from .stream import ServerAttempt, client_key, resolve_timeouts, tunnel_deadline, tunnel_idle
from .sweeper import IdleSweeper

log = Logger()

# Bytes held from a client before its server connection exists (then reading pauses).
PRECONNECT_BUFFER = 65536


class Phase(enum.Enum):
    """[INSPECT (tcp-request content rules wait for data) ->] SERVER (waiting for a slot or
    connecting: the attempt's state says which) -> TUNNEL -> CLOSED; CLOSED from anywhere."""

    INSPECT = "inspect"
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
        backends: Optional[Mapping[str, Backend]] = None,
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
        self.default_route = TCPRoute(frontend, backend)
        # A TCP session is a tunnel from the start: its timeouts are the tunnel's.
        self.timeouts = self.default_route.timeouts
        self.router: Optional[Router[TCPRoute]] = make_router(
            frontend, backends, self.route_to, self.default_route
        )
        self.connection_rules = compile_connection_rules(frontend.tcp_connection)
        self.content_rules = frontend.tcp_content
        self.inspect_delay = frontend.inspect_delay
        # Whether a session needs a RuleContext to find its backend and server.
        self.rules = bool(
            self.router is not None or self.content_rules or self.default_route.servers
        )
        # Live sessions: for "shutdown sessions" and "show sess" on the stats socket, and tests.
        self.sessions: Set[TCPSession] = set()
        # The session line (the config made 'option httplog' on a TCP frontend tcplog).
        self.log = SessionLog(frontend, frontend_counters, self.sink)

    def route_to(self, backend: Backend) -> Optional[TCPRoute]:
        """The route to ``backend`` (None: not a TCP backend)."""
        if backend is self.backend:
            return self.default_route
        if backend.proxy.proxy_mode != "tcp":
            return None
        return TCPRoute(self.frontend, backend)


class TCPRoute:
    """Where a session goes: the backend, its timeouts with the frontend's, whether it
    hashes the source address, and its ``use-server`` rules."""

    __slots__ = ("backend", "timeouts", "source_key", "servers")

    def __init__(self, frontend: Proxy, backend: Optional[Backend]) -> None:
        self.backend = backend
        self.timeouts = resolve_timeouts(frontend, backend.proxy if backend is not None else None)
        # Only 'source' hashes in TCP mode: HTTP hashes fall back to round robin (HAProxy).
        self.source_key = (
            backend is not None and backend.proxy.balance.algorithm == Algorithm.SOURCE
        )
        self.servers = (
            server_rules(backend.proxy.use_servers, backend.servers)
            if backend is not None
            else None
        )


@implementer(IHalfCloseableProtocol)
class ClientSide(Protocol):
    """The client's connection: feeds its session."""

    def __init__(self, ctx: TCPContext) -> None:
        self.ctx = ctx
        self.session: Optional[TCPSession] = None

    def connectionMade(self) -> None:
        ctx = self.ctx
        transport: Any = self.transport
        if ctx.connection_rules and not connection_verdict(
            ctx.connection_rules,
            RuleContext(connection_info(transport, ctx.frontend.name, ctx.listener_id)),
        ):
            # tcp-request connection reject: not a session, not logged (HAProxy's dcon).
            ctx.counters.dcon += 1
            transport.loseConnection()
            return
        self.session = TCPSession(ctx, self)

    def dataReceived(self, data: bytes) -> None:
        if self.session is not None:
            self.session.from_client(data)

    def readConnectionLost(self) -> None:
        if self.session is not None:
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
        # Bytes from the client before its server is connected: one buffer the content
        # rules read in place (appending is linear; no join per received chunk).
        self.held = bytearray()
        self.client_paused = False
        self.client_eof = False
        self.server_eof = False
        self.client_gone = False
        self.server_gone = False
        self.flags = "--"
        self.bytes_in = 0
        self.bytes_out = 0
        self.counter = ctx.counters.global_counters.next_stream()  # %rt
        self.server_source: Optional[Tuple[str, int]] = None  # %bi:%bp
        # %fi:%fp of a TCP listener and the connection of %[expr]: read while the socket is
        # open, only for formats that print them.
        self.local: Any = transport.getHost() if ctx.log.need_frontend_addr else None
        self.log_conn = (
            connection_info(transport, ctx.frontend.name, ctx.listener_id)
            if ctx.log.need_samples
            else None
        )
        clock = ctx.reactor
        self.accepted = clock.seconds()
        self.last_activity = self.accepted
        peer = self.client_t.getPeer()
        self.peer = peer
        self.peer_is_unix = not isinstance(peer, (IPv4Address, IPv6Address))
        ctx.counters.open(self.accepted)
        ctx.on_open()
        ctx.sessions.add(self)
        self.route = ctx.default_route
        self.backend = self.route.backend
        self.timeouts = self.route.timeouts
        self.rules: Optional[RuleContext] = None
        self.inspect_timer: Any = None
        if not ctx.rules:
            self.connect(None)
            return
        self.rules = RuleContext(connection_info(self.client_t, ctx.frontend.name, ctx.listener_id))
        self.rules.backend = None
        if ctx.content_rules:
            self.phase = Phase.INSPECT
            if ctx.inspect_delay:
                self.rules.final = False
                self.inspect_timer = clock.callLater(
                    ctx.inspect_delay / 1000.0, self.inspect_expired
                )
        self.inspect()

    # ----------------------------------------------------------------- rules
    def inspect(self) -> None:
        """tcp-request content rules on what arrived; then routing (use_backend, use-server)."""
        rules = self.rules
        assert rules is not None
        ctx = self.ctx
        if self.phase is Phase.INSPECT:
            rules.payload = self.held  # read in place: fetches copy only their slice
            if self.client_eof or len(self.held) >= PRECONNECT_BUFFER:
                rules.final = True  # no more can come: the contents are definitive
            verdict = content_verdict(ctx.content_rules, rules)
            if verdict == TcpVerdict.WAIT:
                return
            # Decided: later readers (routing, the log) see the contents as they were, not
            # the buffer as it changes (it is emptied when the server connects).
            rules.payload = bytes(self.held)
            self.stop_inspecting()
            if verdict == TcpVerdict.REJECT:
                ctx.counters.dreq += 1
                self.flags = "PR"
                self.close_client()
                return
            self.phase = Phase.SERVER
        route = self.route
        if ctx.router is not None:
            chosen = ctx.router.select(rules)
            if type(chosen) is Missing:
                chosen.log(ctx.frontend.name, "connection closed", ctx.sink)
                self.backend = None
                self.flags = "SC"
                self.close_client()
                return
            route = self.route = chosen  # type: ignore[assignment]
            self.backend = route.backend
            self.timeouts = route.timeouts
        pinned = route.servers.pick(rules) if route.servers is not None else None
        self.connect(pinned)

    def inspect_expired(self) -> None:
        """tcp-request inspect-delay is over: a last evaluation on definitive contents."""
        self.inspect_timer = None
        if self.phase is Phase.INSPECT and self.rules is not None:
            self.rules.final = True
            self.inspect()

    def stop_inspecting(self) -> None:
        timer, self.inspect_timer = self.inspect_timer, None
        if timer is not None and timer.active():
            timer.cancel()

    def connect(self, pinned: Optional[ServerState]) -> None:
        """Ask the route's backend for a server slot (``pinned``: use-server's choice)."""
        route = self.route
        backend = route.backend
        if backend is None:
            self.flags = "SC"
            self.close_client()
            return
        self.attempt = ServerAttempt(
            backend,
            self,
            self.ctx.reactor,
            self.ctx.connector,
            route.timeouts.connect,
            self.accepted,
        )
        key = client_key(self.peer) if route.source_key else None
        self.attempt.request(key=key, bound=pinned)

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
        if self.ctx.log.need_server_source:
            self.server_source = address_pair(server_t.getHost())
        client_t = self.client_t
        server_t.registerProducer(client_t, True)
        client_t.registerProducer(server_t, True)
        if self.held:
            server_t.write(bytes(self.held))
            self.held = bytearray()
        if self.client_paused:
            self.client_paused = False
            client_t.resumeProducing()
        if self.client_eof:
            server_t.loseWriteConnection()
        sweeper = self.ctx.sweeper
        sweeper.add(self)  # first: an empty sweeper's ``now`` is only refreshed by add()
        self.last_activity = sweeper.now

    # ----------------------------------------------------------------- data
    def from_client(self, data: bytes) -> None:
        self.bytes_in += len(data)
        if self.server_t is not None:
            self.last_activity = self.ctx.sweeper.now
            self.server_t.write(data)
            return
        self.held += data
        if len(self.held) >= PRECONNECT_BUFFER and not self.client_paused:
            self.client_paused = True
            self.client_t.pauseProducing()
        if self.phase is Phase.INSPECT:
            self.inspect()

    def from_server(self, data: bytes) -> None:
        self.bytes_out += len(data)
        self.last_activity = self.ctx.sweeper.now
        self.client_t.write(data)

    def client_fin(self) -> None:
        self.client_eof = True
        self.last_activity = self.ctx.sweeper.now
        if self.phase is Phase.INSPECT:
            self.inspect()  # the contents are definitive now
            if self.phase is Phase.CLOSED or self.client_gone:
                return
        if self.server_t is not None:
            self.server_t.loseWriteConnection()
            self.end_if_both_ended()
        elif self.peer_is_unix and peer_closed(self.client_t.fileno()):
            # Gone for good, not half-closed: leave the queue (or the connect) now.
            self.client_t.abortConnection()

    def server_fin(self) -> None:
        self.server_eof = True
        self.last_activity = self.ctx.sweeper.now
        self.client_t.loseWriteConnection()
        self.end_if_both_ended()

    def end_if_both_ended(self) -> None:
        """Both sides sent their FIN: nothing more can flow, the session is over (as
        HAProxy); each side gets what is buffered, then the close. Neither would close
        first otherwise, each waiting for the other: a session left until its timeout."""
        if self.client_eof and self.server_eof:
            self.client_t.loseConnection()
            if self.server_t is not None:
                self.server_t.loseConnection()

    # ----------------------------------------------------------------- endings
    def check_idle(self, now: float) -> Optional[float]:
        # The client's write half is shut once the server's FIN was passed on, and back.
        timeouts = self.timeouts
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
        self.stop_inspecting()
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
        log = ctx.log
        peer = self.peer
        ip = peer if isinstance(peer, (IPv4Address, IPv6Address)) else None
        if log.format is None:
            # No format: HAProxy's one line per connection.
            if not (log.dontlognull and self.bytes_in == 0):
                client = f"unix:{ctx.listener_id}" if ip is None else f"{ip.host}:{ip.port}"
                name = ctx.frontend.name
                ctx.sink.session(f"Connect from {client} to {name} ({name}/TCP)")
            return
        now = ctx.reactor.seconds()
        attempt = self.attempt
        target = self.target
        total = int((now - self.accepted) * 1000)
        rec = SessionRecord(
            frontend=ctx.frontend.name,
            backend=self.backend.name if self.backend is not None else None,
            server=target.name if target is not None else None,
            accept_time=self.accepted,
            t_queue=attempt.t_queue if attempt is not None else None,
            t_connect=attempt.t_connect if attempt is not None else None,
            t_active=total,  # HAProxy: Tt less an idle time TCP sessions do not have
            t_total=total,
            bytes_read=self.bytes_out,
            bytes_in=self.bytes_in,
            termination=self.flags,
            actconn=ctx.counters.global_counters.curr_conns,
            feconn=ctx.counters.scur,
            beconn=self.backend.state.beconn if self.backend is not None else 0,
            srv_conn=target.scur if target is not None else 0,
            retries=attempt.retries if attempt is not None else 0,
            redispatched=attempt.redispatched if attempt is not None else False,
            status=0,  # no HTTP transaction
            request_counter=self.counter,
        )
        if ip is None:
            rec.listener_id = ctx.listener_id
        else:
            rec.client_ip, rec.client_port = ip.host, ip.port
        # A TCP stream has its capture slots too (HAProxy prints them empty: {}).
        if log.request_captures is not None:
            rec.request_captures = [None] * len(log.request_captures)
        if log.response_captures is not None:
            rec.response_captures = [None] * len(log.response_captures)
        if log.need_optional:
            log.fill(rec, None if ip is None else self.local, target, self.server_source)
        if log.need_samples:
            assert self.log_conn is not None
            rec.sample = rules = self.rules or RuleContext(self.log_conn)
            rules.backend = self.backend.name if self.backend is not None else None
            rules.server = target.name if target is not None else None
        if log.unique_id_format is not None:
            rec.unique_id = log.unique_id(rec)
            if isinstance(rec.sample, RuleContext):
                rec.sample.unique_id = rec.unique_id
        log.write(rec)


class TCPFactory(Factory):
    """Builds the client side of a TCP-mode session for one listener."""

    noisy = False

    def __init__(self, ctx: TCPContext) -> None:
        self.ctx = ctx

    def buildProtocol(self, addr: Any) -> ClientSide:
        return ClientSide(self.ctx)
