"""The client side of HTTP mode: each request parsed and proxied, one exchange at a time.

A client connection reads request heads, makes an :class:`~udsproxy.http.exchange.Exchange`
for each request and answers in order: a pipelined request waits in the head buffer until
the previous response is complete (reading pauses once more than a head's worth is
waiting). A whole common head that is there at the first look is parsed at once
(:func:`~udsproxy.http.heads.parse_request`, h11's verdicts); any other is checked raw as
it grows (``headers.RawHead``) and parsed by a fresh h11 parser for that request, fed with
what followed the last one. Responses are written by a
:class:`~udsproxy.http.writer.ResponseWriter` (h11's framing rules without its send path).

Between requests it applies ``timeout http-request`` (408 for a head that does not
complete in time, and for a new connection that stays silent) and ``timeout
http-keep-alive`` (an idle keep-alive connection closes silently); during an exchange
``timeout client`` covers a client that stops sending its body or stops reading the
response.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, Optional, Set, Tuple

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IHalfCloseableProtocol, IPullProducer
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ..backend import Backend
from ..config.model import Global, Proxy
from ..log import SessionRecord
from ..log.targets import LogSink
from ..logformat.session import SessionLog
from ..net.connect import connect, pending_output
from ..net.probe import peer_closed
from ..routing import (
    Missing,
    Router,
    compile_connection_rules,
    connection_info,
    connection_verdict,
    make_router,
)
from ..rules import ConnInfo, RuleContext
from ..rules.actions import Reply
from ..rules.lfvalue import RECORD
from ..runtime import CAPTURE_BYTES, CapturedError, ProxyCounters, ServerState
from ..stream import client_key
from ..sweeper import IdleSweeper
from . import pages
from .chunks import ChunkError, ChunkScan
from .exchange import PRECONNECT, Exchange, Phase
from .flow import BATCH, OUTPUT, PEER, PIPELINE, ReadGate
from .h11lib import h11
from .headers import (
    CONNECTION_CLOSE,
    HeadError,
    Item,
    RawHead,
    check_request,
    end_to_end_items,
    full_items,
    has_hop_by_hop,
    is_bodyless,
    is_chunked,
    request_upgrade,
    set_item,
    split_absolute_target,
    transfer_coding_status,
    upgrade_field,
    upgrade_fields,
)
from .heads import parse_request
from .settings import HTTPSettings, Route
from .upstream import Pools, ServerConnection
from .writer import ResponseWriter, WriterError, request_keeps_alive

log = Logger()

CLEAN = Failure(ConnectionDone())
# Bytes given to the parser at a time: one buffer, as HAProxy reads a request into one.
FEED = 16384
# Written to a client and not read by it yet beyond which no next request starts
# (Twisted's own high-water mark for a transport's write queue).
OUTPUT_LIMIT = 65536
# Seconds at most that a pipelining client's answered responses wait for the next ones to
# leave with them (TCP_CORK's kernel bound is 200 ms; a server this slow gets no batching).
PIPELINE_HOLD = 0.01
# What a connection's raw head is until its first byte (never fed: replaced before).
NO_HEAD_YET = RawHead(0, 0)
# The backlog of a connection that never kept a byte (never added to: replaced before).
NO_BACKLOG = bytearray()
CONNECTION_KEEP_ALIVE = (b"connection", b"connection", b"keep-alive")
TE_CHUNKED = (b"transfer-encoding", b"transfer-encoding", b"chunked")


class HTTPContext:
    """What every client connection of one HTTP listener shares."""

    def __init__(
        self,
        frontend: Proxy,
        frontend_counters: ProxyCounters,
        backend: Optional[Backend],
        global_: Global,
        reactor: Any,
        sweeper: IdleSweeper,
        pools: Pools,
        sink: Optional[LogSink],
        listener_id: int,
        on_open: Callable[[], None] = lambda: None,
        on_close: Callable[[], None] = lambda: None,
        connector: Callable[..., Any] = connect,
        backends: Optional[Mapping[str, Backend]] = None,
    ) -> None:
        self.frontend = frontend
        self.counters = frontend_counters
        self.backend = backend
        self.settings = HTTPSettings(frontend, backend.proxy if backend else None, global_)
        # Routing: the default route, and the use_backend rules over every HTTP backend
        # (``backends``: the generation's) when the frontend has some.
        self.default_route = Route(backend, self.settings)
        self.router: Optional[Router[Route]] = make_router(
            frontend, backends, lambda be: self.route_to(be, global_), self.default_route
        )
        # Whether each request needs a RuleContext (routing, use-server or http rules).
        self.rules = self.router is not None or any(
            r.servers is not None
            or r.settings.frontend_rules is not None
            or r.settings.backend_rules is not None
            for r in self.all_routes()
        )
        self.connection_rules = compile_connection_rules(frontend.tcp_connection)
        self.reactor = reactor
        self.sweeper = sweeper
        self.pools = pools
        self.sink = sink if sink is not None and sink.enabled else None
        self.log = SessionLog(frontend, frontend_counters, self.sink)
        self.listener_id = listener_id
        self.on_open = on_open
        self.on_close = on_close
        self.connector = connector
        self.clients: Set[ClientConnection] = set()
        self.stopping = False  # a graceful stop: no next request on any connection
        # Set by a reload: the context of the next generation on the same listener, which a
        # keep-alive client moves to between two requests (the new routing applies).
        self.successor: Optional[HTTPContext] = None

    def route_to(self, backend: Backend, global_: Global) -> Optional[Route]:
        """The route to ``backend`` (None: not an HTTP backend)."""
        if backend is self.backend:
            return self.default_route
        if backend.proxy.proxy_mode != "http":
            return None
        return Route(backend, HTTPSettings(self.frontend, backend.proxy, global_))

    def all_routes(self) -> List[Route]:
        if self.router is None:
            return [self.default_route]
        return [self.default_route, *self.router.routes.values()]

    def soft_stop(self) -> None:
        """A graceful stop (HAProxy's soft stop): every response from now on says
        ``Connection: close`` and ends its connection; connections idle between requests
        (or not sent a byte yet) are closed now; requests in flight finish."""
        self.stopping = True
        for route in self.all_routes():
            route.settings.client_close = True
        for client in list(self.clients):
            if client.idle:
                client.close()

    def capture_request_error(self, peer: str, reason: str, data: bytes, position: int) -> None:
        self.counters.ereq += 1
        self.counters.request_errors += 1
        other = self.backend.name if self.backend is not None else ""
        self.counters.last_request_error = capture(
            self.reactor, peer, reason, data, position, other=other
        )

    def capture_response_error(self, exchange: Exchange, reason: str) -> None:
        """Keep what the server sent of an invalid response (h11's unparsed bytes)."""
        backend = exchange.backend
        if backend is not None:
            conn = exchange.upstream
            data = b""
            server = ""
            if conn is not None:
                server = conn.server.name
                try:
                    data = conn.h11.trailing_data[0] if conn.h11 is not None else b""
                except Exception:  # noqa: BLE001 - a capture must never break the exchange
                    data = b""
            state = backend.state
            state.response_errors += 1
            state.last_response_error = capture(
                self.reactor,
                exchange.client.peer_label(),
                reason,
                data,
                -1,
                other=self.frontend.name,
                server=server,
            )


def capture(
    reactor: Any,
    peer: str,
    reason: str,
    data: bytes,
    position: int,
    other: str = "",
    server: str = "",
) -> CapturedError:
    """Keep at most CAPTURE_BYTES around ``position``."""
    if position < 0:
        return CapturedError(
            reactor.seconds(), peer, reason, data[:CAPTURE_BYTES], -1, other, server, len(data)
        )
    start = max(0, position - CAPTURE_BYTES // 2)
    return CapturedError(
        reactor.seconds(),
        peer,
        reason,
        data[start : start + CAPTURE_BYTES],
        position - start,
        other,
        server,
        len(data),
    )


@implementer(IPullProducer)
class OutputDrain:
    """Registered on a client's transport while it does not read: told when its write
    queue has emptied, it lets the connection go on with the requests it sent."""

    def __init__(self, client: ClientConnection) -> None:
        self.client = client

    def resumeProducing(self) -> None:
        client = self.client
        if pending_output(client.transport) <= OUTPUT_LIMIT:
            client.output_drained()

    def stopProducing(self) -> None:
        pass  # the connection is closing: connectionLost cleans up


@implementer(IHalfCloseableProtocol)
class ClientConnection(Protocol):
    """One client connection in HTTP mode."""

    # Slots, not an instance dict: an idle connection costs what its fields do. A class
    # with more than 30 attributes no longer shares its dict's keys between instances in
    # CPython, so a dict cost each connection ~1.6 KB (tools/idle_rss.py). Twisted's
    # Protocol has no slots, so an attribute set elsewhere still lands in a __dict__.
    __slots__ = (
        "accepted",
        "backlog",
        "chunks",
        "client_ip",
        "client_port",
        "closing",
        "closing_since",
        "connected",
        "held",
        "ctx",
        "cycle_start",
        "eof",
        "exchange",
        "ff_value",
        "gate",
        "gone",
        "h11",
        "head_started",
        "last_server",
        "local",
        "output_wait",
        "peer_is_unix",
        "private",
        "processing",
        "raw_head",
        "request_complete",
        "requests",
        "rule_conn",
        "seen",
        "stalled_since",
        "stream_accepted",
        "transport",
        "writer",
    )

    def __init__(self, ctx: HTTPContext) -> None:
        self.ctx = ctx
        self.exchange: Optional[Exchange] = None
        self.writer: Optional[ResponseWriter] = None  # the current request's response
        self.request_complete = False  # the current request's end was seen
        self.requests = 0
        self.last_server: Optional[ServerState] = None
        # http-reuse never: this client's own idle server connections (made when needed).
        self.private: Optional[Dict[ServerState, ServerConnection]] = None
        self.closing = False
        self.gone = False
        self.eof = False
        self.head_started: Optional[float] = None
        self.closing_since = 0.0
        self.held: Any = None  # the hold's timer while pipelined responses are held (next_cycle)
        # Bytes received but not yet given to the parser: what a client pipelines behind the
        # request in progress. The parser gets at most FEED bytes at a time, so a deep
        # pipeline costs the same per request as a shallow one (no re-copying of the whole
        # backlog at each request), and reading pauses once it holds a buffer's worth.
        self.backlog = NO_BACKLOG  # a bytearray of its own from the first byte kept
        self.output_wait: Optional[OutputDrain] = None  # waiting for the client to read
        self.processing = False
        self.stalled_since: Optional[float] = None
        self.client_ip: Optional[str] = None
        self.client_port = 0
        self.ff_value: Optional[bytes] = None  # this client's X-Forwarded-For value
        self.chunks: Optional[ChunkScan] = None  # the current request's chunked body

    # ----------------------------------------------------------------- lifecycle
    def connectionMade(self) -> None:
        ctx = self.ctx
        transport: Any = self.transport
        # The raw head is made with the first byte: an idle connection (thousands of them,
        # waiting for their first request) costs less meanwhile. An h11 parser is made for
        # a request the head parser leaves to h11 (a body, an upgrade, anything unusual).
        self.h11: Any = None
        self.raw_head = NO_HEAD_YET
        self.gate = ReadGate(transport)
        self.accepted = ctx.reactor.seconds()
        # When this request's stream began: the accept, then the end of the previous
        # request (HAProxy's accept date of a keep-alive connection's next stream).
        self.stream_accepted = self.accepted
        self.cycle_start = self.accepted
        self.seen = self.accepted
        peer = transport.getPeer()
        if isinstance(peer, (IPv4Address, IPv6Address)):
            self.client_ip, self.client_port = peer.host, peer.port
        self.peer_is_unix = self.client_ip is None
        self.local: Any = None  # see local_address()
        self.rule_conn: Optional[ConnInfo] = None
        self.read_addresses()
        if ctx.connection_rules and not connection_verdict(
            ctx.connection_rules, RuleContext(self.conn_info())
        ):
            # tcp-request connection reject: not a session, not logged (HAProxy's dcon).
            ctx.counters.dcon += 1
            self.gone = self.closing = True
            transport.loseConnection()
            return
        ff = ctx.settings.forwardfor
        if ff is not None:
            self.ff_value = ff.client_value(self.client_ip)
        ctx.counters.open(self.accepted)
        ctx.on_open()
        ctx.clients.add(self)
        ctx.sweeper.add(self)

    @property
    def idle(self) -> bool:
        """No request in progress and no byte of a next one received."""
        return not (self.exchange is not None or self.closing or self.backlog or self.raw_head.buf)

    def new_parser(self) -> Any:
        """An h11 server connection that parses this client's next request."""
        # h11's own limit sits above ours so that check_raw_head reports it first.
        limit = self.ctx.settings.head_limit + 4
        return h11.Connection(h11.SERVER, max_incomplete_event_size=limit)

    def peer_label(self) -> str:
        if self.client_ip is None:
            return f"unix:{self.ctx.listener_id}"
        return f"{self.client_ip}:{self.client_port}"

    def fill_peer(self, rec: SessionRecord) -> None:
        if self.client_ip is None:
            rec.listener_id = self.ctx.listener_id
        else:
            rec.client_ip, rec.client_port = self.client_ip, self.client_port

    def read_addresses(self) -> None:
        """What the log formats read of this connection's addresses (%fi, %[src] ...),
        read now while the socket is open: the line may be written after it closed."""
        log = self.ctx.log
        if log.need_frontend_addr:
            self.local_address()
        if log.need_samples:
            self.conn_info()

    def local_address(self) -> Any:
        """The listener's address this client reached (None for a unix socket), read while
        the socket is open and kept: only for formats that print it (%fi, %fp)."""
        if self.client_ip is None:
            return None
        local = self.local
        if local is None and not self.gone:
            local = self.local = self.transport.getHost()  # type: ignore[union-attr]
        return local

    def connectionLost(self, reason: Failure = CLEAN) -> None:
        if self.gone:
            return
        self.gone = True
        ex = self.exchange
        if ex is not None:
            self.closing = True
            self.exchange = None
            if ex.phase is Phase.TUNNEL:
                ex.tunnel_client_lost(reason)
            else:
                ex.abandon(abandon_flags(ex))
        elif not self.closing and (self.head_started is not None or self.requests == 0):
            # Gone before a complete head (or before any byte): HAProxy logs every such
            # session as 400 CR-- "<BADREQ>"; dontlognull drops those that sent nothing.
            self.log_raw_error(400, "CR", 0)
        self.closing = True
        if self.held is not None:
            BATCH.discard(self.transport)  # nothing left to write to: drop, then stop holding
            self.release_output()
        if self.private:
            for conn in list(self.private.values()):
                conn.owner = None
                conn.close()
            self.private = None
        ctx = self.ctx
        ctx.sweeper.discard(self)
        ctx.clients.discard(self)
        ctx.counters.close()
        ctx.on_close()

    def readConnectionLost(self) -> None:
        """The client sent FIN: it may still wait for the answer (``echo ... | nc``)."""
        self.eof = True
        ex = self.exchange
        if ex is not None and ex.phase is Phase.TUNNEL:
            ex.tunnel_client_fin()
            return
        if ex is not None and ex.phase < Phase.RESPONDING:
            gone = self.peer_is_unix and peer_closed(self.transport.fileno())  # type: ignore[union-attr]
            if not ex.request_done or gone or ex.settings.abortonclose:
                self.exchange = None
                ex.abandon(abandon_flags(ex))
                self.abort()
                return
        if ex is not None and ex.answered and not ex.request_done and not self.backlog:
            # Answered early, and the client stopped before its body's end: that body can
            # never be finished, so neither can the exchange (its slot is freed now).
            self.exchange = None
            ex.abandon("CD")
            self.abort()
            return
        if self.raw_head is NO_HEAD_YET:  # not a byte was sent
            if self.requests == 0:
                # HAProxy answers and logs 400 CR-- (dontlognull drops the line).
                self.write_raw_error(400, "CR")
            else:
                self.close()  # a keep-alive client leaving between requests
            return
        if not self.backlog and self.h11 is not None:
            # (else the backlog's last piece brings the end: give_backlog)
            try:
                self.h11.receive_data(b"")
            except RuntimeError:
                pass
        if self.exchange is None:
            self.process()
            if self.exchange is None and not self.closing:
                self.close()

    def writeConnectionLost(self) -> None:
        pass

    def hold_output(self) -> None:
        """Hold this client's responses (see next_cycle) for at most PIPELINE_HOLD."""
        BATCH.hold(self.transport)
        self.held = self.ctx.reactor.callLater(PIPELINE_HOLD, self.release_output)

    def release_output(self) -> None:
        """Write what is held for this client and stop holding."""
        timer, self.held = self.held, None
        if timer is not None and timer.active():
            timer.cancel()
        if self.transport is not None:
            BATCH.release(self.transport)

    def close(self) -> None:
        """Close once what is written has been sent."""
        if not self.closing:
            self.closing_since = self.ctx.sweeper.now
        self.closing = True
        if self.transport is not None:
            BATCH.flush(self.transport)
            self.transport.loseConnection()

    def abort(self) -> None:
        """Close now, dropping unsent bytes (a truncated response must not look complete)."""
        self.closing = True
        if self.transport is not None:
            BATCH.discard(self.transport)
            self.transport.abortConnection()  # type: ignore[attr-defined]

    # ----------------------------------------------------------------- reading
    def dataReceived(self, data: bytes) -> None:
        if self.gone:
            return  # refused by a tcp-request connection rule, closing
        with BATCH:
            self.received(data)

    def received(self, data: bytes) -> None:
        self.seen = self.ctx.sweeper.now
        if self.raw_head is NO_HEAD_YET:
            settings = self.ctx.settings
            # The head being received: checked as it grows (linear), parsed when whole.
            self.raw_head = RawHead(settings.head_limit, settings.maxhdr)
        ex = self.exchange
        if ex is not None and ex.phase is Phase.TUNNEL:
            ex.tunnel_from_client(data)
            return
        if self.backlog or self.output_wait is not None or (ex is not None and ex.request_done):
            # A request behind the one in progress: kept until that one is answered.
            self.keep(data)
        elif ex is None and len(data) > FEED:
            self.give(data[:FEED])
            self.keep(data[FEED:])
        elif not self.give(data):
            return
        self.process()

    def keep(self, data: bytes) -> None:
        """Hold bytes for later requests; beyond a buffer's worth, stop reading (HAProxy)."""
        if self.backlog is NO_BACKLOG:
            self.backlog = bytearray()
        self.backlog += data
        if len(self.backlog) > self.ctx.settings.head_limit:
            self.gate.hold(PIPELINE)

    def give(self, data: bytes) -> bool:
        """Hand bytes to the parser (and to the head and chunk checks); False on an error."""
        if self.exchange is None:
            if self.head_started is None:
                self.head_started = self.ctx.reactor.seconds()
            self.raw_head.feed(data)
            if self.h11 is None:
                return True  # parsed once whole (_process)
        else:
            chunks = self.chunks
            if chunks is not None and not chunks.done:
                try:  # before h11: nothing of a chunk whose size overflows is parsed
                    chunks.feed(data)
                except ChunkError as exc:
                    self.protocol_error(exc.reason)
                    return False
        self.h11.receive_data(data)
        return True

    def give_backlog(self) -> bool:
        """Move the next FEED bytes of the backlog to the parser; False when none is left."""
        backlog = self.backlog
        if not backlog:
            return False
        piece = bytes(backlog[:FEED])
        del backlog[:FEED]  # CPython drops a bytearray's head without moving the rest
        if len(backlog) <= self.ctx.settings.head_limit:
            self.gate.release(PIPELINE)
        if not self.give(piece):
            return False
        if not backlog and self.eof and self.h11 is not None:
            try:  # the client's FIN comes after what it sent
                self.h11.receive_data(b"")
            except RuntimeError:
                pass
        return True

    def take_unparsed(self) -> bytes:
        """Every byte received and not parsed (after a 101 they belong to the tunnel)."""
        conn = self.h11
        data = (conn.trailing_data[0] if conn is not None else bytes(self.raw_head.buf)) + bytes(
            self.backlog
        )
        self.backlog = NO_BACKLOG
        self.gate.release(PIPELINE)
        if self.held is not None:
            self.release_output()  # a tunnel's bytes are never held (see next_cycle)
        return data

    def output_blocked(self) -> bool:
        """Whether the client has not read a buffer's worth of what we wrote.

        As HAProxy: no next request starts and reading pauses until the client reads,
        so a client that pipelines and never reads pins a bounded amount of memory.
        """
        if self.output_wait is not None:
            return True
        transport: Any = self.transport
        if pending_output(transport) <= OUTPUT_LIMIT:
            return False
        if self.held is not None:
            self.release_output()  # nothing is gained holding output for a client not reading
        self.gate.hold(OUTPUT)
        self.output_wait = OutputDrain(self)
        transport.registerProducer(self.output_wait, False)  # told when the buffer empties
        return True

    def output_drained(self) -> None:
        """The client read what we wrote: go on with the requests it sent meanwhile."""
        wait, self.output_wait = self.output_wait, None
        if wait is None:
            return
        transport: Any = self.transport
        if transport is not None and transport.producer is wait:
            transport.unregisterProducer()
        self.gate.release(OUTPUT)
        with BATCH:
            self.process()

    def process(self) -> None:
        """Handle every event h11 has for us now."""
        if self.processing:
            return
        self.processing = True
        try:
            self._process()
        finally:
            self.processing = False

    def _process(self) -> None:
        while not self.closing:
            ex = self.exchange
            conn = self.h11  # None until a request is left to h11
            if ex is None and conn is None:
                raw = self.raw_head
                if not raw.buf and not (self.backlog and self.give_backlog()):
                    return  # nothing of a next request yet (or not a byte yet)
                if self.requests and self.output_blocked():
                    return  # output_drained() comes back here
                if not raw.looked:
                    # The first look at this head's bytes: a whole head that is common and
                    # well formed is parsed at once, without RawHead's checks or h11 (it
                    # passes both: heads.parse_request). Others are checked as they grow.
                    raw.looked = True
                    end = raw.buf.find(b"\r\n\r\n") + 4
                    if 4 <= end <= raw.limit + 4:
                        request = parse_request(raw.buf, end, raw.maxhdr)
                        if request is not None:
                            raw.take(end)  # what follows is the next request's
                            self.start_exchange(request)
                            self.request_has_no_body()
                            continue
                try:
                    if not raw.check():
                        if self.give_backlog():
                            continue
                        if self.eof and raw.buf.strip():
                            # A head cut short by the client's close: HAProxy's 400 CR--.
                            self.write_raw_error(400, "CR")
                        return
                except HeadError as exc:
                    self.bad_request(exc, bytes(raw.buf))
                    return
                conn = self.h11 = self.new_parser()
                conn.receive_data(bytes(raw.buf))
                if self.eof and not self.backlog:
                    conn.receive_data(b"")
            elif ex is not None and ex.request_done:
                return  # a pipelined request waits for this response
            try:
                event: Any = conn.next_event()
            except h11.RemoteProtocolError as exc:
                # h11 hints 501 for a Transfer-Encoding it does not take (HAProxy: 400/422).
                self.protocol_error(str(exc), exc.error_status_hint == 501)
                return
            if event is h11.NEED_DATA or event is h11.PAUSED:
                if event is h11.NEED_DATA and self.give_backlog():
                    continue
                return
            kind = type(event)
            if kind is h11.Data:
                assert ex is not None
                ex.request_data(event.data)
            elif kind is h11.EndOfMessage:
                assert ex is not None
                self.request_ended(ex, event.headers)
            elif kind is h11.Request:
                self.start_exchange(event)
                self.request_has_no_body()
            elif kind is h11.ConnectionClosed:
                if ex is None:
                    self.close()
                return

    def request_has_no_body(self) -> None:
        """Nothing follows a bodyless request's head: its end needs no parser event (h11's
        would cost as much as a small response's). What the client sent after it is the
        next request's."""
        ex = self.exchange
        if ex is not None and ex.bodyless and ex.upgrade is None and not ex.request_done:
            self.request_ended(ex, ())

    def request_ended(self, ex: Exchange, trailers: Any) -> None:
        self.request_complete = True
        ex.request_end(trailers)
        if ex.phase is Phase.DONE and self.exchange is ex:  # answered before the end
            self.exchange = None
            self.next_cycle()

    # ----------------------------------------------------------------- requests
    def start_exchange(self, request: Any) -> None:
        items = full_items(request.headers)
        # The fields the header rules read (framing, hop-by-hop, Host): those the head
        # parser picked out (heads.NOTED), else all of h11's.
        probe = getattr(request, "noted", items)
        try:
            check_request(request.method, request.target, probe)
        except HeadError as exc:
            self.ctx.capture_request_error(self.peer_label(), exc.reason, b"", -1)
            if exc.status != 405:
                # HAProxy's parser refuses these heads: 400 (422), logged as any refused
                # head ("fe/<NOSRV> -1/-1/-1/-1/0 400 0 ... PR-- ... <BADREQ>"), then close.
                # CONNECT's 405 is a request we do not serve, logged as a request.
                self.write_raw_error(exc.status, self.refused_flags(exc.flags))
                return
            refused: Optional[HeadError] = exc
        else:
            refused = None
        self.requests += 1
        started = self.head_started if self.head_started is not None else self.ctx.reactor.seconds()
        self.head_started = None
        ex = Exchange(self, request, started, is_bodyless(probe))
        self.exchange = ex
        self.ctx.counters.note_request(ex.started)
        version = request.http_version
        self.writer = ResponseWriter(request.method, version, request_keeps_alive(version, probe))
        if refused is not None:  # CONNECT: 405
            ex.fail(refused.status, self.refused_flags(refused.flags))
            return
        chunked = is_chunked(probe)
        if chunked:
            # The body bytes that came with the head, checked before anything is sent on;
            # later ones in received().
            self.chunks = ChunkScan()
            try:
                self.chunks.feed(self.h11.trailing_data[0])
            except ChunkError as exc:
                self.protocol_error(exc.reason)
                return
        ctx = self.ctx
        target = request.target
        if ctx.rules:
            rctx = self.apply_rules(ex, request, items)
            if rctx is None:
                return  # answered
            items, target = rctx.headers, rctx.target  # type: ignore[assignment]
            probe = items  # rewritten by rules: every field is read again
        target, fields = self.request_head(request, target, items, probe, ex, chunked)
        settings = ex.settings
        hash_key = settings.hash_key
        if hash_key is None:  # balance source hashes the client address; others ignore it
            key = client_key(self.transport.getPeer()) if settings.source_key else None  # type: ignore[union-attr]
            ex.start(target, fields, key)
            return
        key, search = hash_key.for_request(ex.method, target, items)
        if (
            search is not None
            and self.h11 is not None
            and self.h11.client_is_waiting_for_100_continue
        ):
            # As HAProxy: waiting for the body, answer 100 ourselves; the server sees no Expect.
            ex.bytes_out += self.emit(self.writer.informational, 100, b"Continue", [])
            fields = [f for f in fields if f[1] != b"expect"]
        ex.start(target, fields, key, search)

    def apply_rules(self, ex: Exchange, request: Any, items: List[Item]) -> Optional[RuleContext]:
        """The frontend's http-request rules, use_backend, the backend's http-request rules
        and use-server, in HAProxy's order. The request as rewritten (kept for the
        response rules), or None when the request was answered: a rule's reply, a failed
        rewrite (500), a computed backend name that names no backend (503, and a log line
        naming it)."""
        ctx = self.ctx
        rctx = ex.new_rules(items)
        if ctx.log.unique_id_format is not None:
            # %[unique-id] in a rule makes it then; else it is made after routing.
            def make_unique_id() -> str:
                backend, chosen = rctx.backend, ex.backend
                if backend is None:
                    ex.backend = None  # before routing %b names the frontend (HAProxy)
                uid = ex.make_unique_id()  # (its record names a backend in the rules too)
                ex.backend, rctx.backend = chosen, backend
                return uid

            rctx.unique_id_maker = make_unique_id
        rules = ctx.settings.frontend_rules
        if rules is not None and (rules.request or rules.redirects):
            if rules.request_record:
                self.give_record(ex, rctx)
            out = rules.on_request(rctx)
            if out is not None:
                ex.backend = None  # answered by the frontend: logged as <frontend>/<NOSRV>
                ex.rule_outcome(out, backend_chosen=False)
                return None
        route = ctx.default_route
        if ctx.router is not None:
            chosen = ctx.router.select(rctx)
            if type(chosen) is Missing:
                chosen.log(ctx.frontend.name, "503", ctx.sink)
                ex.backend = None
                ex.fail(503, "SC")
                return None
            route = chosen  # type: ignore[assignment]
            ex.backend = route.backend
            ex.settings = route.settings
        if route.backend is not None:
            rctx.backend = route.backend.name
        rules = route.settings.backend_rules
        if rules is not None and (rules.request or rules.redirects):
            if rules.request_record:
                self.give_record(ex, rctx)
            out = rules.on_request(rctx)
            if out is not None:
                ex.rule_outcome(out, backend_chosen=True)
                return None
        if rctx.method is not request.method:
            ex.set_method(rctx.method)
        servers = route.servers
        if servers is not None:
            ex.pinned = servers.pick(rctx)
        return rctx

    def give_record(self, ex: Exchange, rctx: RuleContext) -> None:
        """The session record as it is now, for rule values printing log-format variables."""
        backend = rctx.backend  # None before routing: %b and be_name name the frontend
        rec = ex.make_record()
        rec.backend = rctx.backend = backend
        rec.sample = rctx
        rctx.memo[RECORD] = rec

    def conn_info(self) -> ConnInfo:
        """This connection as rules see it (made at its first rule, kept)."""
        info = self.rule_conn
        if info is None:
            info = self.rule_conn = connection_info(
                self.transport, self.ctx.frontend.name, self.ctx.listener_id
            )
        return info

    def request_head(
        self,
        request: Any,
        target: bytes,
        items: List[Item],
        probe: List[Item],
        ex: Exchange,
        chunked: bool,
    ) -> Tuple[bytes, List[Item]]:
        """The target and fields to send: hop-by-hop removed, framing and forwarding added.

        An upgrade request (``Connection: upgrade`` with ``Upgrade``, e.g. WebSocket) keeps
        both fields, so that the server may answer 101 and the exchange becomes a tunnel.
        """
        settings = ex.settings
        if probe is items or has_hop_by_hop(probe):
            fields = end_to_end_items(items, settings.keep)
        else:
            fields = list(items)  # nothing hop-by-hop: every field goes on
        upgrade = request_upgrade(probe)
        absolute = split_absolute_target(target)
        if absolute is not None:
            authority, target = absolute
            fields = set_item(fields, b"host", authority)
        elif request.http_version != b"1.1" and not settings.server_close:
            # HTTP/1.0 (sent on as it is when it has no Host): ask the server to keep the
            # connection, as HAProxy does, so that it can be pooled.
            fields.append(CONNECTION_KEEP_ALIVE)
        if chunked:
            fields.append(TE_CHUNKED)
        if self.ctx.log.unique_id_format is not None:
            uid = ex.make_unique_id()
            rctx = ex.rules
            if rctx is not None:
                rctx.unique_id, rctx.unique_id_maker = uid, None  # (no cycle left)
            header = settings.unique_id_header
            if header is not None:
                fields.append((header[0], header[1], uid.encode("latin-1", "replace")))
        ff = settings.forwardfor
        if ff is not None:
            # The connection's value is for its default route's rule; another backend's
            # rule (use_backend) may except other networks.
            value = (
                self.ff_value
                if ff is self.ctx.settings.forwardfor
                else ff.client_value(self.client_ip)
            )
            field = ff.item_for(value, fields)
            if field is not None:
                fields.append(field)
        if upgrade is not None:
            ex.upgrade = upgrade
            fields += upgrade_fields(upgrade)
        elif settings.server_close:
            fields.append(CONNECTION_CLOSE)
        return target, fields

    def bad_request(self, error: HeadError, data: bytes) -> None:
        """Refuse a head before h11 parsed it: 400, the log line, and close."""
        self.ctx.capture_request_error(self.peer_label(), error.reason, data, error.position)
        self.ctx.counters.note_request(self.ctx.reactor.seconds())  # HAProxy counts it too
        self.write_raw_error(400, self.refused_flags(error.flags))

    def protocol_error(self, reason: str, coding: bool = False) -> None:
        """A request h11 refused (``coding``: for its Transfer-Encoding), or a chunked body
        that broke its framing."""
        ex = self.exchange
        if ex is None:
            # h11 may have taken the head out of its buffer: the raw head kept beside it.
            data = bytes(self.raw_head.buf) or (self.h11.trailing_data[0] if self.h11 else b"")
            self.ctx.capture_request_error(self.peer_label(), reason, data, -1)
            status = transfer_coding_status(data) if coding else 400
            self.write_raw_error(status, self.refused_flags("PR"))
            return
        self.ctx.capture_request_error(self.peer_label(), reason, b"", -1)
        if ex.phase < Phase.RESPONDING:
            ex.fail(400, "CR")
        else:
            ex.truncate("CD")

    def refused_flags(self, flags: str) -> str:
        """A refused head's termination flags: as HAProxy 2.6, ``PR`` while the client's
        connection is open, ``CR`` once it had half-closed (or when ``flags`` says so)."""
        return "CR" if self.eof else flags

    def write_raw_error(self, status: int, flags: str) -> None:
        """An error page when no request was parsed: bytes written as they are, then close."""
        page = self.ctx.settings.pages.raw(status, backend_chosen=False)
        BATCH.write(self.transport, page)
        self.ctx.counters.note_response(status)
        # HAProxy 2.6 logs %B 0 for a refused head (its "<BADREQ>" line), the page unsent.
        self.log_raw_error(status, flags, 0 if status in (400, 422) else len(page))
        self.close()

    def log_raw_error(self, status: int, flags: str, sent: int) -> None:
        """The session line of a connection that ended before a complete request head."""
        log = self.ctx.log
        null = self.raw_head is NO_HEAD_YET  # not a byte came
        if log.sink is None or log.format is None or (null and log.dontlognull):
            return  # as HAProxy: no line, and no request number taken for it
        now = self.ctx.reactor.seconds()
        started = self.head_started if self.head_started is not None else now
        rec = SessionRecord(
            frontend=self.ctx.frontend.name,
            backend=None,
            server=None,
            accept_time=self.stream_accepted,
            request_time=started,
            t_request=-1,
            t_total=int((now - self.stream_accepted) * 1000),
            t_active=int((now - started) * 1000),
            bytes_read=sent,
            bytes_in=0 if null else 1,
            termination=flags,
            actconn=self.ctx.counters.global_counters.curr_conns,
            feconn=self.ctx.counters.scur,
            status=status,
            request_counter=self.ctx.counters.global_counters.next_stream(),
        )
        self.fill_peer(rec)
        if log.need_optional:
            log.fill(rec, self.local_address())
        if log.need_samples:  # no request: only the connection's fetches have a value
            rec.sample = RuleContext(self.conn_info())
        self.ctx.log.write(rec)

    # ----------------------------------------------------------------- writing
    def emit(self, produce: Callable[..., bytes], *args: Any) -> int:
        """Write what the response writer makes of ``args``; bytes written."""
        try:
            data = produce(*args)
        except WriterError as exc:
            server = self.exchange.server if self.exchange is not None else None
            log.warn(
                "response from {server} to client {peer} aborted: {error}",
                server=server.name if server is not None else "-",
                peer=self.peer_label(),
                error=str(exc),
            )
            self.abort()
            return 0
        if data and not self.gone:
            BATCH.write(self.transport, data)
            return len(data)
        return 0

    def send_response_head(
        self, status: int, reason: bytes, items: List[Item], noted: Optional[List[Item]] = None
    ) -> int:
        """``noted``: the fields a head parser picked out (framing: see start_exchange)."""
        if noted is not None and not has_hop_by_hop(noted):
            fields = list(items)  # nothing hop-by-hop (the usual response): all go on
        else:
            fields = end_to_end_items(items)
            if is_chunked(items if noted is None else noted):
                # h11 framed it by Transfer-Encoding, which wins (RFC 9112 section 6.3): a
                # Content-Length beside it is stale, and a proxy removes it.
                fields = [f for f in fields if f[1] != b"content-length"]
        ex = self.exchange
        if (ex.settings if ex is not None else self.ctx.settings).client_close:
            fields.append(CONNECTION_CLOSE)
        assert self.writer is not None
        return self.emit(self.writer.head, status, reason, fields)

    def send_data(self, data: bytes) -> int:
        assert self.writer is not None
        return self.emit(self.writer.data, data)

    def send_end(self, trailers: Any) -> int:
        assert self.writer is not None
        return self.emit(self.writer.end, full_items(trailers) if trailers else ())

    def send_informational(self, response: Any) -> int:
        fields = end_to_end_items(full_items(response.headers))
        assert self.writer is not None
        return self.emit(self.writer.informational, response.status_code, response.reason, fields)

    def send_switch(self, response: Any) -> int:
        """Forward a 101 to the upgrade request: the connection is a tunnel from now on."""
        items = full_items(response.headers)
        fields = end_to_end_items(items)
        upgrade = upgrade_field(items)
        assert upgrade is not None and self.writer is not None  # Exchange.switch checked it
        fields += upgrade_fields(upgrade)
        return self.emit(self.writer.informational, 101, response.reason, fields)

    def send_error(self, status: int, close: bool) -> int:
        """The proxy's own page for ``status`` as the response to the current request."""
        ex = self.exchange
        # The backend is chosen once the request passed the frontend's checks (Exchange.start).
        return self.send_reply(page_reply(status), close, ex is not None and ex.head is not None)

    def send_reply(self, reply: Reply, close: bool, backend_chosen: bool) -> int:
        """A response the proxy makes: its page for a status (the errorfile of the backend
        once chosen, else of the frontend; else built in), a file's raw response, or
        fields and a body (``return``, ``redirect``, ``deny ... string``)."""
        ex = self.exchange
        settings = ex.settings if ex is not None else self.ctx.settings
        status = reply.status
        close = close or status in pages.CLOSING or settings.client_close
        if self.gone:
            return 0
        writer = self.writer
        raw = reply.raw
        if reply.page:
            raw = settings.pages.custom(status, backend_chosen)
            if raw is not None and reply.fields:
                raw = pages.with_fields(raw, reply.fields)
            elif raw is None and (writer is None or writer.started):
                raw = pages.raw(status)
        if raw is not None or writer is None or writer.started:
            # Raw bytes whose framing we do not know (an errorfile's): then close.
            if raw is None:
                self.abort()  # never half a response after another one's head
                return 0
            BATCH.write(self.transport, raw)
            self.close()
            return len(raw)
        if reply.page:
            reason = pages.PAGES[status][0].encode()
            fields = [(name, name, value) for name, value in pages.headers(status, close)]
            fields += reply.fields
            body = pages.body(status)
        else:
            reason = reply.reason
            fields = reply.fields + [CONNECTION_CLOSE] if close else reply.fields
            body = reply.body
        sent = self.emit(writer.head, status, reason, fields)
        if body:
            sent += self.emit(writer.data, body)
        sent += self.emit(writer.end)
        return sent

    # ----------------------------------------------------------------- between exchanges
    def exchange_ended(self, ex: Exchange) -> None:
        """Log the exchange; start the next cycle when both sides allow it, else close."""
        ex.write_log()
        if self.closing or self.gone:
            if self.exchange is ex:
                self.exchange = None
            return
        writer = self.writer
        if ex.bodyless and writer is not None and writer.done and not self.request_complete:
            return  # answered before the (empty) body's end was seen: process() goes on
        if self.exchange is ex:
            self.exchange = None
        self.next_cycle()

    def next_cycle(self) -> None:
        """Start reading the next request when both sides allow it, else close."""
        conn = self.h11
        raw = self.raw_head
        writer = self.writer
        if (
            writer is not None
            and writer.done
            and writer.keep_alive
            and not self.ctx.stopping
            and self.request_complete
            and (not self.eof or self.backlog or (conn.trailing_data[0] if conn else raw.buf))
        ):
            if self.ctx.successor is not None:
                self.follow_reload()
            # The next head starts with what the client sent after this one: what h11 held
            # after its request (a parsed head left its rest in the raw head already, at
            # most FEED bytes), the backlog later, piece by piece. Between messages a
            # keep-alive connection has no parser state.
            if conn is not None:
                self.h11 = None
                raw.reset(conn.trailing_data[0])
            self.writer = None
            self.chunks = None
            self.request_complete = False
            self.stalled_since = None
            now = self.ctx.sweeper.now
            self.cycle_start = self.seen = now
            pending = raw.buf or self.backlog
            self.stream_accepted = self.ctx.reactor.seconds()
            self.head_started = self.stream_accepted if pending else None
            # A client that pipelines: its responses are held (flow.WriteBatch.hold) while
            # its next requests are already here, and written together once it has no
            # request left waiting: one send instead of one per response. A hold lasts at
            # most PIPELINE_HOLD (a slow server must not hold back earlier answers) and
            # never keeps more than 16 KiB back.
            if pending:
                if self.held is None:
                    self.hold_output()
            elif self.held is not None:
                self.release_output()
            if not self.processing:
                self.process()
        else:
            self.close()

    def follow_reload(self) -> None:
        """Between two requests: move to the newest generation's context of this listener,
        so the next request follows the reloaded config (counters and limits move too)."""
        old = new = self.ctx
        while new.successor is not None:
            new = new.successor
        if self.private:  # kept for servers of the old generation
            for conn in list(self.private.values()):
                conn.owner = None
                conn.close()
            self.private = None
        old.clients.discard(self)
        old.counters.close()
        old.on_close()
        self.ctx = new
        new.counters.open(new.reactor.seconds())
        new.on_open()
        new.clients.add(self)
        # Checked within the (possibly shorter) period of the new config: its timeouts may
        # be shorter than the check time the old one's gave this connection.
        new.sweeper.add(self)
        if self.ff_value is not None or new.settings.forwardfor is not None:
            ff = new.settings.forwardfor
            self.ff_value = ff.client_value(self.client_ip) if ff is not None else None
        self.read_addresses()  # the new config's formats may print more of them

    def private_connection(self, server: ServerState) -> Optional[ServerConnection]:
        """This client's own idle connection to ``server`` (http-reuse never)."""
        private = self.private
        return private.pop(server, None) if private else None

    def keep_private(self, conn: ServerConnection, reuse: str) -> bool:
        """Keep ``conn`` for this client only, when http-reuse is never."""
        if reuse != "never" or self.gone:
            return False
        private = self.private
        if private is None:
            private = self.private = {}
        old = private.get(conn.server)
        if old is not None and old is not conn:
            old.owner = None
            old.close()
        conn.owner = self
        private[conn.server] = conn
        return True

    def forget(self, conn: ServerConnection) -> None:
        """A private idle connection closed."""
        private = self.private
        if private and private.get(conn.server) is conn:
            del private[conn.server]

    # ----------------------------------------------------------------- timeouts
    def check_idle(self, now: float) -> Optional[float]:
        """Expire what is due; when the next of this connection's timeouts would fire."""
        settings = self.ctx.settings
        ex = self.exchange
        if ex is not None:
            next_deadline = ex.check_idle(now)
            if (
                self.exchange is not ex
                or settings.client_timeout is None
                or ex.phase is Phase.TUNNEL
            ):
                return next_deadline
            client_limit: float = settings.client_timeout
            upstream = ex.upstream
            if upstream is not None and upstream.gate is not None and PEER in upstream.gate.reasons:
                # The client does not read the response.
                if self.stalled_since is None:
                    self.stalled_since = now
                elif now - self.stalled_since >= client_limit:
                    ex.truncate("cD")
                    return None
                return earliest(next_deadline, self.stalled_since + client_limit)
            self.stalled_since = None
            held = self.gate.reasons
            if not ex.request_done and PEER not in held and PRECONNECT not in held:
                # (PEER, PRECONNECT: the proxy stopped reading, the client is not idle.)
                if now - self.seen >= client_limit:
                    if ex.phase < Phase.RESPONDING:
                        ex.fail(408, "cD")
                    else:
                        ex.truncate("cD")
                    return None
                return earliest(next_deadline, self.seen + client_limit)
            return next_deadline
        if self.closing:
            # Closing after what is written is sent: a client that does not read it is cut
            # after timeout client-fin (else client), not kept forever.
            limit = settings.timeouts.client_fin
            if limit is None or self.gone:
                return None
            if now - self.closing_since >= limit:
                self.abort()
                return None
            return self.closing_since + limit
        if self.head_started is None:
            if self.requests == 0:
                limit = settings.request_timeout
                if limit is not None:
                    if now - self.cycle_start >= limit:
                        self.request_timeout()
                        return None
                    return self.cycle_start + limit
            else:
                limit = settings.keep_alive_timeout
                if limit is not None:
                    if now - self.cycle_start >= limit:
                        self.close()  # an idle keep-alive connection closes silently
                        return None
                    return self.cycle_start + limit
            return None
        limit = settings.request_timeout
        if limit is not None:
            if now - self.head_started >= limit:
                self.request_timeout()
                return None
            return self.head_started + limit
        return None

    def request_timeout(self) -> None:
        """408: the head did not arrive in time."""
        self.ctx.counters.ereq += 1
        self.write_raw_error(408, "cR")


def page_reply(status: int) -> Reply:
    """The proxy's own page for ``status`` (its errorfile, else the built-in one)."""
    return Reply(status, b"", [], page=True)


def earliest(a: Optional[float], b: Optional[float]) -> Optional[float]:
    """The earlier of two deadlines, either of which may be None (no deadline)."""
    if a is None:
        return b
    if b is None:
        return a
    return a if a < b else b


def abandon_flags(ex: Exchange) -> str:
    """Termination flags of an exchange whose client went away, by its phase."""
    if ex.phase is Phase.QUEUED:
        return ex.attempt.abort_flags if ex.attempt is not None else "CQ"
    return "CD"


class HTTPFactory(Factory):
    """Builds the client side of HTTP mode for one listener."""

    noisy = False

    def __init__(self, ctx: HTTPContext) -> None:
        self.ctx = ctx

    def buildProtocol(self, addr: Any) -> ClientConnection:
        return ClientConnection(self.ctx)
