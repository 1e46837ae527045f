"""One stream's way to a server, the same for TCP sessions and HTTP exchanges (HAProxy's
stream.c / backend.c connect path).

A :class:`ServerAttempt` takes a stream from "wants a server" to "has a connection":
slot (balancing, maxconn, the backend queue) -> connect through the shared connect
function -> on failure retry the same server or redispatch to another, as ``retries`` and
``option redispatch`` say (:mod:`udsproxy.retry`) -> connected. Each connect's outcome is
reported to the server's run-time state (:meth:`ServerState.report`: the counters and the
passive health checks' input); a server's connect error is logged once per change, not
once per client.

The stream it serves (a :class:`Stream`) is asked for a ready connection first (HTTP:
an idle pooled one), otherwise for the protocol to connect with, and is told the result.

Also shared by both modes: the effective timeouts of a frontend/backend pair
(:func:`resolve_timeouts`), the idle verdict of a byte tunnel (:func:`tunnel_idle`) and
the hash key of ``balance source`` (:func:`client_key`).
"""

from __future__ import annotations

import enum
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional, Protocol

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.logger import Logger
from twisted.python.failure import Failure

from .config.model import UNIX, Proxy
from .net.connect import ConnectError, ConnectKind
from .queue import QueueError, Ticket
from .retry import Action, after_connect_failure
from .runtime import Outcome, ServerState

# A unix socket's connect errors that no retry cures: the file is missing, or nobody
# listens on it (a stale file). The app must be (re)started; another server can answer now.
PERMANENT = frozenset({ConnectKind.ENOENT, ConnectKind.ECONNREFUSED})


if TYPE_CHECKING:
    from .backend import Backend

log = Logger()


# ----------------------------------------------------------------------------- timeouts
def seconds(value: Optional[int]) -> Optional[float]:
    """Milliseconds -> seconds; None and 0 stay "no timeout" (HAProxy: infinite)."""
    return value / 1000.0 if value else None


@dataclass(frozen=True)
class StreamTimeouts:
    """The timeouts one frontend/backend pair applies, in seconds (None: none).

    ``connect`` stays in milliseconds, as the connect function and the retry turn-around
    take it. A tunnel (TCP mode, or HTTP after a 101) uses ``timeout tunnel`` when set
    (the backend's, else the frontend's) for both sides; after a side's peer half-closed,
    that side gets ``client-fin`` / ``server-fin`` when set.
    """

    connect: Optional[int]
    client: Optional[float]
    server: Optional[float]
    tunnel_client: Optional[float]
    tunnel_server: Optional[float]
    client_fin: Optional[float]
    server_fin: Optional[float]
    http_request: Optional[float]
    keep_alive: Optional[float]


def resolve_timeouts(frontend: Proxy, backend: Optional[Proxy]) -> StreamTimeouts:
    """HAProxy's rules: client-side timeouts from the frontend, server-side from the backend."""
    ft = frontend.timeouts
    bt = backend.timeouts if backend is not None else ft
    tunnel = bt.tunnel if bt.tunnel is not None else ft.tunnel
    client = seconds(ft.client)
    server = seconds(bt.server)
    tunnel_client = seconds(tunnel) if tunnel is not None else client
    tunnel_server = seconds(tunnel) if tunnel is not None else server
    return StreamTimeouts(
        connect=bt.connect,
        client=client,
        server=server,
        tunnel_client=tunnel_client,
        tunnel_server=tunnel_server,
        client_fin=seconds(ft.client_fin) or tunnel_client,
        server_fin=seconds(bt.server_fin) or tunnel_server,
        http_request=seconds(ft.http_request if ft.http_request is not None else ft.client),
        keep_alive=seconds(ft.effective_keep_alive),
    )


def tunnel_idle(
    timeouts: StreamTimeouts, idle: float, client_shut: bool, server_shut: bool
) -> Optional[str]:
    """The termination flags when a byte tunnel idle for ``idle`` seconds times out, or None.

    Any byte either way is activity, so the smaller timeout decides. As HAProxy: once we
    shut a side's write half (its peer sent FIN; ``client_shut``: the client's write half),
    that side is waited for under ``client-fin`` / ``server-fin`` (FIN_WAIT).
    """
    client_limit = timeouts.client_fin if client_shut else timeouts.tunnel_client
    server_limit = timeouts.server_fin if server_shut else timeouts.tunnel_server
    if (
        client_limit is not None
        and idle >= client_limit
        and (server_limit is None or client_limit <= server_limit)
    ):
        return "cD"
    if server_limit is not None and idle >= server_limit:
        return "sD"
    return None


def tunnel_deadline(
    timeouts: StreamTimeouts, since: float, client_shut: bool, server_shut: bool
) -> Optional[float]:
    """When a tunnel last active at ``since`` times out if nothing happens (for the sweeper)."""
    limits = [
        limit
        for limit in (
            timeouts.client_fin if client_shut else timeouts.tunnel_client,
            timeouts.server_fin if server_shut else timeouts.tunnel_server,
        )
        if limit is not None
    ]
    return since + min(limits) if limits else None


def client_key(peer: Any) -> Optional[bytes]:
    """The hash key of ``balance source``: the client's address bytes; None for unix clients."""
    if isinstance(peer, IPv4Address):
        return socket.inet_pton(socket.AF_INET, peer.host)
    if isinstance(peer, IPv6Address):
        return socket.inet_pton(socket.AF_INET6, peer.host.split("%")[0])
    return None


# ----------------------------------------------------------------------------- attempt
class Stream(Protocol):
    """What a :class:`ServerAttempt` asks of the stream it serves."""

    def ready_connection(self, server: ServerState) -> Any:
        """A slot on ``server`` was granted: a connection to use as it is (pooled), or None."""

    def server_protocol(self, server: ServerState) -> Any:
        """The protocol a new connection to ``server`` is made with."""

    def server_connected(self, conn: Any, reused: bool) -> None:
        """The stream has its server connection (``reused``: it came from a pool)."""

    def no_server(self, flags: str) -> None:
        """No server now and no retry left: ``SC``, ``sQ`` or ``SQ`` (HAProxy's flags)."""

    def shutdown(self, flags: str) -> None:
        """End the stream now: its server was marked down (``on-marked-down
        shutdown-sessions``) or a backup's streams give way (``on-marked-up``)."""


class _Ended:
    """The stream of a closed attempt: none (every callback returns on CLOSED before it
    would reach its stream). A closed attempt holds it instead of the stream it served,
    so that no reference cycle (stream -> attempt -> stream) outlives the stream: both
    are freed when the stream is, and the garbage collector has nothing to look for."""

    def ready_connection(self, server: ServerState) -> Any:
        return None

    def server_protocol(self, server: ServerState) -> Any:
        raise RuntimeError("a closed attempt connects nothing")

    def server_connected(self, conn: Any, reused: bool) -> None:
        pass

    def no_server(self, flags: str) -> None:
        pass

    def shutdown(self, flags: str) -> None:
        pass


ENDED = _Ended()


class AttemptState(enum.Enum):
    """WAITING (for a slot) -> CONNECTING -> CONNECTED, back to WAITING on a redispatch;
    CLOSED from anywhere, final."""

    WAITING = "waiting"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    CLOSED = "closed"


Connector = Callable[..., Any]  # net.connect.connect, or a test's fake


class ServerAttempt:
    """Slot -> connect -> retry/redispatch -> connected, for one stream."""

    __slots__ = (
        "backend",
        "stream",
        "reactor",
        "connector",
        "connect_timeout",
        "state",
        "ticket",
        "server",
        "pending",
        "retry_call",
        "retries",
        "redispatched",
        "started",
        "t_queue",
        "t_connect",
        "connect_started",
        "_in_request",
        "_sync",
    )

    def __init__(
        self,
        backend: Backend,
        stream: Stream,
        reactor: Any,
        connector: Connector,
        connect_timeout: Optional[int],
        started: float,
    ) -> None:
        """``started``: when the stream began (its queue time on refusal counts from it)."""
        self.backend = backend
        self.stream = stream
        self.reactor = reactor
        self.connector = connector
        self.connect_timeout = connect_timeout  # ms
        self.state = AttemptState.WAITING
        self.ticket: Optional[Ticket] = None
        self.server: Optional[ServerState] = None
        self.pending: Optional[Any] = None  # the Deferred of a connect in progress
        self.retry_call: Optional[Any] = None
        self.retries = 0
        self.redispatched = False
        self.started = started
        self.t_queue: Optional[int] = None  # ms waited for the slot (HAProxy's Tw)
        self.t_connect: Optional[int] = None  # ms to connect (Tc); 0 for a reused connection
        self.connect_started = 0.0
        self._in_request = False
        self._sync = False

    def __repr__(self) -> str:
        return f"<ServerAttempt {self.state.value} server={self.server!r}>"

    @property
    def abort_flags(self) -> str:
        """Termination flags for a client that leaves now: ``CQ`` queued, ``CC`` connecting."""
        return "CQ" if self.state is AttemptState.WAITING else "CC"

    def request(self, key: Optional[bytes] = None, bound: Optional[ServerState] = None) -> None:
        """Ask the backend for a slot, balanced on ``key`` (or ``bound`` to one server).

        A free server is granted inside the request: the connection starts only once the
        ticket is ours, so a stream never connects without holding its slot.
        """
        self._in_request = True
        self.ticket = self.backend.request_slot(self._granted, self._refused, key=key, server=bound)
        self._in_request = False
        if self.server is not None and self.state is AttemptState.WAITING:
            self._start()

    def _granted(self, server: ServerState) -> None:
        if self.state is AttemptState.CLOSED:
            return
        ticket = self.ticket
        if self.t_queue is None:
            wait = ticket.wait_time if ticket is not None else None
            self.t_queue = int(wait * 1000) if wait is not None else 0
        self.server = server
        if not self._in_request:
            self._start()

    def _refused(self, reason: QueueError) -> None:
        if self.state is AttemptState.CLOSED:
            return
        if self.t_queue is None:
            self.t_queue = int((self.reactor.seconds() - self.started) * 1000)
        self.stream.no_server(reason.flags)

    def _start(self) -> None:
        server = self.server
        assert server is not None
        conn = self.stream.ready_connection(server)
        if conn is None:
            self.connect()
            return
        self.state = AttemptState.CONNECTED
        self.t_connect = 0
        server.streams.add(self)
        self.stream.server_connected(conn, True)

    def connect(self) -> None:
        """Open a new connection to the granted server (also: resend on a fresh one)."""
        server = self.server
        assert server is not None
        self.state = AttemptState.CONNECTING
        server.streams.discard(self)  # a resend: registered again once connected
        self.retry_call = None
        self.connect_started = self.reactor.seconds()
        stream = self.stream
        attempt = self.connector(
            self.reactor,
            server.config.address,
            lambda: stream.server_protocol(server),
            self.connect_timeout,
        )
        self._sync = True
        self.pending = attempt
        attempt.addCallbacks(self._connected, self._failed)
        self._sync = False

    def _connected(self, conn: Any) -> None:
        self.pending = None
        transport = conn.transport
        if self.state is AttemptState.CLOSED:
            transport.loseConnection()  # the stream ended while we connected
            return
        server = self.server
        assert server is not None
        if server.connect_error is not None:
            log.info(
                "server {backend}/{server}: connected again",
                backend=server.backend.name,
                server=server.name,
            )
        server.report(Outcome.CONNECT_OK)
        self.t_connect = int((self.reactor.seconds() - self.connect_started) * 1000)
        self.state = AttemptState.CONNECTED
        server.streams.add(self)
        self.stream.server_connected(conn, False)

    def _failed(self, failure: Failure) -> None:
        self.pending = None
        if self.state is AttemptState.CLOSED:
            return  # cancelled: the stream ended
        server, ticket = self.server, self.ticket
        assert server is not None and ticket is not None
        error = failure.value
        permanent = False
        if isinstance(error, ConnectError):
            report_connect_error(server, error.kind, error.message)
            permanent = error.kind in PERMANENT and server.config.address.family == UNIX
        else:
            log.failure("unexpected connect failure", failure)
            report_connect_error(server, ConnectKind.OTHER, repr(error))
        step = after_connect_failure(
            self.backend.proxy,
            self.retries,
            self._sync,
            self.connect_timeout,
            server_running=server.available,
            active_servers=self.backend.state.active_count,
            permanent=permanent,
        )
        if step.action is Action.GIVE_UP:
            self.state = AttemptState.WAITING
            self.stream.no_server("SC")
            return
        self.retries += 1
        ticket.note_retry()
        if step.action is Action.REDISPATCH:
            self.redispatched = True
            self.state = AttemptState.WAITING
            self.server = None
            ticket.redispatch()  # _granted() or _refused(), maybe right now
        elif step.delay:  # the turn-around: still connecting (CONNECTING), as HAProxy's TAR
            self.retry_call = self.reactor.callLater(step.delay, self.connect)
        else:
            self.connect()

    def close(self) -> None:
        """The stream ended: stop retrying, cancel a connect, give the slot back. Idempotent."""
        if self.state is AttemptState.CLOSED:
            return
        self.state = AttemptState.CLOSED
        self.stream = ENDED
        server = self.server
        if server is not None:
            server.streams.discard(self)
        call, self.retry_call = self.retry_call, None
        if call is not None and call.active():
            call.cancel()
        pending, self.pending = self.pending, None
        if pending is not None:
            pending.cancel()
        if self.ticket is not None:
            self.ticket.release()

    def shutdown(self, flags: str) -> None:
        """The server's health asks this stream to end (see :meth:`Stream.shutdown`)."""
        if self.state is AttemptState.CONNECTED:
            self.stream.shutdown(flags)


def report_connect_error(server: ServerState, kind: ConnectKind, message: str) -> None:
    """Report a failed connect; log its cause when it differs from the server's last one."""
    previous = server.connect_error
    outcome = Outcome.CONNECT_TIMEOUT if kind is ConnectKind.ETIMEDOUT else Outcome.CONNECT_ERROR
    server.report(outcome, kind.value, message)
    if previous != message:
        log.warn(
            "server {backend}/{server}: {message}",
            backend=server.backend.name,
            server=server.name,
            message=message,
        )
