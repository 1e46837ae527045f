"""HTTP mode in memory: bodies around h11, and what the server pools keep."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.http_harness import FakeServer, Harness, answer_all

ONE = """
frontend fe
    bind 127.0.0.1:8080
    default_backend be
backend be
    http-reuse always
    server a /s/a.sock
"""


def head(length: int, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n" % (length, extra)


def serve_in_pieces(server: FakeServer, pieces: list) -> None:
    """The server answers with raw bytes, one read per piece."""
    server.read()
    server.transport.clear()
    for piece in pieces:
        server.protocol.dataReceived(piece)


def serve_as_views(server: FakeServer, pieces: list) -> None:
    """The server answers one read per piece, each a view of one reused buffer (as the
    real transports hand them to ServerConnection), overwritten after each read."""
    server.read()
    server.transport.clear()
    buffer = bytearray(max(map(len, pieces)))
    for piece in pieces:
        buffer[: len(piece)] = piece
        server.protocol.dataReceived(memoryview(buffer)[: len(piece)])
        buffer[:] = b"#" * len(buffer)  # the next read reuses the buffer


@pytest.mark.parametrize("serve", [serve_in_pieces, serve_as_views], ids=["bytes", "views"])
def test_body_in_several_reads_arrives_whole_and_connection_is_reused(serve: Any) -> None:
    """Head + 10 bytes, then the rest in two reads (bytes, or views of one reused buffer as
    the real transports give them): the client gets it all; the next request reuses the
    server connection (a fresh h11 after the body)."""
    h = Harness(ONE)
    client = h.client()
    client.request(target="/big")
    (server,) = h.connector.servers
    body = bytes(range(256)) * 40
    serve(server, [head(len(body)) + body[:10], body[10:5000], body[5000:]])
    ((status, _, got),) = client.responses()
    assert status == 200 and got == body
    assert server.protocol.raw_left == 0
    client.request(target="/next")
    assert len(h.connector.servers) == 1  # reused
    assert server.transport.value().split(b"\r\n")[-4:] == [
        b"GET /next HTTP/1.1",
        b"Host: app",
        b"",
        b"",
    ]
    server.protocol.dataReceived(head(2) + b"ok")
    ((status, _, got),) = client.responses()
    assert (status, got) == (200, b"ok")
    (line1, line2) = h.sink.lines
    assert " 200 " in line1 and '"GET /big HTTP/1.1"' in line1
    assert '"GET /next HTTP/1.1"' in line2


def test_h11_keeps_nothing_of_the_body_while_it_streams() -> None:
    """The body bytes read with the head go on at once and leave h11's buffer: a large
    response in flight holds no copy of its first read."""
    h = Harness(ONE)
    client = h.client()
    client.request(target="/big")
    (server,) = h.connector.servers
    body = b"z" * 200000
    serve_in_pieces(server, [head(len(body)) + body[:60000]])
    assert server.protocol.raw_left == len(body) - 60000
    assert server.protocol.h11.trailing_data == (b"", False)
    first = client.raw()
    assert first.startswith(b"HTTP/1.1 200 OK\r\n")
    assert first.endswith(b"\r\n\r\n" + body[:60000])
    server.protocol.dataReceived(body[60000:])
    assert client.raw() == body[60000:]


def test_server_closing_before_the_announced_length_truncates() -> None:
    """A body cut short by the server's close is not completed: the client is closed (SD)."""
    h = Harness(ONE)
    client = h.client()
    client.request()
    (server,) = h.connector.servers
    serve_in_pieces(server, [head(1000) + b"x" * 100])
    server.close()
    raw = client.raw()
    assert raw.endswith(b"x" * 100)
    assert client.transport.disconnecting
    assert " SD" in h.sink.lines[0]
    assert h.quiet()


def test_bytes_after_the_body_make_the_connection_unreusable() -> None:
    """A server that sends more than it announced is not pooled; the client gets the length."""
    h = Harness(ONE)
    client = h.client()
    client.request()
    (server,) = h.connector.servers
    serve_in_pieces(server, [head(20) + b"a" * 10, b"b" * 10 + b"GARBAGE"])
    ((status, _, got),) = client.responses()
    assert got == b"a" * 10 + b"b" * 10
    assert server.transport.disconnecting
    assert h.pools.idle_count() == 0


def test_connection_close_response_is_not_reused() -> None:
    """A raw body whose response says Connection: close leaves the server connection closed."""
    h = Harness(ONE)
    client = h.client()
    client.request()
    (server,) = h.connector.servers
    serve_in_pieces(server, [head(6, b"Connection: close\r\n") + b"abc", b"def"])
    ((status, headers, got),) = client.responses()
    assert got == b"abcdef"
    assert server.transport.disconnecting
    assert h.pools.idle_count() == 0


def test_head_response_keeps_h11_framing() -> None:
    """A HEAD response announces a length but has no body: nothing is waited for."""
    h = Harness(ONE)
    client = h.client()
    client.request(method="HEAD")
    (server,) = h.connector.servers
    serve_in_pieces(server, [head(5000)])
    ((status, headers, got),) = client.responses()
    assert status == 200 and got == b"" and headers["content-length"] == "5000"
    assert server.protocol.raw_left == 0
    assert h.pools.idle_count() == 1


POOL = """
frontend fe
    bind 127.0.0.1:8080
    default_backend be
backend be
    server a /s/a.sock
"""


def test_new_sessions_do_not_pile_up_idle_connections() -> None:
    """50 clients one after another, one request each (http-reuse safe: each opens its own
    server connection): the idle pool stays within the concurrency seen, as HAProxy's."""
    h = Harness(POOL)
    for _ in range(50):
        client = h.client()
        client.request()
        server = h.connector.servers[-1]
        server.read()
        server.respond()
        assert [r[0] for r in client.responses()] == [200]
        client.close()
    assert len(h.connector.servers) == 50
    assert h.pools.idle_count() == 1


def test_extra_bytes_in_the_same_read_as_a_small_response() -> None:
    """Head, whole body and stray bytes in one read: the body is delivered, the connection
    is not pooled (the stray bytes would be taken for the next response)."""
    h = Harness(ONE)
    client = h.client()
    client.request()
    (server,) = h.connector.servers
    serve_in_pieces(server, [head(2) + b"okHTTP/1.1 200 OK\r\n\r\n"])
    ((status, _, got),) = client.responses()
    assert (status, got) == (200, b"ok")
    assert server.transport.disconnecting
    assert h.pools.idle_count() == 0


def serve(h: Harness, data: bytes) -> None:
    """The newest server connection answers with raw bytes, in one read."""
    server = h.connector.servers[-1]
    server.transport.clear()
    server.protocol.dataReceived(data)


def test_content_length_beside_chunked_is_dropped() -> None:
    """Content-Length with Transfer-Encoding: chunked is framed by the chunks (RFC 9112 6.3);
    the stale length is not passed on."""
    h = Harness(ONE)
    client = h.client()
    client.send(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
    serve(h, b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
             b"6\r\nabcdef\r\n0\r\n\r\n")  # fmt: skip
    ((status, headers, body),) = client.responses()
    assert (status, body) == (200, b"abcdef")
    assert "content-length" not in {k.lower() for k in headers}


def test_no_1xx_to_an_http10_client() -> None:
    """A 103 from the server is not passed to an HTTP/1.0 client (RFC 9110 15.2)."""
    h = Harness(ONE)
    client = h.client()
    client.send(b"GET /a HTTP/1.0\r\n\r\n")
    serve(h, b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n"
             b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")  # fmt: skip
    raw = client.raw()
    assert raw.startswith(b"HTTP/1.1 200") and raw.endswith(b"ok")


def test_pipelined_requests_before_the_clients_fin_are_answered() -> None:
    """printf 'GET /a ... GET /b ...' | nc: both are answered, then the connection closes."""
    h = Harness(ONE)
    client = h.client()
    client.send(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n")
    client.protocol.readConnectionLost()
    answer_all(h)
    answer_all(h)
    assert client.raw().count(b"HTTP/1.1 200") == 2
    assert client.transport.disconnecting


def test_truncated_close_delimited_body_is_aborted() -> None:
    """An HTTP/1.0 client's body ends with the connection: a cut one is reset, not closed."""
    h = Harness(ONE)
    client = h.client()
    client.send(b"GET /a HTTP/1.0\r\n\r\n")
    serve(h, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n")
    h.connector.servers[-1].close()
    assert client.transport.aborted


def test_chunked_body_read_as_views_of_a_reused_buffer_arrives_intact() -> None:
    """A chunked body given as views of one buffer, a chunk split across reads: h11 keeps
    copies, so the client gets the body the server sent."""
    h = Harness(ONE)
    client = h.client()
    client.request(target="/chunked")
    (server,) = h.connector.servers
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    serve_as_views(server, [chunked + b"5\r\nhel", b"lo\r\n6\r\n world\r\n0", b"\r\n\r\n"])
    ((status, _, got),) = client.responses()
    assert (status, got) == (200, b"hello world")
