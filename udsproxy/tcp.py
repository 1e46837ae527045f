"""TCP mode: one client connection, one server slot, a byte splice with back-pressure.

A session asks its backend for a slot (balancing, maxconn, queue), connects through the
shared connect function, retries and redispatches as HAProxy does, then splices bytes both
ways. Back-pressure is Twisted's producer/consumer: each transport is registered as the
other's producer, so when one side's write buffer passes its 64 KiB ``bufferSize`` the
other side stops reading — at most 64 KiB plus one read are held per direction. Bytes a
client sends before its server is connected are held up to the same bound, then its
transport is paused. Half-closes pass through (a FIN becomes ``shutdown(SHUT_WR)`` on the
other side; the other direction keeps flowing).

Retries: AF_UNIX ``connect()`` fails synchronously (ENOENT, ECONNREFUSED, EAGAIN), and
HAProxy retries such failures at once; only an asynchronous failure (a TCP connect that
was refused or timed out after EINPROGRESS) waits HAProxy's turn-around of
``min(timeout connect, 1s)`` before trying the same server again. With ``option
redispatch`` (interval -1) the last retry goes to another server.

Idle timeouts (``timeout client``/``server``, ``tunnel`` when set, ``client-fin`` /
``server-fin`` after a half-close) are checked by the shared :class:`IdleSweeper`; any byte
in either direction counts as activity of the tunnel, so the smaller timeout decides and
the log says which side (``cD`` / ``sD``).
"""

from __future__ import annotations

import enum
import socket
import weakref
from typing import Any, Callable, List, Optional, Set

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from .config.model import Proxy
from .log import SessionRecord, format_tcplog, is_null_session
from .log.targets import LogSink
from .net.connect import ConnectError, connect
from .net.probe import peer_closed
from .queue import NO_SERVER, QUEUE_FULL, QUEUE_TIMEOUT, Ticket
from .retry import GIVE_UP, REDISPATCH, after_connect_failure
from .runtime import BackendState, ProxyCounters, ServerState
from .sweeper import IdleSweeper

log = Logger()

# Bytes held from a client before its server connection exists (then reading pauses).
PRECONNECT_BUFFER = 65536


class Phase(enum.Enum):
    """WAITING (for a slot) -> CONNECTING -> TUNNEL -> CLOSED; CLOSED from anywhere."""

    WAITING = "waiting"
    CONNECTING = "connecting"
    TUNNEL = "tunnel"
    CLOSED = "closed"


CLEAN = Failure(ConnectionDone())

QUEUE_FLAGS = {NO_SERVER: "SC", QUEUE_TIMEOUT: "sQ", QUEUE_FULL: "SQ"}


class TCPContext:
    """What every session of one listener shares: config, runtime state, reactor, log."""

    def __init__(
        self,
        frontend: Proxy,
        frontend_counters: ProxyCounters,
        backend: Optional[BackendState],
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
        ft = frontend.timeouts
        bt = backend.proxy.timeouts if backend is not None else ft
        tunnel = bt.tunnel if bt.tunnel is not None else ft.tunnel
        self.client_timeout = ms(tunnel if tunnel is not None else ft.client)
        self.server_timeout = ms(tunnel if tunnel is not None else bt.server)
        self.client_fin_timeout = ms(ft.client_fin) or self.client_timeout
        self.server_fin_timeout = ms(bt.server_fin) or self.server_timeout
        self.connect_timeout = bt.connect
        # Live sessions: for "shutdown sessions" and "show sess" on the stats socket, and tests.
        self.sessions: Set[TCPSession] = set()
        # HAProxy: httplog on a TCP frontend falls back to tcplog.
        self.tcplog = frontend.has_option("tcplog") or frontend.has_option("httplog")
        self.dontlognull = frontend.has_option("dontlognull")


def ms(value: Optional[int]) -> Optional[float]:
    """Milliseconds -> seconds; None and 0 stay "no timeout"."""
    return value / 1000.0 if value else None


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
        self.phase = Phase.WAITING
        self.ticket: Optional[Ticket] = None
        self.target: Optional[ServerState] = None
        self.pending: Optional[Any] = None  # the Deferred of a connect in progress
        self.retry_call: Optional[Any] = None
        self.retries = 0
        self.in_request = False
        self.redispatched = False
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
        self.t_queue: Optional[int] = None
        self.t_connect: Optional[int] = None
        self.connect_started = 0.0
        self.last_activity = self.accepted
        peer = self.client_t.getPeer()
        self.peer = peer
        self.peer_is_unix = not isinstance(peer, (IPv4Address, IPv6Address))
        ctx.counters.open()
        ctx.on_open()
        ctx.sessions.add(self)
        if ctx.backend is None:
            self.flags = "SC"
            self.close_client()
            return
        # A free server is granted inside request_slot(): connect only once we hold the ticket.
        self.in_request = True
        # Only 'source' hashes in TCP mode: HTTP hashes fall back to round robin (HAProxy).
        key = client_key(peer) if ctx.backend.proxy.balance.algorithm == "source" else None
        self.ticket = ctx.backend.request_slot(self.granted, self.refused, key=key)
        self.in_request = False
        if self.target is not None and self.phase is Phase.WAITING:
            self.start_connect()

    # ----------------------------------------------------------------- slot and connect
    def granted(self, server: ServerState) -> None:
        if self.phase is Phase.CLOSED:
            return
        if self.t_queue is None and self.ticket is not None and self.ticket.wait_time is not None:
            self.t_queue = int(self.ticket.wait_time * 1000)
        self.target = server
        if not self.in_request:
            self.start_connect()

    def refused(self, reason: str) -> None:
        if self.phase is Phase.CLOSED:
            return
        if self.t_queue is None:
            self.t_queue = int((self.ctx.reactor.seconds() - self.accepted) * 1000)
        self.flags = QUEUE_FLAGS.get(reason, "SC")
        self.close_client()

    def start_connect(self) -> None:
        assert self.target is not None
        self.retry_call = None
        self.phase = Phase.CONNECTING
        self.connect_started = self.ctx.reactor.seconds()
        attempt = self.ctx.connector(
            self.ctx.reactor,
            self.target.config.address,
            lambda: ServerSide(self),
            self.ctx.connect_timeout,
        )
        synchronous = [True]
        self.pending = attempt
        attempt.addCallbacks(self.connected, self.connect_failed, errbackArgs=(synchronous,))
        synchronous[0] = False

    def connected(self, server: ServerSide) -> None:
        self.pending = None
        server_t: Any = server.transport
        if self.phase is Phase.CLOSED:
            server_t.loseConnection()
            return
        assert self.target is not None
        note_connect_ok(self.target)
        self.t_connect = int((self.ctx.reactor.seconds() - self.connect_started) * 1000)
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

    def connect_failed(self, failure: Failure, synchronous: List[bool]) -> Optional[Failure]:
        self.pending = None
        if self.phase is Phase.CLOSED:
            return None  # cancelled because the client left
        error = failure.value
        if not isinstance(error, ConnectError):
            log.failure("unexpected connect failure", failure)
            error = None
        assert self.target is not None and self.ticket is not None
        note_connect_error(self.target, str(error) if error else repr(failure.value))
        backend = self.ctx.backend
        assert backend is not None
        step = after_connect_failure(
            backend.proxy, self.retries, synchronous[0], self.ctx.connect_timeout
        )
        if step.action == GIVE_UP:
            self.flags = "SC"
            self.close_client()
            return None
        self.retries += 1
        self.ticket.note_retry()
        if step.action == REDISPATCH:
            self.redispatched = True
            self.phase = Phase.WAITING
            self.ticket.redispatch()  # calls granted() or refused(), maybe right now
        elif step.delay:
            self.retry_call = self.ctx.reactor.callLater(step.delay, self.start_connect)
        else:
            self.start_connect()
        return None

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
    def check_idle(self, now: float) -> None:
        idle = now - self.last_activity
        ctx = self.ctx
        # As HAProxy: a side whose write half we shut (its peer sent FIN) is in FIN_WAIT and
        # gets its -fin timeout: client-fin once the server's FIN was passed to the client.
        client_limit = ctx.client_fin_timeout if self.server_eof else ctx.client_timeout
        server_limit = ctx.server_fin_timeout if self.client_eof else ctx.server_timeout
        if (
            client_limit is not None
            and idle >= client_limit
            and (server_limit is None or client_limit <= server_limit)
        ):
            self.abort("cD")
        elif server_limit is not None and idle >= server_limit:
            self.abort("sD")

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
            self.flags = "CQ" if self.phase is Phase.WAITING else "CC"
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
        if self.retry_call is not None and self.retry_call.active():
            self.retry_call.cancel()
        if self.pending is not None:
            pending, self.pending = self.pending, None
            pending.cancel()
        self.write_log()  # before releasing: HAProxy's counters include this session
        if self.ticket is not None:
            self.ticket.release()
        if self.target is not None:
            self.target.note_bytes(bytes_in=self.bytes_in, bytes_out=self.bytes_out)
        self.ctx.counters.bin += self.bytes_in
        self.ctx.counters.bout += self.bytes_out
        self.ctx.counters.close()
        self.ctx.on_close()

    def write_log(self) -> None:
        ctx = self.ctx
        if ctx.sink is None:
            return
        now = ctx.reactor.seconds()
        rec = SessionRecord(
            frontend=ctx.frontend.name,
            backend=ctx.backend.name if ctx.backend is not None else None,
            server=self.target.name if self.target is not None else None,
            accept_time=self.accepted,
            t_queue=self.t_queue,
            t_connect=self.t_connect,
            t_total=int((now - self.accepted) * 1000),
            bytes_read=self.bytes_out,
            bytes_in=self.bytes_in,
            termination=self.flags,
            actconn=ctx.counters.global_counters.curr_conns,
            feconn=ctx.counters.scur,
            beconn=ctx.backend.beconn if ctx.backend is not None else 0,
            srv_conn=self.target.scur if self.target is not None else 0,
            retries=self.retries,
            redispatched=self.redispatched,
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


# The last connect error logged per server: each server's error is logged once per change,
# not once per client (a dead backend under load would flood the log otherwise).
_last_connect_error: weakref.WeakKeyDictionary[ServerState, str] = weakref.WeakKeyDictionary()


def note_connect_error(server: ServerState, message: str) -> None:
    """Count a failed connect (econ) and log its cause when it differs from the last one."""
    server.note_connect_error()
    if _last_connect_error.get(server) != message:
        _last_connect_error[server] = message
        log.warn(
            "server {backend}/{server}: {message}",
            backend=server.backend.name,
            server=server.name,
            message=message,
        )


def note_connect_ok(server: ServerState) -> None:
    """A connect succeeded: the next failure will be logged again."""
    if server in _last_connect_error:
        del _last_connect_error[server]
        log.info(
            "server {backend}/{server}: connected again",
            backend=server.backend.name,
            server=server.name,
        )


def client_key(peer: Any) -> Optional[bytes]:
    """The hash key of ``balance source``: the client's address bytes; None for unix clients."""
    if isinstance(peer, IPv4Address):
        return socket.inet_pton(socket.AF_INET, peer.host)
    if isinstance(peer, IPv6Address):
        return socket.inet_pton(socket.AF_INET6, peer.host.split("%")[0])
    return None


class TCPFactory(Factory):
    """Builds the client side of a TCP-mode session for one listener."""

    noisy = False

    def __init__(self, ctx: TCPContext) -> None:
        self.ctx = ctx

    def buildProtocol(self, addr: Any) -> ClientSide:
        return ClientSide(self.ctx)
