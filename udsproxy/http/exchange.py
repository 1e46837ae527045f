"""One request and its response: slot, server connection, both bodies streamed, log line.

Phases (a declared order; ``DONE`` is final and reachable from every phase)::

    QUEUED -> SENDING -> WAITING -> RESPONDING -> DONE
    (waiting   (request   (request    (response
     for a      body in    sent, no    head sent
     server)    flight)    response)   to client)
                                                 -> TUNNEL -> DONE
                                                    (101 to an upgrade request:
                                                     raw bytes both ways)

``SENDING`` and ``WAITING`` differ only in whether the client has finished its body; a
server may answer early, so the response phases do not wait for the request's end.

Each request asks its backend for a slot of its own (per-request balancing, maxconn and
the FIFO queue count requests) through a :class:`~udsproxy.stream.ServerAttempt`, the
path TCP sessions take too: it takes a pooled connection when ``http-reuse`` allows or
connects through the shared connect function (retries, redispatch); the slot goes back in
the same reactor turn the exchange ends, whichever way it ends. While ``QUEUED`` the
attempt's state says whether the request waits for a slot or for its connection.

A reused connection that closes before any response byte is a server that timed out its
keep-alive just as we sent: the request is sent once more on a new connection when it is
idempotent and its body is still held (at most :data:`REPLAY_LIMIT` bytes are kept for
that); otherwise it is a 502 ``SH``.

An upgrade request (``Connection: upgrade`` + ``Upgrade``, e.g. WebSocket) answered with
101 becomes a tunnel, as in HAProxy: the 101 is forwarded, the bytes either side sent
after its head follow, then both connections are spliced raw (each transport still the
other's producer) under ``timeout tunnel`` (else ``client``/``server``) with half-closes
passed on. The tunnel keeps its server slot until it closes; its connection is never
pooled. Any other answer to an upgrade request keeps the exchange plain HTTP.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any, List, Optional, Tuple

from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import alsoProvides

from ..log import SessionRecord
from ..log.targets import log_event
from ..logformat.session import SILENT, address_pair, request_line
from ..rules import RuleContext
from ..rules.actions import REJECT, Failed, Reply
from ..rules.context import Slots
from ..rules.lfvalue import RECORD
from ..runtime import Outcome, ServerState, status_index
from ..stream import ServerAttempt, tunnel_deadline, tunnel_idle
from .actions import on_response
from .flow import BATCH, PEER, PIPELINE
from .h11lib import h11
from .hashkey import BodySearch
from .headers import capture_headers, full_items, upgrade_field
from .upstream import END_OF_MESSAGE, ServerConnection

if TYPE_CHECKING:
    from .frontend import ClientConnection

log = Logger()

IDEMPOTENT = frozenset({b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"})
REPLAY_LIMIT = 65536  # request body bytes kept for a resend on a new connection
PRECONNECT_LIMIT = 65536  # body bytes held before the server is connected (then reading pauses)
PRECONNECT = "preconnect"


class Phase(enum.IntEnum):
    QUEUED = 0
    SENDING = 2
    WAITING = 3
    RESPONDING = 4
    TUNNEL = 5
    DONE = 6


class Exchange:
    """One request on a client connection, until its response is sent or it is abandoned."""

    # Slots: one Exchange per request, so its creation and attribute access are hot.
    __slots__ = (
        "client",
        "ctx",
        "backend",
        "settings",
        "pinned",
        "request",
        "method",
        "request_time",
        "t_request",
        "started",
        "phase",
        "attempt",
        "server",
        "upstream",
        "reused",
        "resent",
        "body",
        "body_size",
        "body_search",
        "replayable",
        "bodyless",
        "request_done",
        "trailers",
        "head",
        "target",
        "status",
        "flags",
        "bytes_in",
        "bytes_out",
        "t_response",
        "sent_at",
        "server_seen",
        "upgrade",
        "client_fin",
        "answered",
        "counter",
        "head_size",
        "req_caps",
        "res_caps",
        "res_version",
        "unique_id",
        "server_source",
        "rules",
        "res_items",
    )

    def __init__(
        self, client: ClientConnection, request: Any, head_started: float, bodyless: bool
    ) -> None:
        self.client = client
        ctx = client.ctx
        self.ctx = ctx
        # The route: the frontend's default, until use_backend rules choose another.
        self.backend = ctx.backend
        self.settings = ctx.settings
        self.pinned: Optional[ServerState] = None  # use-server: the server rules chose
        self.request = request
        self.method: bytes = request.method
        now = ctx.reactor.seconds()
        self.request_time = head_started
        self.t_request = int((now - head_started) * 1000)
        self.started = now
        self.phase = Phase.QUEUED
        self.attempt: Optional[ServerAttempt] = None
        self.server: Optional[ServerState] = None  # the server of the slot held, or last tried
        self.upstream: Optional[ServerConnection] = None
        self.reused = False
        self.resent = False
        self.body: List[bytes] = []  # held before the head is sent, kept for a resend
        self.body_size = 0
        self.body_search: Optional[BodySearch] = None  # set while the key may be in the body
        self.replayable = self.method in IDEMPOTENT
        self.bodyless = bodyless  # the head's framing says there is no body
        self.request_done = False
        self.trailers: Any = []
        self.head: Optional[List[Any]] = None  # the request fields to send
        self.target: bytes = request.target
        self.status: Optional[int] = None
        self.flags = "--"
        self.bytes_in = 0  # from the client, body bytes
        self.bytes_out = 0  # to the client, head included
        self.t_response: Optional[int] = None
        self.sent_at = 0.0
        self.server_seen = ctx.sweeper.now
        self.upgrade: Optional[Any] = None  # the (name, value) Upgrade field asked for
        self.client_fin = False  # in a tunnel: the client half-closed
        self.answered = False  # the response is complete while the request body still flows
        # For the log line (see log.SessionRecord): the stream's number, the head's size,
        # the capture slots (when the frontend declares some), the unique ID.
        self.counter = ctx.counters.global_counters.next_stream()
        self.head_size = client.raw_head.size
        log = ctx.log
        wanted = log.request_captures
        self.req_caps = (
            None
            if wanted is None
            else capture_headers(full_items(request.headers), wanted, Slots(log.request_lengths))
        )
        self.res_caps: Optional[Slots] = (
            None if log.response_captures is None else Slots(log.response_lengths)
        )
        self.res_version: Optional[bytes] = None  # the response's, once it came
        self.unique_id: Optional[str] = None
        self.server_source: Optional[Tuple[str, int]] = None
        self.rules: Optional[RuleContext] = None  # made by routing rules, or for %[expr]
        self.res_items: Any = ()  # the response's fields, kept when %[expr] may read them

    def __repr__(self) -> str:
        return f"<Exchange {self.method!r} {self.phase.name} server={self.server!r}>"

    # ----------------------------------------------------------------- slot
    def start(
        self,
        target: bytes,
        head: List[Any],
        key: Optional[bytes],
        body_search: Optional[BodySearch] = None,
    ) -> None:
        """Ask for a slot; the request target and fields to send are ready.

        With ``body_search`` (``balance url_param <p> check_post``) the key may be in the
        body: the slot is asked for once the held body shows it or cannot any more.
        """
        self.target = target
        self.head = head
        if body_search is not None:
            self.body_search = body_search
            return
        self.ask_slot(key)

    def key_from_body(self, chunk: bytes) -> None:
        """check_post: ask for a slot once the body bytes held decide the key."""
        search = self.body_search
        if search is None or self.phase is Phase.DONE:
            return
        # Reading pauses at PRECONNECT_LIMIT: decide there at the latest, never deadlock.
        complete = self.request_done or self.body_size >= PRECONNECT_LIMIT
        decided, key = search.feed(chunk, complete)
        if decided:
            self.body_search = None
            self.ask_slot(key)

    def ask_slot(self, key: Optional[bytes]) -> None:
        """Ask the backend for a slot, balanced on ``key``."""
        backend = self.backend
        if backend is None:
            self.fail(503, "SC")
            return
        bound = self.pinned
        last = self.client.last_server
        if (
            bound is None
            and self.settings.prefer_last_server
            and last is not None
            and last.usable  # HAProxy: not a drained, weight 0 or NOLB server
            and last.has_free_slot
        ):
            bound = last
        ctx = self.ctx
        self.attempt = ServerAttempt(
            backend, self, ctx.reactor, ctx.connector, self.settings.timeouts.connect, self.started
        )
        self.attempt.request(key, bound)

    # ----------------------------------------------------------------- the attempt's stream
    def ready_connection(self, server: ServerState) -> Optional[ServerConnection]:
        """A slot on ``server``: a pooled connection when http-reuse allows, else None."""
        self.server = server
        conn = self.client.private_connection(server)
        if conn is None and not self.resent:
            conn = self.ctx.pools.take(server, self.client.requests == 1, self.settings.reuse)
        return conn

    def server_protocol(self, server: ServerState) -> ServerConnection:
        return ServerConnection(server, self.ctx.pools)

    def no_server(self, flags: str) -> None:
        if self.phase is Phase.DONE:
            return
        self.fail(503, flags)

    def shutdown(self, flags: str) -> None:
        """The server was marked down (``on-marked-down shutdown-sessions``): end now."""
        if self.phase is Phase.DONE:
            return
        if self.phase < Phase.RESPONDING:
            self.fail(503, flags, keep_server=False)
        else:
            if self.flags == "--":
                self.flags = flags
            self.phase = Phase.DONE
            self.release(keep_server=False)
            self.client.abort()
            self.client.exchange_ended(self)

    def attach(self, conn: ServerConnection, reused: bool) -> None:
        """Send the head and what is held of the body; bytes then flow both ways."""
        assert self.head is not None
        self.upstream = conn
        self.reused = reused
        conn.exchange = self
        self.server_seen = self.ctx.sweeper.now
        req = self.request
        if req.http_version == b"1.1" or any(f[1] == b"host" for f in self.head):
            # A bodyless request that asks for no switch is written without h11.
            conn.send_request(
                self.method, self.target, self.head, self.bodyless and self.upgrade is None
            )
        else:
            conn.send_http10_head(self.method, self.target, self.head)
        for chunk in self.body:
            conn.send(h11.Data(data=chunk))
        if not self.replayable or self.body_size > REPLAY_LIMIT:
            self.replayable = False
            self.body = []
        if self.request_done:
            conn.send(end_of_message(self.trailers))
        self.phase = Phase.WAITING if self.request_done else Phase.SENDING
        self.sent_at = self.ctx.reactor.seconds()
        if self.ctx.log.need_server_source:
            self.server_source = address_pair(conn.transport.getHost())  # type: ignore[union-attr]
        client = self.client
        client.gate.release(PRECONNECT)
        # Each side's transport is the other's producer: a full buffer pauses the reader.
        conn.transport.registerProducer(client.gate, True)  # type: ignore[union-attr]
        client.transport.registerProducer(conn.gate, True)  # type: ignore[union-attr]

    server_connected = attach  # what the ServerAttempt calls: one call less per request

    def unpair(self) -> Optional[ServerConnection]:
        """Take the server connection from this exchange: neither side produces for the
        other any more and neither is held back for the other."""
        conn, self.upstream = self.upstream, None
        if conn is None:
            return None
        conn.exchange = None
        for transport in (conn.transport, self.client.transport):
            if getattr(transport, "producer", None) is not None:
                transport.unregisterProducer()  # type: ignore[union-attr]
        self.client.gate.release(PEER)
        if conn.gate is not None:
            conn.gate.release(PEER)
        return conn

    def detach(self, keep: bool) -> None:
        """Leave the server connection: back to its pool when ``keep`` and it is clean."""
        conn = self.unpair()
        if conn is None:
            return
        if keep and conn.reusable and not self.settings.server_close:
            conn.recycle()
            if self.client.keep_private(conn, self.settings.reuse) or self.ctx.pools.put(conn):
                return
        conn.close()

    # ----------------------------------------------------------------- request body
    def request_data(self, data: bytes) -> None:
        self.bytes_in += len(data)
        conn = self.upstream
        if conn is not None:
            conn.send(h11.Data(data=data))
            # Taking our writes is server activity (HAProxy's timeout server counts both
            # ways): an upload longer than the timeout is not a dead server.
            self.server_seen = self.ctx.sweeper.now
            if self.replayable:
                self.body.append(data)
                self.body_size += len(data)
                if self.body_size > REPLAY_LIMIT:
                    self.replayable = False
                    self.body = []
            return
        if self.phase is Phase.DONE:
            return
        self.body.append(data)
        self.body_size += len(data)
        if self.body_size >= PRECONNECT_LIMIT:
            self.client.gate.hold(PRECONNECT)
        if self.body_search is not None:
            self.key_from_body(data)

    def request_end(self, trailers: Any) -> None:
        self.request_done = True
        self.trailers = trailers  # h11's Headers: sent on as they are, not normalized again
        if self.body_search is not None:
            self.key_from_body(b"")  # attach() then sends the whole body and its end
            return
        conn = self.upstream
        if conn is not None:
            conn.send(end_of_message(self.trailers))
            if self.phase is Phase.SENDING:
                self.phase = Phase.WAITING
            elif self.answered:
                self.finish(keep_server=True)  # the early answer's exchange ends here

    # ----------------------------------------------------------------- response
    def server_active(self) -> None:
        self.server_seen = self.ctx.sweeper.now
        if self.phase < Phase.RESPONDING:
            self.body = []  # a response has begun: no resend any more
            self.replayable = False

    def server_event(self, event: Any) -> None:
        if self.answered:
            self.server_protocol_error("data after a complete response")
            return
        kind = type(event)
        client = self.client
        if kind is h11.Data:
            self.bytes_out += client.send_data(event.data)
        elif kind is h11.Response:
            self.server_head(event)
        elif kind is h11.EndOfMessage:
            self.server_end(event.headers)
        elif kind is h11.InformationalResponse:
            if event.status_code == 101:
                self.switch(event)
            elif event.status_code == 100 or event.status_code == 103:
                self.bytes_out += client.send_informational(event)
        # ConnectionClosed: connectionLost follows

    def capture_response(self, response: Any) -> None:
        """``capture response header``: the server's values, as it sent them (the slots
        rules fill stay as they are)."""
        wanted, caps = self.ctx.log.response_captures, self.res_caps
        assert wanted is not None and caps is not None
        capture_headers(full_items(response.headers), wanted, caps)

    def server_head(self, response: Any) -> None:
        """The final response head (h11's Response, or heads.parse_response's)."""
        self.t_response = int((self.ctx.reactor.seconds() - self.sent_at) * 1000)
        self.res_version = response.http_version
        sections = self.settings.response_rules
        if sections is not None:
            self.rewrite_response(response, sections)
            return
        self.status = response.status_code
        if self.res_caps is not None:
            self.capture_response(response)
        if self.ctx.log.need_samples:
            self.res_items = full_items(response.headers)
        self.phase = Phase.RESPONDING
        self.bytes_out += self.client.send_response_head(
            response.status_code,
            response.reason,
            full_items(response.headers),
            getattr(response, "noted", None),
        )

    def server_data(self, data: bytes) -> None:
        """Response body bytes (forwarded around h11: see upstream.ServerConnection)."""
        if self.answered:
            self.server_protocol_error("data after a complete response")
            return
        self.bytes_out += self.client.send_data(data)

    def server_end(self, trailers: Any) -> None:
        """The response ended (trailers included, as parsed)."""
        self.bytes_out += self.client.send_end(trailers)
        server = self.server
        if server is not None and server.backend.report_observers:
            server.report(Outcome.RESPONSE_OK, str(self.status))  # observe layer7 reads it
        if not self.request_done and self.upstream is not None:
            # Answered before the whole body (Rails answering 413 or 422 to an upload): as
            # HAProxy, the body goes on to the server while it reads it; the exchange ends
            # with the body's end, and the client connection lives on.
            self.answered = True
            return
        self.finish(keep_server=True)

    def server_protocol_error(self, reason: str) -> None:
        assert self.server is not None
        self.server.report(Outcome.RESPONSE_INVALID, detail=reason)
        self.ctx.capture_response_error(self, reason)
        if self.phase < Phase.RESPONDING:
            self.fail(502, "PH", keep_server=False)
        else:
            self.truncate("SD")

    def server_lost(self, reason: Failure) -> None:
        conn = self.upstream
        if self.phase < Phase.RESPONDING:
            if (
                conn is not None
                and self.reused
                and conn.response_bytes == 0
                and self.replayable
                and not self.resent
            ):
                self.resend()
                return
            assert self.server is not None
            self.server.report(Outcome.RESPONSE_ABORTED)
            self.fail(502, "SH", keep_server=False)
        else:
            self.truncate("SD" if not reason.check(ConnectionDone) else "SD")

    def resend(self) -> None:
        """The reused connection was already closed by the server: once more, on a new one."""
        self.resent = True
        self.detach(keep=False)
        assert self.attempt is not None
        self.attempt.connect()

    # ----------------------------------------------------------------- tunnel
    def switch(self, response: Any) -> None:
        """101 to an upgrade request: forward it, then splice both connections raw."""
        client = self.client
        conn = self.upstream
        assert conn is not None and self.server is not None
        parser = client.h11  # an upgrade request is always h11's (heads.parse_request)
        if (
            self.upgrade is None
            or parser is None
            or parser.their_state is not h11.MIGHT_SWITCH_PROTOCOL
        ):
            # h11 only accepts a 101 we asked for; one before the request's end is no switch.
            self.server_protocol_error("101 Switching Protocols before the request ended")
            return
        if upgrade_field(full_items(response.headers)) is None:
            # As HAProxy: a 101 must say what it switches to (Connection: upgrade + Upgrade).
            self.server_protocol_error("101 Switching Protocols without Connection: upgrade")
            return
        self.t_response = int((self.ctx.reactor.seconds() - self.sent_at) * 1000)
        self.res_version = response.http_version
        self.status = 101
        if self.res_caps is not None:
            self.capture_response(response)
        self.bytes_out += client.send_switch(response)
        if client.gone or self.phase is Phase.DONE:
            return
        self.phase = Phase.TUNNEL
        conn.tunnel = True
        # From now on a server FIN is a half-close to pass on, not the end (see upstream).
        alsoProvides(conn, IHalfCloseableProtocol)
        self.server_seen = self.ctx.sweeper.now
        client.gate.release(PIPELINE)
        # What each side sent after the switching head belongs to the tunnel.
        early_server = conn.h11.trailing_data[0]
        early_client = client.take_unparsed()
        if early_server:
            self.tunnel_from_server(early_server)
        if early_client and self.phase is Phase.TUNNEL:
            self.tunnel_from_client(early_client)
        if client.eof and self.phase is Phase.TUNNEL:
            self.tunnel_client_fin()

    def tunnel_from_client(self, data: bytes) -> None:
        conn = self.upstream
        if conn is None or conn.transport is None:
            return
        self.bytes_in += len(data)
        self.server_seen = self.ctx.sweeper.now
        BATCH.write(conn.transport, data)

    def tunnel_from_server(self, data: bytes) -> None:
        self.bytes_out += len(data)
        self.server_seen = self.ctx.sweeper.now
        transport = self.client.transport
        if transport is not None and not self.client.gone:
            BATCH.write(transport, data)

    def tunnel_client_fin(self) -> None:
        """The client half-closed: so does the server side (the other way keeps flowing)."""
        if self.client_fin:
            return  # Twisted reports EOF again each time reading resumes
        self.client_fin = True
        self.server_seen = self.ctx.sweeper.now
        conn = self.upstream
        if conn is None or conn.server_fin:
            self.end_tunnel()  # both ways are finished
        elif conn.transport is not None and not conn.closed:
            shut_write(conn.transport, self.client.gate)

    def tunnel_server_fin(self) -> None:
        """The server half-closed: so does the client side."""
        self.server_seen = self.ctx.sweeper.now
        transport = self.client.transport
        conn = self.upstream
        if self.client_fin or transport is None or conn is None:
            self.end_tunnel()
        elif not self.client.gone:
            shut_write(transport, conn.gate)

    def tunnel_client_lost(self, reason: Failure) -> None:
        """The client closed: the server gets what is buffered, then its close."""
        if not reason.check(ConnectionDone) and self.flags == "--":
            self.flags = "CD"
        self.end_tunnel()

    def tunnel_server_lost(self, reason: Failure) -> None:
        """The server closed: the client gets what is buffered, then its close."""
        if not reason.check(ConnectionDone) and self.flags == "--":
            self.flags = "SD"
        self.end_tunnel()

    def end_tunnel(self, abort: bool = False) -> None:
        """Close both sides (flushing unless ``abort``), free the slot, log once."""
        if self.phase is Phase.DONE:
            return
        self.phase = Phase.DONE
        conn = self.unpair()
        if conn is not None:
            if not conn.closed and conn.transport is not None:
                if abort:
                    BATCH.discard(conn.transport)
                    conn.transport.abortConnection()  # type: ignore[attr-defined]
                else:
                    BATCH.flush(conn.transport)
                    conn.transport.loseConnection()
        self.release(keep_server=False)
        client = self.client
        if abort:
            client.abort()
        elif not client.gone:
            client.close()
        if client.exchange is self:
            client.exchange = None
        self.write_log()

    def check_tunnel(self, now: float) -> Optional[float]:
        """Idle tunnel: any byte either way is activity; the smaller timeout decides.

        As HAProxy: once we shut a side's write half (its peer sent FIN), that side is
        waited for under ``timeout client-fin`` / ``server-fin`` (FIN_WAIT), not the tunnel's.
        """
        conn = self.upstream
        server_fin = conn is not None and conn.server_fin
        flags = tunnel_idle(
            self.settings.timeouts, now - self.server_seen, server_fin, self.client_fin
        )
        if flags is not None:
            if self.flags == "--":
                self.flags = flags
            self.end_tunnel(abort=True)
            return None
        return tunnel_deadline(
            self.settings.timeouts, self.server_seen, server_fin, self.client_fin
        )

    # ----------------------------------------------------------------- timeouts
    def check_idle(self, now: float) -> Optional[float]:
        """``timeout server`` over the whole exchange (not while we hold the server back);
        when it would fire if nothing happens, or None."""
        if self.phase is Phase.TUNNEL:
            return self.check_tunnel(now)
        limit = self.settings.server_timeout
        conn = self.upstream
        if limit is None or conn is None or self.phase < Phase.SENDING:
            return None
        if self.answered and PEER not in self.client.gate.reasons:
            # Answered, the body still flowing: the server is waiting for the client (whose
            # timeout applies), unless it stopped taking the body (the client is held).
            self.server_seen = now
            return None
        if conn.gate is not None and PEER in conn.gate.reasons:
            self.server_seen = now  # the client is slow, not the server
            return now + limit
        if now - self.server_seen >= limit:
            if self.server is not None:
                self.server.report(Outcome.RESPONSE_TIMEOUT)
            if self.phase < Phase.RESPONDING:
                self.fail(504, "sH", keep_server=False)
            else:
                self.truncate("sD")
            return None
        return self.server_seen + limit

    # ----------------------------------------------------------------- endings
    def fail(self, status: int, flags: str, keep_server: bool = False) -> None:
        """Answer with the proxy's own ``status`` page (no response byte was sent yet)."""
        self.answer(
            Reply(status, b"", [], page=True, flags=flags), self.head is not None, keep_server
        )

    def answer(self, reply: Reply, backend_chosen: bool, keep_server: bool = False) -> None:
        """Answer with a response the proxy makes (no response byte was sent yet)."""
        if self.phase is Phase.DONE:
            return
        if self.flags == "--":
            self.flags = reply.flags
        self.status = reply.status
        self.phase = Phase.DONE
        self.release(keep_server=keep_server)
        close = not (self.request_done or self.bodyless)
        self.bytes_out += self.client.send_reply(reply, close, backend_chosen)
        self.client.exchange_ended(self)

    # ----------------------------------------------------------------- rules
    def rule_outcome(self, out: Any, backend_chosen: bool) -> None:
        """What an http-request rule decided instead of forwarding the request."""
        counters = self.ctx.counters
        denied = out is REJECT or (type(out) is Reply and out.flags == "PR")  # deny, reject
        if denied:
            counters.dreq += 1
            if backend_chosen and self.backend is not None:
                self.backend.state.dreq += 1
        if out is REJECT:
            self.reject()
            return
        if type(out) is Reply:
            self.answer(out, backend_chosen)
            return
        assert type(out) is Failed
        counters.wrew += 1
        if backend_chosen and self.backend is not None:
            self.backend.state.wrew += 1
        self.rewrite_failed(out, "http-request")
        self.fail(500, "IR")

    def reject(self) -> None:
        """``http-request reject``: the client's connection closes (what earlier requests
        were answered is sent first), nothing answers this one; logged as HAProxy does,
        ``PR--`` with status -1 and the request timer -1."""
        self.flags = "PR"
        self.t_request = -1
        self.phase = Phase.DONE
        self.release(keep_server=False)
        self.client.close()
        self.client.exchange_ended(self)

    def rewrite_failed(self, failed: Failed, keyword: str) -> None:
        """Say why a rule's rewrite was refused (the client only sees a 500)."""
        req = self.request
        line = request_line(req.method, req.target, req.http_version)
        log_event(
            f"frontend '{self.ctx.frontend.name}': {keyword} rewrite refused ({failed.reason}) "
            f"for '{line}': 500",
            "warning",
            self.ctx.sink,
        )

    def set_method(self, method: bytes) -> None:
        """set-method rewrote the request: what is sent, and whether it may be resent."""
        self.method = method
        self.replayable = method in IDEMPOTENT

    def rewrite_response(self, event: Any, sections: Any) -> None:
        """The http-response rules on the server's response head, then the head sent on;
        or the response replaced by the proxy's (``deny``: 502, a failed rewrite: 500)."""
        server = self.server
        self.status = event.status_code  # what %ST says while the rules run
        if self.res_caps is not None:
            self.capture_response(event)  # the server's values, before any rule (HAProxy)
        rctx = self.rules
        if rctx is None:  # (a request always has one when a section has rules)
            rctx = self.rule_context()
        rctx.server = server.name if server is not None else None
        rctx.unique_id = self.unique_id
        rctx.res_version = self.res_version
        if sections.needs_record:
            rec = self.make_record()
            rec.sample = rctx
            rctx.memo[RECORD] = rec
        rctx.status = event.status_code
        # The response is read once: no response field was cached (set_headers not needed).
        rctx.res_headers = full_items(event.headers)
        out = on_response(sections.sections, rctx)
        if out is None:
            self.status = status = rctx.status
            if self.ctx.log.need_samples:
                self.res_items = rctx.res_headers
            self.phase = Phase.RESPONDING
            reason = rctx.reason if rctx.reason is not None else event.reason
            self.bytes_out += self.client.send_response_head(status, reason, rctx.res_headers)
            return
        self.t_response = None  # as HAProxy: no server response was forwarded (Tr -1)
        counters = self.ctx.counters
        backend = self.backend.state if self.backend is not None else None
        if type(out) is Reply:
            counters.dresp += 1
            if backend is not None:
                backend.dresp += 1
            if server is not None:
                server.dresp += 1
            self.answer(out, backend_chosen=True)
            return
        counters.wrew += 1
        if backend is not None:
            backend.wrew += 1
        if server is not None:
            server.wrew += 1
        self.rewrite_failed(out, "http-response")
        self.fail(500, "IH")

    def truncate(self, flags: str) -> None:
        """The response cannot be completed: close the client (never a hang), log it.

        What was received is still delivered (its framing shows the cut); a client that
        does not read (``cD``), or whose body is close-delimited (an HTTP/1.0 client: a clean
        close would make the cut body look whole), is aborted instead.
        """
        if self.phase is Phase.DONE:
            return
        if self.flags == "--":
            self.flags = flags
        self.phase = Phase.DONE
        self.release(keep_server=False)
        writer = self.client.writer
        if flags == "cD" or (writer is not None and writer.close_delimited):
            self.client.abort()
        else:
            self.client.close()
        self.client.exchange_ended(self)

    def finish(self, keep_server: bool) -> None:
        """The response is complete."""
        if self.phase is Phase.DONE:
            return
        self.phase = Phase.DONE
        self.release(keep_server=keep_server and self.request_done)
        self.client.exchange_ended(self)

    def abandon(self, flags: str) -> None:
        """The client went away: free the slot, leave the queue, drop the server connection."""
        if self.phase is Phase.DONE:
            return
        if self.flags == "--":
            self.flags = flags
        self.phase = Phase.DONE
        self.release(keep_server=False)
        self.write_log()

    def release(self, keep_server: bool) -> None:
        """Give back everything the exchange holds, in this reactor turn."""
        attempt = self.attempt
        self.detach(keep=keep_server)
        self.client.gate.release(PRECONNECT)
        self.body = []
        if attempt is not None:
            attempt.close()
        counters = self.ctx.counters
        counters.bin += self.bytes_in
        counters.bout += self.bytes_out
        status = self.status
        if status is not None:
            counters.hrsp[status_index(status)] += 1
        server = self.server
        if server is None:
            if attempt is not None:
                be = attempt.backend.state
                be.req_tot += 1
                if status is not None:
                    be.hrsp[status_index(status)] += 1
            return
        # The server's and backend's counters of this request (``show stat``).
        self.client.last_server = server
        server.note_bytes(self.bytes_in, self.bytes_out)
        t_response = self.t_response
        sent = attempt is not None and attempt.t_connect is not None  # a connection was had
        server.backend.req_tot += 1
        times = None
        if sent:
            server.req_tot += 1
            if t_response is not None and attempt is not None:
                total = int((self.ctx.reactor.seconds() - self.request_time) * 1000)
                times = (attempt.t_queue or 0, attempt.t_connect or 0, t_response, total)
        answered = t_response is not None
        server.note_stream(status, answered, self.flags, times, self.reused if sent else None)

    # ----------------------------------------------------------------- log
    def make_record(self) -> SessionRecord:
        """What the log line (or the unique ID) says of this request now."""
        ctx = self.ctx
        now = ctx.reactor.seconds()
        req = self.request
        backend = self.backend
        attempt = self.attempt
        server = self.server
        client = self.client
        # Filled field by field: CPython matches each keyword argument of a call against
        # the parameters in turn, and the 31 keywords this needs cost ~6x the stores.
        rec = SessionRecord()
        rec.frontend = ctx.frontend.name
        rec.backend = backend.name if backend is not None else None
        rec.server = server.name if server is not None else None
        ip = client.client_ip  # None: a unix-socket client, logged as unix:<listener id>
        if ip is None:
            rec.listener_id = ctx.listener_id
        else:
            rec.client_ip = ip
        rec.client_port = client.client_port
        rec.accept_time = accepted = client.stream_accepted
        rec.request_time = started = self.request_time
        rec.t_request = self.t_request
        if attempt is not None:
            rec.t_queue = attempt.t_queue
            rec.t_connect = attempt.t_connect
            rec.retries = attempt.retries
            rec.redispatched = attempt.redispatched
        rec.t_response = self.t_response
        rec.t_active = int((now - started) * 1000)
        rec.t_total = int((now - accepted) * 1000)
        rec.bytes_read = self.bytes_out
        rec.bytes_in = self.head_size + self.bytes_in  # never 0: never a null session
        rec.termination = self.flags
        rec.actconn = ctx.counters.global_counters.curr_conns
        rec.feconn = ctx.counters.scur
        if backend is not None:
            rec.beconn = backend.state.beconn
            rec.backend_queue = backend.state.qcur
        if server is not None:
            rec.srv_conn = server.scur
            rec.srv_queue = server.qcur
        rec.status = self.status
        rec.request_line = request_line(req.method, req.target, req.http_version)
        rec.request_counter = self.counter
        rec.unique_id = self.unique_id
        rec.request_captures = self.req_caps
        rec.response_captures = self.res_caps
        if ctx.log.need_optional:
            ctx.log.fill(rec, client.local_address(), server, self.server_source)
        if ctx.log.need_samples:
            rec.sample = self.rule_context()
        return rec

    def new_rules(self, items: List[Any]) -> RuleContext:
        """This request's rule context (kept as ``rules``): its head as received, with
        ``items`` its header items, and the stream's capture slots."""
        req = self.request
        rules = self.rules = RuleContext(
            self.client.conn_info(), req.method, req.target, req.http_version, items
        )
        rules.req_caps, rules.res_caps = self.req_caps, self.res_caps
        rules.received = req
        return rules

    def rule_context(self) -> RuleContext:
        """The request as fetches see it, with what is known of it now (``%[expr]``)."""
        rules = self.rules
        if rules is None:
            rules = self.new_rules(full_items(self.request.headers))
        backend = self.backend
        rules.backend = backend.name if backend is not None else None
        rules.server = self.server.name if self.server is not None else None
        rules.unique_id = self.unique_id
        rules.status = self.status
        rules.res_headers = self.res_items
        rules.res_version = self.res_version
        return rules

    def make_unique_id(self) -> str:
        """This request's ID (``unique-id-format``), made once: %ID and the header's value."""
        uid = self.unique_id
        if uid is None:
            uid = self.unique_id = self.ctx.log.unique_id(self.make_record())
        return uid

    def write_log(self) -> None:
        ctx = self.ctx
        if ctx.sink is None:
            return
        rules = self.rules
        level = rules.log_level if rules is not None else None
        if level == SILENT:
            return
        if self.unique_id is None and ctx.log.unique_id_format is not None:
            self.make_unique_id()  # as HAProxy: made for the log if the request had none
        ctx.log.write(self.make_record(), level or "info")


def shut_write(transport: Any, producer: Any) -> None:
    """Half-close ``transport`` after what is queued; its producer (the side that sent FIN)
    has nothing more to give: unregistered, or a paused one would hold the FIN back."""
    BATCH.flush(transport)
    if getattr(transport, "producer", None) is not None:
        transport.unregisterProducer()
    if producer is not None:
        producer.release(PEER)
    transport.loseWriteConnection()


def end_of_message(trailers: Any) -> Any:
    """The request's end for the server: one shared event when there are no trailers."""
    return h11.EndOfMessage(headers=trailers) if trailers else END_OF_MESSAGE
