"""Back-pressure in TCP mode, in process: a client that stops reading pauses its server.

The proxy runs in this test's reactor so the test can look at the session's transports:
what it holds for a non-reading client stays within the transport's write high-water mark
plus one read, and the server-side transport is paused (its reads stop) until the client
reads.
"""

from __future__ import annotations

import socket
import textwrap
from typing import Any, List

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.protocol import Factory, Protocol

from udsproxy.config.parser import parse_text
from udsproxy.net.connect import READ_SIZE, WRITE_HIGH_WATER
from udsproxy.service import ProxyService

CHUNK = 65536
LIMIT = WRITE_HIGH_WATER + READ_SIZE  # the transport's bufferSize plus one read


class Flood(Protocol):
    """A backend that writes as fast as its transport lets it (a producer), forever."""

    def connectionMade(self) -> None:
        self.transport.registerProducer(self, True)  # type: ignore[union-attr]
        self.sent = 0
        self.paused = False
        self.resumeProducing()

    def resumeProducing(self) -> None:
        self.paused = False
        while not self.paused and self.transport is not None and self.sent < 64 * 1024 * 1024:
            self.transport.write(b"x" * CHUNK)
            self.sent += CHUNK

    def pauseProducing(self) -> None:
        self.paused = True

    def stopProducing(self) -> None:
        self.paused = True


def sleep(seconds: float) -> Deferred:
    d: Deferred = Deferred()
    reactor.callLater(seconds, d.callback, None)  # type: ignore[attr-defined]
    return d


def buffered(transport: Any) -> int:
    """Bytes a Twisted transport holds but has not written yet."""
    return (
        len(transport.dataBuffer)
        + sum(len(x) for x in transport._tempDataBuffer)
        - transport.offset
    )


@pytest_twisted.inlineCallbacks
def test_a_client_that_does_not_read_pauses_the_server(sockdir: str) -> Any:
    """With the client not reading, the proxy holds at most 64 KiB + one read toward it."""
    floods: List[Flood] = []

    class FloodFactory(Factory):
        def buildProtocol(self, addr: Any) -> Flood:
            proto = Flood()
            floods.append(proto)
            return proto

    backend_port = reactor.listenUNIX(f"{sockdir}/flood.sock", FloodFactory())  # type: ignore[attr-defined]
    config = parse_text(
        textwrap.dedent(
            f"""
            defaults
                mode tcp
                timeout connect 1s
                timeout client 30s
                timeout server 30s
            listen l
                bind {sockdir}/fe.sock
                server flood {sockdir}/flood.sock
            """
        ),
        "t.cfg",
        {},
    )
    service = ProxyService(config, reactor)
    service.privilegedStartService()
    service.startService()
    client = socket.socket(socket.AF_UNIX)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.setblocking(False)
    client.connect(f"{sockdir}/fe.sock")
    try:
        for _ in range(100):
            yield sleep(0.02)
            if floods and floods[0].sent > 4 * CHUNK:
                break
        listener = service.specs[0].listener
        assert listener is not None
        yield sleep(0.3)  # let the buffers fill
        sent_before = floods[0].sent
        factory: Any = listener.factory
        (session,) = factory.ctx.sessions
        assert buffered(session.client_t) <= LIMIT
        assert session.client_t.producerPaused  # the client side paused its producer...
        assert session.server_t not in reactor.getReaders()  # ...the server side: no reads
        yield sleep(0.3)
        assert floods[0].sent - sent_before <= 2 * LIMIT  # the server is held back
        # once the client reads, data flows again
        total = 0
        for _ in range(200):
            try:
                total += len(client.recv(1 << 20))
            except BlockingIOError:
                yield sleep(0.01)
            if total > 8 * CHUNK:
                break
        assert total > 8 * CHUNK
    finally:
        client.close()
        yield service.stopService()
        yield backend_port.stopListening()
