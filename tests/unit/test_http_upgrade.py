"""HTTP mode in memory: Upgrade (WebSocket) turns an exchange into a tunnel, or keeps HTTP."""

from __future__ import annotations

import h11

from tests.unit.http_harness import FakeServer, Harness

ONE = """
frontend fe
    bind 127.0.0.1:8080
    default_backend be
backend be
    timeout tunnel 30s
    server a /s/a.sock maxconn 1
"""

UPGRADE = (
    b"GET /chat HTTP/1.1\r\nHost: app\r\nConnection: keep-alive, Upgrade\r\n"
    b"Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n\r\n"
)
SWITCH = (
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
)


def upgraded(h: Harness, early_client: bytes = b"", early_server: bytes = b"") -> tuple:
    """A client whose upgrade request the server accepted; returns (client, server)."""
    client = h.client()
    client.send(UPGRADE + early_client)
    (server,) = h.connector.servers
    server.transport.clear()
    server.feed(SWITCH + early_server)
    return client, server


def test_upgrade_request_keeps_its_upgrade_fields() -> None:
    """The server sees Connection: upgrade and the Upgrade field (hop-by-hop otherwise)."""
    h = Harness(ONE)
    client = h.client()
    client.send(UPGRADE)
    (server,) = h.connector.servers
    (request,) = [e for e in server.read() if isinstance(e, h11.Request)]
    fields = {k: v for k, v in request.headers}
    assert fields[b"upgrade"] == b"websocket"
    assert fields[b"connection"] == b"upgrade"
    assert fields[b"sec-websocket-key"] == b"dGhlIHNhbXBsZSBub25jZQ=="


def test_101_becomes_a_tunnel_both_ways() -> None:
    """After 101, bytes flow raw both ways, early bytes included; the slot is held."""
    h = Harness(ONE)
    client, server = upgraded(h, early_client=b"\x81\x02hi", early_server=b"\x81\x05hello")
    out = client.raw()
    assert out.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    head, _, rest = out.partition(b"\r\n\r\n")
    assert b"Upgrade: websocket" in head and b"Connection: upgrade" in head
    assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head
    assert rest == b"\x81\x05hello"
    assert server.transport.value() == b"\x81\x02hi"
    server.transport.clear()
    # Bytes that look like HTTP are not parsed any more.
    client.send(b"GET / HTTP/1.1\r\n\r\n")
    assert server.transport.value() == b"GET / HTTP/1.1\r\n\r\n"
    server.feed(b"\x00" * 10)
    assert client.raw() == b"\x00" * 10
    assert h.server_load() == [("a", 1, 0)]


def test_server_close_ends_the_tunnel_and_logs_101() -> None:
    """The server closing ends the tunnel: the client is closed, the slot freed, one log line."""
    h = Harness(ONE)
    client, server = upgraded(h)
    client.send(b"abc")
    server.feed(b"xyz")
    server.close()
    assert client.transport.disconnecting
    assert h.quiet()
    (line,) = h.sink.lines
    # 101, bytes to the client: the 101 head (129 bytes) and the tunnel's 3; clean close.
    assert " 101 132 - - ---- " in line and line.endswith('"GET /chat HTTP/1.1"')


def test_client_close_ends_the_tunnel() -> None:
    """The client closing ends the tunnel and closes the server connection."""
    h = Harness(ONE)
    client, server = upgraded(h)
    client.close()
    assert server.transport.disconnecting
    assert h.quiet()
    assert len(h.sink.lines) == 1


def test_half_closes_pass_through() -> None:
    """A client FIN becomes a server-side shutdown; the server's answer still reaches it."""
    h = Harness(ONE)
    client, server = upgraded(h)
    client.protocol.readConnectionLost()
    assert server.transport.write_closed
    assert not client.transport.disconnecting
    server.feed(b"last words")
    assert client.raw().endswith(b"last words")
    server.protocol.readConnectionLost()  # the server's FIN: both ways are finished
    assert client.transport.disconnecting
    assert h.quiet()


def test_timeout_tunnel_replaces_client_and_server_timeouts() -> None:
    """An idle tunnel outlives timeout client (10s) and closes after timeout tunnel (30s)."""
    h = Harness(ONE)
    client, server = upgraded(h)
    h.advance(20)
    assert not client.transport.disconnecting
    client.send(b"ping")
    h.advance(20)
    assert not client.transport.disconnecting
    h.advance(11)
    assert client.transport.disconnecting and server.transport.disconnecting
    assert h.quiet()
    (line,) = h.sink.lines
    assert " 101 " in line and " cD-- " in line


def test_non_101_answer_keeps_http() -> None:
    """A server refusing the upgrade answers plainly; the connection stays keep-alive HTTP."""
    h = Harness(ONE)
    client = h.client()
    client.send(UPGRADE)
    (server,) = h.connector.servers
    server.read()
    server.respond(status=426, body=b"no")
    out = client.raw()
    assert out.startswith(b"HTTP/1.1 426 ") and out.endswith(b"\r\n\r\nno")
    assert b"upgrade" not in out.lower().split(b"\r\n\r\n")[0]
    client.send(b"GET /next HTTP/1.1\r\nHost: app\r\n\r\n")
    assert [r.target for r in server.read() if isinstance(r, h11.Request)] == [b"/next"]
    server.respond(body=b"again")
    assert client.raw().endswith(b"again")
    assert h.server_load() == [("a", 0, 0)]


def test_upgrade_without_connection_token_is_not_forwarded() -> None:
    """An Upgrade field that Connection does not name is dropped like any hop-by-hop field."""
    h = Harness(ONE)
    client = h.client()
    client.send(b"GET / HTTP/1.1\r\nHost: app\r\nUpgrade: websocket\r\n\r\n")
    (server,) = h.connector.servers
    (request,) = [e for e in server.read() if isinstance(e, h11.Request)]
    assert b"upgrade" not in {k for k, _ in request.headers}


def test_101_to_a_plain_request_is_a_502() -> None:
    """A 101 nobody asked for is a broken response: 502, nothing tunnelled."""
    h = Harness(ONE)
    client = h.client()
    client.request()
    server: FakeServer = h.connector.servers[0]
    server.read()
    server.feed(SWITCH + b"junk")
    ((status, _, _),) = client.responses()
    assert status == 502
    assert h.server_load() == [("a", 0, 0)]


FIN = """
frontend fe
    bind 127.0.0.1:8080
    timeout client-fin 1s
    default_backend be
backend be
    timeout tunnel 1h
    server a /s/a.sock maxconn 1
"""


def test_server_fin_then_silent_client_is_bounded_by_client_fin() -> None:
    """After the server's FIN reaches the client, the client is waited for under client-fin."""
    h = Harness(FIN)
    client, server = upgraded(h)
    server.protocol.readConnectionLost()  # the server half-closes
    assert client.transport.write_closed
    h.advance(5)
    assert client.transport.disconnecting, "tunnel still open 5s after server FIN (client-fin 1s)"


def test_101_without_connection_upgrade_is_502() -> None:
    """HAProxy: a 101 must carry Connection: upgrade (http_wait_for_response) else 502."""
    h = Harness(FIN)
    client = h.client()
    client.send(UPGRADE)
    (server,) = h.connector.servers
    server.transport.clear()
    server.feed(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n")
    out = client.raw()
    assert out.startswith(b"HTTP/1.1 502"), out[:80]


def test_h2c_upgrade_is_not_forwarded() -> None:
    """HAProxy (h1_postparse_req_hdrs) drops 'Upgrade: h2c' and the upgrade flag."""
    h = Harness(FIN)
    client = h.client()
    client.send(
        b"GET / HTTP/1.1\r\nHost: app\r\nConnection: Upgrade, HTTP2-Settings\r\n"
        b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n"
    )
    (server,) = h.connector.servers
    (request,) = [e for e in server.read() if isinstance(e, h11.Request)]
    assert b"upgrade" not in {k for k, _ in request.headers}, list(request.headers)


def test_a_pipelined_upgrade_is_not_held_behind_the_pipeline() -> None:
    """A GET and an upgrade pipelined in one write: the GET's response is held while the
    upgrade waits, then the 101 and the tunnel's bytes leave at once (no hold timer)."""
    h = Harness(ONE)
    client = h.client()
    client.send(b"GET /a HTTP/1.1\r\nHost: app\r\n\r\n" + UPGRADE)
    (server,) = h.connector.servers
    server.read()
    server.respond(body=b"first")
    assert client.transport.value() == b""  # held: the upgrade waits behind it
    server.transport.clear()
    server.feed(SWITCH + b"\x81\x05hello")
    out = client.raw()
    assert out.startswith(b"HTTP/1.1 200 ") and b"first" in out
    assert b"HTTP/1.1 101 Switching Protocols\r\n" in out and out.endswith(b"\x81\x05hello")
    assert client.protocol.held is None
    server.feed(b"\x00" * 3)
    assert client.raw() == b"\x00" * 3
