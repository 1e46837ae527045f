"""HTTP mode in memory: what the write batch may and may not send."""

from __future__ import annotations

from tests.unit.http_harness import ONE_SERVER, Harness

ONE = ONE_SERVER


def test_request_refused_in_the_same_read_never_reaches_the_server() -> None:
    """Head and a bad chunk in one read: 400 to the client, nothing of it to the server."""
    h = Harness(ONE)
    client = h.client()
    client.send(
        b"POST /pay HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nZZ\r\n"
    )
    assert client.raw().startswith(b"HTTP/1.1 400")
    (server,) = h.connector.servers
    assert server.transport.aborted
    assert server.transport.value() == b""


def test_pipelined_responses_in_one_server_read_leave_in_one_write() -> None:
    """Head, body and end of a response read at once reach the client as one write."""
    h = Harness(ONE)
    client = h.client()
    writes = []
    original = client.transport.write
    client.transport.write = lambda data: (writes.append(data), original(data))  # type: ignore[method-assign]
    client.request()
    (server,) = h.connector.servers
    server.read()
    server.respond(body=b"hello")
    assert len(writes) == 1 and writes[0].endswith(b"\r\n\r\nhello")
