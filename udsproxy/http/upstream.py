"""Server connections (an h11 client each) and the per-server keep-alive pools.

A :class:`ServerConnection` serves one exchange at a time; between exchanges it is idle,
either in its server's shared :class:`ServerPool` or, with ``http-reuse never``, kept by
the client connection that opened it. Which idle connection a request may take is
HAProxy's ``http-reuse``:

- ``never``: only connections of the same client connection;
- ``safe`` (default): "the first request of a session is always sent over its own
  connection, and only subsequent requests may be dispatched over other existing
  connections";
- ``aggressive``: a first request may take an idle connection that has already been
  reused at least once (the server has shown it keeps connections alive);
- ``always``: any idle connection.

A response body announced with Content-Length is forwarded *around* the server-side h11
(:meth:`ServerConnection.raw_body`): h11 copies every byte into and out of its receive
buffer and makes an event per chunk and one for the end, most of a large response's cost
and a good part of a small one's. The byte count is all the framing there is; the client side still
goes through its h11, and after the last byte the server connection gets a fresh h11
(a keep-alive connection between messages has no state beyond "idle").

An idle connection is closed after ``pool-purge-delay`` (default 5 s, so that the proxy,
not the server, closes idle connections: a server's own keep-alive timeout would race with
a new request), and at most ``pool-max-conn`` are kept per server (-1: no limit), within
what recent traffic needed plus ``pool-low-conn`` (:meth:`ServerPool.put`).
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

from twisted.internet.error import ConnectionDone
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure

from ..runtime import ServerState
from .chunks import ChunkError, ChunkScan
from .flow import BATCH, ReadGate
from .h11lib import Headers, h11
from .headers import full_items, is_chunked, tokens
from .heads import parse_response
from .writer import request_keeps_alive, serialize_request

if TYPE_CHECKING:
    from ..sweeper import IdleSweeper
    from .exchange import Exchange

CLEAN = Failure(ConnectionDone())
# Free descriptors beyond which the idle connections are not even counted before one more
# is kept (they are bounded per server by recent concurrency anyway; EMFILE reclaims).
HEADROOM_PLENTY = 4096
PLACEHOLDER_HOST = (b"host", b"host", b"-")
END_OF_MESSAGE = h11.EndOfMessage()  # shared: the end of a request without trailers
# Fields in a response head the head parser takes (more: h11's, which has no limit).
RESPONSE_FIELDS = 200


class ServerConnection(Protocol):
    """One connection to a server; ``exchange`` is the request it serves, None when idle."""

    # Reads come as views of the transport's read buffer (``net.connect._ReadInto``): a
    # body forwarded around h11 (or through a tunnel) is written to the client before the
    # read returns, uncopied; whatever h11 or the chunk check keeps is copied first.
    transient_reads = True

    def __init__(self, server: ServerState, pools: Pools) -> None:
        self.server = server
        self.pools = pools
        # The exchange's h11 client, made only when h11 frames something: a request body,
        # HTTP/1.0, an upgrade, a response heads.parse_response leaves to it (see parser()).
        self.h11: Any = None
        # A bodyless request written without h11, until its response head is read: what h11
        # is told if it must read that response (method, target, fields).
        self.sent: Optional[Tuple[bytes, bytes, List[Any]]] = None
        self.keep_request = False  # that request lets the server keep the connection
        self.exchange: Optional[Exchange] = None
        self.gate: Optional[ReadGate] = None
        self.requests = 0  # exchanges completed on this connection
        self.idle_since = 0.0
        self.response_bytes = 0  # bytes received during the current exchange
        self.closed = False
        self.lost: Optional[Failure] = None
        self.owner: Optional[Any] = None  # the client connection keeping it (http-reuse never)
        self.tunnel = False  # after a 101: raw bytes to the exchange, never pooled again
        self.server_fin = False  # in a tunnel: the server half-closed
        self.raw_left = 0  # body bytes still expected while forwarding around h11
        self.raw_keep: Optional[bool] = None  # set once a body went around h11
        self.chunks: Optional[ChunkScan] = None  # the current response's chunked body

    def __repr__(self) -> str:
        return f"<ServerConnection {self.server!r} requests={self.requests}>"

    def connectionMade(self) -> None:
        self.gate = ReadGate(self.transport)

    def parser(self) -> Any:
        """The exchange's h11 client; made now if needed, and told of a request written
        without it (its bytes were sent already: h11's own are dropped)."""
        conn = self.h11
        if conn is None:
            conn = self.h11 = h11.Connection(h11.CLIENT)
            sent, self.sent = self.sent, None
            if sent is not None:
                method, target, fields = sent
                conn.send(
                    h11.Request(method=method, target=target, headers=Headers(fields), _parsed=True)
                )
                conn.send(END_OF_MESSAGE)
        return conn

    def send_request(self, method: bytes, target: bytes, fields: List[Any], bodyless: bool) -> int:
        """Write an HTTP/1.1 request head; the bytes written. A bodyless request's are
        h11's bytes, written without it (``writer.serialize_request``); one with a body is
        framed by h11."""
        if bodyless:
            self.sent = (method, target, fields)
            self.keep_request = request_keeps_alive(b"1.1", fields)
            data = serialize_request(method, target, fields)
        else:
            data = self.parser().send(
                h11.Request(method=method, target=target, headers=Headers(fields), _parsed=True)
            )
        BATCH.write(self.transport, data)
        return len(data)

    def send(self, event: Any) -> int:
        """Serialize ``event`` (body data or the end) with h11 and write it; the bytes
        written. A bodyless request written by send_request has nothing more to send."""
        conn = self.h11
        if conn is None:
            return 0
        data = conn.send(event)
        if data:
            BATCH.write(self.transport, data)
            return len(data)
        return 0

    def send_http10_head(self, method: bytes, target: bytes, fields: List[Any]) -> int:
        """An HTTP/1.0 request without Host, forwarded as it is (as HAProxy does).

        h11 only writes HTTP/1.1, which must have a Host: it is told of the request with a
        placeholder Host (for its framing of the body and of the response; its bytes are
        dropped) and the head is written here as the client sent it.
        """
        self.parser().send(
            h11.Request(
                method=method,
                target=target,
                headers=Headers(fields + [PLACEHOLDER_HOST]),
                _parsed=True,
            )
        )
        head = b"".join(
            [method, b" ", target, b" HTTP/1.0\r\n"]
            + [raw + b": " + value + b"\r\n" for raw, _, value in fields]
            + [b"\r\n"]
        )
        BATCH.write(self.transport, head)
        return len(head)

    def dataReceived(self, data: bytes) -> None:
        with BATCH:
            self.received(data)

    def received(self, data: bytes) -> None:
        ex = self.exchange
        if ex is None:  # an idle server must not speak unasked: not reusable
            BATCH.discard(self.transport)
            self.transport.abortConnection()  # type: ignore[union-attr]
            return
        if self.tunnel:
            ex.tunnel_from_server(data)
            return
        self.response_bytes += len(data)
        ex.server_active()
        if self.raw_left:
            self.raw_body(ex, data)
            return
        data = bytes(data)
        conn = self.h11
        if conn is None:
            if self.sent is not None and self.read_head(ex, data):
                return
            conn = self.parser()
        chunks = self.chunks
        if chunks is not None and not chunks.done:
            try:  # before h11: nothing of a chunk whose size overflows is parsed
                chunks.feed(data)
            except ChunkError as exc:
                ex.server_protocol_error(exc.reason)  # not pooled: the exchange drops it
                return
        conn.receive_data(data)
        self.pump()

    def read_head(self, ex: Exchange, data: bytes) -> bool:
        """The first bytes of the response to a request written without h11: a whole
        common head is read at once (heads.parse_response, h11's verdicts) and its body
        counted around h11; False when h11 must read it (then it is told of the request)."""
        end = data.find(b"\r\n\r\n") + 4
        if end < 4:
            return False
        parsed = parse_response(data, end, ex.method, RESPONSE_FIELDS)
        if parsed is None:
            return False
        response, length, keep = parsed
        self.sent = None
        ex.server_head(response)
        if self.exchange is ex:
            self.raw_left = length
            self.raw_keep = keep
            self.raw_body(ex, data[end:])
        return True

    def pump(self) -> None:
        """Hand parsed events to the exchange until h11 needs data or the exchange ends."""
        ex = self.exchange
        while ex is not None and self.exchange is ex:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as exc:
                if self.lost is not None:
                    ex.server_lost(self.lost)  # closed before a complete response
                else:
                    ex.server_protocol_error(str(exc))
                return
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            if type(event) is not h11.Response:
                ex.server_event(event)
                continue
            length, keep = raw_framing(ex.method, event)
            if length is None and chunked_body(ex.method, event):
                # The body bytes that came with the head, checked before the head is sent
                # on: an overflowing size there is a 502, not a cut response.
                self.chunks = ChunkScan()
                try:
                    self.chunks.feed(self.h11.trailing_data[0])
                except ChunkError as exc:
                    ex.server_protocol_error(exc.reason)
                    return
            ex.server_event(event)
            if length is not None and self.exchange is ex:
                self.start_raw(ex, length, keep)
                return

    def start_raw(self, ex: Exchange, length: int, keep: bool) -> None:
        """Forward a Content-Length body around h11: counting is all its framing needs."""
        self.raw_left = length
        self.raw_keep = keep
        # The body bytes that came with the head are taken out of h11's buffer (one Data
        # event, at most ``length`` bytes), which would otherwise keep them, up to a whole
        # read, until the response ends: 64 KiB per large response in flight.
        event = self.h11.next_event()
        data = event.data if type(event) is h11.Data else b""
        if len(data) == length and self.h11.trailing_data[0]:
            self.raw_keep = False  # bytes after the response: the server spoke unasked
        self.raw_body(ex, data)

    def raw_body(self, ex: Exchange, data: bytes) -> None:
        """Body bytes of the current response, counted against its Content-Length."""
        left = self.raw_left
        if len(data) > left:
            data = data[:left]
            self.raw_keep = False  # bytes after the response: the server spoke unasked
        self.raw_left = left - len(data)
        if data:
            ex.server_data(data)
        if not self.raw_left and self.exchange is ex:
            ex.server_end(())

    def connectionLost(self, reason: Failure = CLEAN) -> None:
        self.closed = True
        self.lost = reason
        ex = self.exchange
        if ex is None:
            self.pools.discard(self)
            return
        if self.tunnel:
            ex.tunnel_server_lost(reason)
            return
        if self.raw_left:
            ex.server_lost(reason)  # closed before the announced length
            return
        if self.h11 is not None:
            try:
                self.h11.receive_data(b"")  # a close-delimited body ends here
            except RuntimeError:
                pass
            self.pump()
        if self.exchange is ex:
            ex.server_lost(reason)

    # IHalfCloseableProtocol, declared on the instance once it becomes a tunnel: a plain
    # HTTP connection's FIN must stay a whole close (a close-delimited body ends there).
    def readConnectionLost(self) -> None:
        if self.server_fin:
            return  # Twisted reports EOF again each time reading resumes
        self.server_fin = True
        if self.exchange is not None:
            self.exchange.tunnel_server_fin()
        elif not self.closed and self.transport is not None:
            self.transport.loseConnection()

    def writeConnectionLost(self) -> None:
        pass

    @property
    def reusable(self) -> bool:
        """Both directions finished cleanly and both sides keep the connection open."""
        if self.closed or self.tunnel:
            return False
        conn = self.h11
        if self.raw_keep is not None:  # the response body went around h11
            # Our request's end was sent and did not ask for a close.
            sent = self.keep_request if conn is None else conn.our_state is h11.DONE
            return self.raw_keep and not self.raw_left and sent
        return (
            conn is not None
            and conn.our_state is h11.DONE
            and conn.their_state is h11.DONE
            and not conn.trailing_data[0]  # bytes after the response: spoke unasked
        )

    def recycle(self) -> None:
        """Ready the connection for its next request (between messages a keep-alive
        connection has no state: an h11 client is made again when one is needed)."""
        self.h11 = None
        self.sent = None
        self.raw_keep = None
        self.chunks = None
        self.requests += 1
        self.response_bytes = 0

    def close(self) -> None:
        """Close now: an unfinished exchange leaves nothing a next request could read."""
        self.exchange = None
        if not self.closed and self.transport is not None:
            BATCH.discard(self.transport)  # a request it will never finish must not leave
            self.transport.abortConnection()  # type: ignore[attr-defined]


def raw_framing(method: bytes, response: Any) -> Tuple[Optional[int], bool]:
    """The body length a response announces with Content-Length when that frames it (else
    None), and whether the server keeps the connection (h11's rule: HTTP/1.1 and no
    ``Connection: close``)."""
    if method == b"HEAD" or response.status_code in (204, 304):
        return None, False
    length: Optional[int] = None
    keep = response.http_version == b"1.1"
    for _, name, value in full_items(response.headers):
        if name == b"content-length":
            length = int(value)  # h11 checked it: digits, one value
        elif name == b"transfer-encoding":
            return None, False
        elif name == b"connection" and b"close" in tokens(value):
            keep = False
    return length, keep


def chunked_body(method: bytes, response: Any) -> bool:
    """Whether h11 reads this response's body as chunked (its ``_body_framing``)."""
    if method == b"HEAD" or response.status_code in (204, 304):
        return False
    return is_chunked(full_items(response.headers))


class ServerPool:
    """Idle keep-alive connections to one server, most recently used last."""

    def __init__(self, server: ServerState) -> None:
        self.server = server
        self.idle: List[ServerConnection] = []
        self.max_idle = server.config.pool_max_conn
        self.low_conn = server.config.pool_low_conn
        self.purge_delay = server.config.pool_purge_delay / 1000.0
        # HAProxy's estimate of the connections this server needs (est_need_conns): the
        # peak of those in use, per purge period, decaying by halves.
        self.est_need = 0
        self.max_used = 0
        self.period_start = 0.0

    def take(self, first: bool, mode: str) -> Optional[ServerConnection]:
        """An idle connection this request may use under ``http-reuse mode``, or None."""
        if mode == "never" or (first and mode == "safe"):
            return None
        for i in range(len(self.idle) - 1, -1, -1):
            conn = self.idle[i]
            if first and mode == "aggressive" and conn.requests < 2:
                continue
            del self.idle[i]
            return conn
        return None

    def put(self, conn: ServerConnection, now: float) -> bool:
        """Keep ``conn`` idle; False when the pool is full (the caller closes it).

        Besides ``pool-max-conn``, as HAProxy (``srv_add_to_idle_list``): in use plus idle
        stays within what recent traffic needed, plus ``pool-low-conn``. Without it, clients
        that each open a new connection (``Connection: close``, whose first request
        ``http-reuse safe`` never sends over an idle connection) would leave thousands of
        idle connections to the server for ``pool-purge-delay``: file descriptors, and the
        server's own limits.

        ``pool-low-conn`` in HAProxy is also the number of idle connections below which a
        thread does not steal another thread's; with one thread (HAProxy's ``nbthread 1``,
        and udsproxy) there is nothing to steal, and what remains is this extra allowance:
        sequential ``Connection: close`` clients leave ``pool-low-conn + 1`` idle server
        connections, as HAProxy 2.6 does.
        """
        if self.max_idle >= 0 and len(self.idle) >= self.max_idle:
            return False
        used = self.server.scur  # requests on the server now, the one ending included
        if now - self.period_start >= self.purge_delay:
            self.est_need = max((self.est_need + self.max_used) // 2, self.max_used)
            self.max_used = used
            self.period_start = now
        elif used > self.max_used:
            self.max_used = used
        if used + len(self.idle) > max(used, self.est_need, self.max_used) + self.low_conn:
            return False
        conn.idle_since = now
        self.idle.append(conn)
        return True

    def purge(self, now: float) -> None:
        """Close the connections idle for ``pool-purge-delay`` or longer."""
        while self.idle and now - self.idle[0].idle_since >= self.purge_delay:
            self.idle.pop(0).close()


class Pools:
    """Every server's pool, and the sweeper membership that purges them.

    Idle connections hold file descriptors that connected clients may need for their own
    server connections: ``headroom`` (set by the process from its fd budget) says how many
    descriptors are free beyond what the clients connected now may need; an idle
    connection is kept only while that is positive (HAProxy's ``pool-high-fd-ratio`` in
    spirit), and :meth:`reclaim` closes idle ones when a connect meets EMFILE anyway.
    """

    def __init__(self, sweeper: IdleSweeper, headroom: Optional[Callable[[], int]] = None) -> None:
        self.sweeper = sweeper
        self.by_server: Dict[ServerState, ServerPool] = {}
        self.headroom = headroom
        # Servers of older generations (a reload): their successor, None if removed or
        # changed; a connection of theirs coming back idle is kept for the successor.
        self.retired: weakref.WeakKeyDictionary[ServerState, Optional[ServerState]] = (
            weakref.WeakKeyDictionary()
        )
        self.reloaded = False  # a server was retired (then put() looks it up in retired)

    def pool(self, server: ServerState) -> ServerPool:
        pool = self.by_server.get(server)
        if pool is None:
            pool = self.by_server[server] = ServerPool(server)
        return pool

    def take(self, server: ServerState, first: bool, mode: str) -> Optional[ServerConnection]:
        pool = self.by_server.get(server)
        return pool.take(first, mode) if pool is not None else None

    def put(self, conn: ServerConnection) -> bool:
        # Until a reload retires a server, no look at ``retired`` at all: a
        # WeakKeyDictionary's len() and ``in`` are Python code, and put runs per request.
        retired = self.retired
        if self.reloaded and retired and conn.server in retired:
            successor = self.successor(conn.server)
            if successor is None:
                return False  # its server was removed or changed by a reload: close it
            conn.server = successor
        headroom = self.headroom
        if headroom is not None:
            room = headroom()
            # Counting the idle connections walks every pool: only when room is short.
            if room < HEADROOM_PLENTY and room <= self.idle_count():
                return False  # the descriptor is worth more to a client than to the pool
        if self not in self.sweeper:
            # First: an empty sweeper's ``now`` is only refreshed by add(). A pool that
            # ends up with nothing idle leaves the sweeper at its first check.
            self.sweeper.add(self)
        return self.pool(conn.server).put(conn, self.sweeper.now)

    def successor(self, server: ServerState) -> Optional[ServerState]:
        """The server of the current generation that ``server`` became (None: gone)."""
        current: Optional[ServerState] = server
        while current is not None and current in self.retired:
            current = self.retired[current]
        return current

    def retire(self, server: ServerState, successor: Optional[ServerState]) -> None:
        """A reload replaced ``server``: its idle connections go to ``successor`` (an
        unchanged server) or are closed (removed or changed)."""
        self.retired[server] = successor
        self.reloaded = True
        pool = self.by_server.pop(server, None)
        if pool is None:
            return
        if successor is None:
            while pool.idle:
                pool.idle.pop().close()
            return
        target = self.pool(successor)
        for conn in pool.idle:
            conn.server = successor
        target.idle = sorted(target.idle + pool.idle, key=lambda c: c.idle_since)

    def forget_server(self, server: ServerState) -> None:
        """A server was removed: close its idle connections and drop its pool."""
        pool = self.by_server.pop(server, None)
        if pool is not None:
            while pool.idle:
                pool.idle.pop().close()

    def discard(self, conn: ServerConnection) -> None:
        """A connection closed while idle: forget it."""
        pool = self.by_server.get(conn.server)
        if pool is not None and conn in pool.idle:
            pool.idle.remove(conn)
        if conn.owner is not None:
            conn.owner.forget(conn)

    def idle_count(self) -> int:
        return sum(len(p.idle) for p in self.by_server.values())

    def reclaim(self, wanted: int = 1) -> int:
        """Close up to ``wanted`` idle connections, the longest idle first; how many closed.

        Called when a connect fails with EMFILE: an accepted client must reach a server
        before an idle connection is kept for a later one.
        """
        closed = 0
        while closed < wanted:
            oldest: Optional[ServerPool] = None
            for pool in self.by_server.values():
                if pool.idle and (
                    oldest is None or pool.idle[0].idle_since < oldest.idle[0].idle_since
                ):
                    oldest = pool
            if oldest is None:
                break
            oldest.idle.pop(0).close()
            closed += 1
        return closed

    def check_idle(self, now: float) -> Optional[float]:
        next_purge: Optional[float] = None
        for pool in self.by_server.values():
            pool.purge(now)
            if pool.idle:
                when = pool.idle[0].idle_since + pool.purge_delay
                if next_purge is None or when < next_purge:
                    next_purge = when
        if next_purge is None:
            self.sweeper.discard(self)
        return next_purge

    def close_all(self) -> None:
        for pool in self.by_server.values():
            while pool.idle:
                pool.idle.pop().close()
        self.sweeper.discard(self)
