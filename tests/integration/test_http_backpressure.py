"""Back-pressure in HTTP mode, in process: a slow reader or a slow uploader's server.

The proxy and the backend run in this test's reactor so the test can look at the
transports: toward a client that does not read, the proxy holds at most Twisted's 64 KiB
write buffer plus one read and stops reading the server; toward a server that does not
read an upload, it stops reading the client. Memory stays bounded either way.
"""

from __future__ import annotations

import socket
import textwrap
from typing import Any, List

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.protocol import Factory, Protocol

from tests.integration.test_tcp_backpressure import LIMIT, buffered, sleep
from udsproxy.config.parser import parse_text
from udsproxy.demo.backend import BackendFactory
from udsproxy.service import ProxyService


def start_proxy(sockdir: str) -> ProxyService:
    config = parse_text(
        textwrap.dedent(
            f"""
            defaults
                mode http
                timeout connect 1s
                timeout client 30s
                timeout server 30s
            listen l
                bind {sockdir}/fe.sock
                server b {sockdir}/b.sock
            """
        ),
        "t.cfg",
        {},
    )
    service = ProxyService(config, reactor)
    service.privilegedStartService()
    service.startService()
    return service


def only_client(service: ProxyService) -> Any:
    listener = service.specs[0].listener
    assert listener is not None
    (client,) = listener.factory.ctx.clients
    return client


@pytest_twisted.inlineCallbacks
def test_a_client_reading_a_large_response_slowly_holds_the_server_back(sockdir: str) -> Any:
    """GET 200 MiB without reading: bounded buffers, the server connection is not read."""
    backend = reactor.listenUNIX(f"{sockdir}/b.sock", BackendFactory("b"))  # type: ignore[attr-defined]
    service = start_proxy(sockdir)
    client = socket.socket(socket.AF_UNIX)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.connect(f"{sockdir}/fe.sock")
    client.setblocking(False)
    try:
        client.send(b"GET /large?bytes=209715200 HTTP/1.1\r\nHost: b\r\n\r\n")
        yield sleep(0.5)
        proxy_client = only_client(service)
        upstream = proxy_client.exchange.upstream
        assert upstream is not None
        assert buffered(proxy_client.transport) <= LIMIT
        assert upstream.transport not in reactor.getReaders()  # type: ignore[attr-defined]
        out_before = proxy_client.exchange.bytes_out
        yield sleep(0.3)
        assert proxy_client.exchange.bytes_out - out_before <= LIMIT
        total = 0
        for _ in range(300):
            try:
                total += len(client.recv(1 << 20))
            except BlockingIOError:
                yield sleep(0.01)
            if total > 4 * LIMIT:
                break
        assert total > 4 * LIMIT  # reading resumes the flow
    finally:
        client.close()
        yield sleep(0.05)
        yield service.stopService()
        yield backend.stopListening()


class Stalled(Protocol):
    """A server that reads the request head, then stops reading."""

    def dataReceived(self, data: bytes) -> None:
        self.transport.pauseProducing()  # type: ignore[union-attr]


@pytest_twisted.inlineCallbacks
def test_a_server_not_reading_an_upload_pauses_the_client(sockdir: str) -> Any:
    """POST a large body to a server that stops reading: the client side stops being read."""
    protos: List[Stalled] = []

    class StalledFactory(Factory):
        def buildProtocol(self, addr: Any) -> Stalled:
            proto = Stalled()
            protos.append(proto)
            return proto

    backend = reactor.listenUNIX(f"{sockdir}/b.sock", StalledFactory())  # type: ignore[attr-defined]
    service = start_proxy(sockdir)
    client = socket.socket(socket.AF_UNIX)
    client.connect(f"{sockdir}/fe.sock")
    client.setblocking(False)
    sent = 0
    try:
        client.send(b"POST /upload HTTP/1.1\r\nHost: b\r\nContent-Length: 104857600\r\n\r\n")
        chunk = b"u" * 65536
        for _ in range(400):
            try:
                sent += client.send(chunk)
            except BlockingIOError:
                yield sleep(0.01)
        proxy_client = only_client(service)
        upstream = proxy_client.exchange.upstream
        assert upstream is not None
        assert buffered(upstream.transport) <= LIMIT
        assert proxy_client.transport not in reactor.getReaders()  # type: ignore[attr-defined]
        assert proxy_client.exchange.bytes_in <= sent and sent < 100 * 1024 * 1024
        in_before = proxy_client.exchange.bytes_in
        yield sleep(0.3)
        assert proxy_client.exchange.bytes_in == in_before
    finally:
        client.close()
        yield sleep(0.05)
        yield service.stopService()
        yield backend.stopListening()
