"""TCP sessions in memory: retries, redispatch, turn-around, queue errors, idle timeouts."""

from __future__ import annotations

import errno
import textwrap
from typing import Any, Callable, List, Optional, Tuple

from twisted.internet.address import IPv4Address, UNIXAddress
from twisted.internet.defer import Deferred, fail
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from udsproxy.backend import build_backends
from udsproxy.config.parser import parse_text
from udsproxy.net.connect import connect_error
from udsproxy.runtime import Runtime
from udsproxy.sweeper import IdleSweeper
from udsproxy.tcp import ClientSide, TCPContext, TCPSession


class Transport(StringTransport):
    """A StringTransport with the half-close and abort calls the splice uses."""

    def __init__(self, peer: Any = None) -> None:
        super().__init__(peerAddress=peer or IPv4Address("TCP", "10.0.0.1", 4242))
        self.write_closed = False
        self.aborted = False
        self.protocol: Any = None
        self.close_reason = Failure(Exception("closed"))  # what loseConnection reports

    def loseWriteConnection(self) -> None:
        self.write_closed = True

    def abortConnection(self) -> None:
        self.aborted = True
        self.loseConnection()

    def loseConnection(self) -> None:
        if not self.disconnecting:
            super().loseConnection()
            if self.protocol is not None:
                self.protocol.connectionLost(self.close_reason)

    def fileno(self) -> int:
        return -1


class FakeConnector:
    """Stands in for net.connect: each call takes the next scripted outcome."""

    def __init__(self, outcomes: List[Callable[[Any, Any], Deferred]]) -> None:
        self.outcomes = outcomes
        self.calls: List[str] = []

    def __call__(
        self, reactor: Any, address: Any, factory: Callable[[], Any], timeout: Optional[int]
    ) -> Deferred:
        self.calls.append(address.path)
        return self.outcomes.pop(0)(address, factory)


def refused(address: Any, factory: Any) -> Deferred:
    return fail(connect_error(address, errno.ECONNREFUSED))


def backlog_full(address: Any, factory: Any) -> Deferred:
    return fail(connect_error(address, errno.EAGAIN))


def accepted(address: Any, factory: Any) -> Deferred:
    proto = factory()
    transport = Transport()
    transport.protocol = proto
    proto.makeConnection(transport)
    d: Deferred = Deferred()
    d.callback(proto)
    return d


def setup(cfg: str, outcomes: List[Callable[[Any, Any], Deferred]]) -> tuple:  # type: ignore[type-arg]
    config = parse_text(textwrap.dedent(cfg), "t.cfg", {})
    clock = Clock()
    runtime = Runtime(config, clock)
    fe = config.frontends[0]
    be = config.backend_for(fe)
    assert be is not None
    connector = FakeConnector(outcomes)
    ctx = TCPContext(
        frontend=fe,
        frontend_counters=runtime.frontends[fe.name],
        backend=build_backends(runtime)[be.name],
        reactor=clock,
        sweeper=IdleSweeper(clock, 1000),
        sink=None,
        listener_id=1,
        connector=connector,
    )
    return ctx, clock, runtime, connector


def open_session(ctx: TCPContext, peer: Any = None) -> tuple:  # type: ignore[type-arg]
    client = ClientSide(ctx)
    transport = Transport(peer)
    transport.protocol = client
    client.makeConnection(transport)
    assert isinstance(client.session, TCPSession)
    return client.session, transport


CFG = """
    defaults
        mode tcp
        timeout connect 5s
        timeout client 2s
        timeout server 3s
    listen l
        bind :1
        {extra}
        server a /a.sock
        server b /b.sock
"""


def test_refused_unix_socket_redispatches_at_once() -> None:
    """retries 2 + redispatch, a refuses: b at once, one retry counted (HAProxy logs +1)."""
    ctx, clock, runtime, connector = setup(
        CFG.format(extra="retries 2\n        option redispatch"), [refused, accepted]
    )
    session, client_t = open_session(ctx)
    assert connector.calls == ["/a.sock", "/b.sock"]
    assert session.attempt.retries == 1 and session.attempt.redispatched
    assert session.target is not None and session.target.name == "b"
    be = runtime.backends["l"]
    assert be.server("a").wretr == 1 and be.server("a").wredis == 1 and be.server("a").econ == 1
    assert be.server("b").scur == 1 and be.server("a").scur == 0


def test_hash_algorithm_retries_then_redispatches_on_the_last_retry() -> None:
    """balance source + a curable error (EAGAIN): a, a, then b on the last retry (interval -1)."""
    ctx, clock, runtime, connector = setup(
        CFG.format(extra="retries 2\n        option redispatch\n        balance source"),
        [backlog_full, backlog_full, accepted],
    )
    session, client_t = open_session(ctx, peer=IPv4Address("TCP", "10.0.0.1", 5000))
    first = connector.calls[0]
    assert connector.calls[:2] == [first, first] and connector.calls[2] != first
    assert session.attempt.retries == 2 and session.attempt.redispatched


def test_synchronous_failures_retry_at_once_without_turnaround() -> None:
    """AF_UNIX connect errors are synchronous: retries happen without waiting (as HAProxy)."""
    ctx, clock, runtime, connector = setup(CFG.format(extra="retries 3"), [refused] * 4)
    session, client_t = open_session(ctx)
    assert len(connector.calls) == 4
    assert client_t.disconnecting and session.flags == "SC"
    assert clock.getDelayedCalls() == []


def test_asynchronous_failure_waits_the_turnaround() -> None:
    """A failure reported later (TCP) retries the same server after min(timeout connect, 1s)."""
    pending: List[Deferred] = []

    def later(address: Any, factory: Any) -> Deferred:
        d: Deferred = Deferred()
        pending.append(d)
        return d

    ctx, clock, runtime, connector = setup(CFG.format(extra="retries 1"), [later, accepted])
    session, client_t = open_session(ctx)
    pending[0].errback(
        connect_error(runtime.backends["l"].servers[0].config.address, errno.ECONNREFUSED)
    )
    assert len(connector.calls) == 1
    clock.advance(0.999)
    assert len(connector.calls) == 1
    clock.advance(0.001)
    assert len(connector.calls) == 2 and session.server is not None


class Later:
    """A connect that completes when the test says (``complete``), for the splice tests."""

    def __init__(self) -> None:
        self.pending: List[Any] = []

    def __call__(self, address: Any, factory: Any) -> Deferred:
        d: Deferred = Deferred()
        self.pending.append((d, factory))
        return d

    def complete(self) -> Tuple[Any, Transport]:
        """The server connects: its protocol and transport."""
        d, factory = self.pending.pop(0)
        server = factory()
        server_t = Transport()
        server_t.protocol = server
        server.makeConnection(server_t)
        d.callback(server)
        return server, server_t


def test_splice_registers_producers_and_relays_both_ways() -> None:
    """Held client bytes go to the server on connect; each transport produces for the other."""
    later = Later()
    ctx, clock, runtime, connector = setup(CFG.format(extra=""), [later])
    session, client_t = open_session(ctx)
    session.client.dataReceived(b"early")
    server, server_t = later.complete()
    assert server_t.value() == b"early"
    assert server_t.producer is client_t and client_t.producer is server_t
    server.dataReceived(b"reply")
    assert client_t.value() == b"reply"
    session.client.readConnectionLost()
    assert server_t.write_closed  # the client's FIN reaches the server


def test_both_fins_end_the_session_at_once() -> None:
    """Client and server each sent their FIN (an echo that half-closes back): the session
    ends then, not at a timeout, and logs '--' (HAProxy closes both sides)."""
    later = Later()
    ctx, clock, runtime, connector = setup(CFG.format(extra=""), [later])
    session, client_t = open_session(ctx)
    server, server_t = later.complete()
    for transport in (client_t, server_t):
        transport.close_reason = Failure(ConnectionDone())  # a clean close
    session.client.dataReceived(b"hello")
    session.client.readConnectionLost()
    assert server_t.write_closed and not server_t.disconnecting  # the other way still flows
    server.dataReceived(b"hello")
    server.readConnectionLost()
    assert client_t.value() == b"hello" and client_t.write_closed
    assert client_t.disconnecting and server_t.disconnecting
    assert session.flags == "--" and session not in ctx.sessions
    assert runtime.backends["l"].server("a").scur == 0
    assert clock.getDelayedCalls() == []


def test_idle_timeout_closes_with_cd() -> None:
    """No byte for 'timeout client' (2s, shorter than server's 3s): both sides abort, flags cD."""
    ctx, clock, runtime, connector = setup(CFG.format(extra=""), [accepted])
    session, client_t = open_session(ctx)
    clock.advance(1.0)
    session.client.dataReceived(b"x")
    clock.advance(1.5)
    assert not client_t.aborted
    clock.advance(2.0)
    assert client_t.aborted and session.flags == "cD"
    assert clock.getDelayedCalls() == []
    assert runtime.backends["l"].server("a").scur == 0


def test_a_session_after_an_idle_spell_gets_its_whole_timeout() -> None:
    """The first session on an empty sweeper is stamped with the time it connected, not the
    sweeper's last tick: an idle proxy does not cut it short (it used to, with cD)."""
    ctx, clock, runtime, connector = setup(CFG.format(extra=""), [accepted, accepted])
    session, client_t = open_session(ctx)
    client_t.loseConnection()
    assert len(ctx.sweeper) == 0
    clock.advance(60.0)  # nothing ticks: the sweeper has no member
    session, client_t = open_session(ctx)
    clock.advance(1.5)
    assert not client_t.aborted and session.flags == "--"
    clock.advance(1.0)
    assert client_t.aborted and session.flags == "cD"
    assert clock.getDelayedCalls() == []


def test_queue_timeout_closes_with_sq() -> None:
    """maxconn 1: the second client waits 'timeout queue' then is closed with sQ."""
    cfg = """
        defaults
            mode tcp
            timeout connect 5s
            timeout queue 500ms
        listen l
            bind :1
            server a /a.sock maxconn 1
    """
    ctx, clock, runtime, connector = setup(cfg, [accepted])
    first, _ = open_session(ctx)
    second, second_t = open_session(ctx)
    assert runtime.backends["l"].qcur == 1
    clock.advance(0.5)
    assert second_t.disconnecting and second.flags == "sQ"
    assert runtime.backends["l"].qcur == 0


def test_unix_client_has_no_source_key() -> None:
    """A unix-socket client has no address to hash: 'balance source' falls back to roundrobin."""
    from udsproxy.tcp import client_key

    assert client_key(UNIXAddress(None)) is None
    assert client_key(IPv4Address("TCP", "10.0.0.1", 1)) == bytes([10, 0, 0, 1])


def test_client_fin_timeout_applies_once_the_servers_fin_reached_the_client() -> None:
    """timeout client-fin (500ms) bounds a client that never closes after the server's FIN
    was passed on to it (HAProxy: the client side is then in FIN_WAIT)."""
    cfg = CFG.replace("timeout server 3s", "timeout server 3s\n        timeout client-fin 500ms")
    ctx, clock, runtime, connector = setup(cfg.format(extra=""), [accepted, accepted])
    session, client_t = open_session(ctx)
    session.server_fin()  # the server half-closed: passed on to the client
    assert client_t.write_closed
    clock.advance(1.0)
    assert client_t.aborted and session.flags == "cD"
