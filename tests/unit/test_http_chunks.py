"""Chunked bodies: a chunk size that overflows is a framing error, on either side."""

from __future__ import annotations

from typing import List

import h11
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.http_harness import Harness
from udsproxy.http.chunks import MAX_CHUNK_SIZE, ChunkError, ChunkScan

ONE = """
frontend fe
    bind 127.0.0.1:8080
    default_backend be
backend be
    http-reuse always
    server a /s/a.sock
"""

CHUNKED_HEAD = b"POST /up HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\n\r\n"
RESPONSE_HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
OVERFLOW = b"FFFFFFFFFFFFFFFFFFFF\r\n"  # 20 hex digits: h11 accepts it


def scan(data: bytes, split: int = 0) -> ChunkScan:
    """A scan fed ``data`` whole (split 0) or in pieces of ``split`` bytes."""
    s = ChunkScan()
    step = split or max(1, len(data))
    for i in range(0, len(data), step):
        s.feed(data[i : i + step])
    return s


# ------------------------------------------------------------------ the scan alone


def test_largest_size_haproxy_accepts_passes() -> None:
    """2^52-1 (13 hex digits) is a size; leading zeros do not count."""
    assert scan(b"FFFFFFFFFFFFF\r\n").left == MAX_CHUNK_SIZE + 2
    assert scan(b"0000000000000000001\r\n").left == 1 + 2


@pytest.mark.parametrize("split", [0, 1, 3])
@pytest.mark.parametrize(
    "line, digit",
    [
        (b"10000000000000\r\n", 13),  # 2^52: the 14th digit overflows
        (OVERFLOW, 13),
        (b"7FFFFFFFFFFFFFFF\r\n", 13),  # 2^63-1: past HAProxy's bound too
        (b"0000FFFFFFFFFFFFFFFF;ext\r\n", 17),
    ],
)
def test_overflowing_size_raises_at_the_digit(line: bytes, digit: int, split: int) -> None:
    """The error comes at the digit that overflows, however the line is split."""
    body = b"3\r\nabc\r\n" + line
    with pytest.raises(ChunkError) as info:
        scan(body, split)
    assert info.value.position == 8 + digit


def test_body_end_and_what_follows() -> None:
    """Trailers end at the empty line; bytes after the body are not the scan's."""
    s = scan(b"3;x=y\r\nabc\r\n0\r\nX-T: 1\r\n\r\nGET / HTTP/1.1\r\n")
    assert s.done and s.offset == len(b"3;x=y\r\nabc\r\n0\r\nX-T: 1\r\n\r\n")
    s.feed(b"FFFFFFFFFFFFFFFFFFFF\r\n")  # the next request's bytes: ignored
    assert s.done


@settings(max_examples=200, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=300), max_size=6),
    trailers=st.booleans(),
    cuts=st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=10),
)
def test_scan_ends_where_h11_ends_the_body(
    sizes: List[int], trailers: bool, cuts: List[int]
) -> None:
    """For bodies h11 writes, cut anywhere, the scan ends exactly where h11's message ends."""
    client = h11.Connection(h11.CLIENT)
    body = b""
    headers = [("Host", "a"), ("Transfer-Encoding", "chunked")]
    head = client.send(h11.Request(method="POST", target="/", headers=headers))
    for size in sizes:
        body += client.send(h11.Data(data=b"x" * size))
    body += client.send(h11.EndOfMessage(headers=[("X-T", "1")] if trailers else []))
    assert head
    data = body + b"GET / HTTP/1.1\r\n"
    s = ChunkScan()
    i = 0
    for cut in cuts * (len(data) // sum(cuts) + 1):
        s.feed(data[i : i + cut])
        i += cut
        if i >= len(data):
            break
    assert s.done and s.offset == len(body)


# ------------------------------------------------------------------ requests


def test_overflowing_size_with_the_head_reaches_no_server() -> None:
    """Head and an overflowing chunk size in one read: 400, closed, no server connected."""
    h = Harness(ONE)
    client = h.client()
    client.send(CHUNKED_HEAD + OVERFLOW + b"abc")
    ((status, _, _),) = client.responses()
    assert status == 400
    assert client.transport.disconnecting
    assert h.connector.servers == []
    assert " 400 " in h.sink.lines[0] and " CR" in h.sink.lines[0]
    assert h.quiet()


@pytest.mark.parametrize("split", [1, len(OVERFLOW)])
def test_overflowing_size_after_the_head_aborts_the_server(split: int) -> None:
    """Head and a first chunk forwarded, then an overflowing size (even a byte per read):
    400 to the client, the server connection aborted with the request unfinished."""
    h = Harness(ONE)
    client = h.client()
    client.send(CHUNKED_HEAD + b"5\r\nhello\r\n")
    (server,) = h.connector.servers
    events = server.read()
    assert [type(e) for e in events] == [h11.Request, h11.Data]
    for i in range(0, len(OVERFLOW), split):
        client.send(OVERFLOW[i : i + split])
    client.send(b"x" * 100)
    ((status, _, _),) = client.responses()
    assert status == 400
    assert client.transport.disconnecting
    assert server.transport.aborted
    assert server.transport.value() == b""  # nothing of the bad chunk, no end
    assert server.h11.their_state is h11.SEND_BODY
    assert h.pools.idle_count() == 0
    assert " 400 " in h.sink.lines[0] and " CR" in h.sink.lines[0]
    assert h.quiet()


def test_valid_chunked_request_still_passes() -> None:
    """A chunked request with trailers, a byte per read, then a keep-alive second request."""
    h = Harness(ONE)
    client = h.client()
    body = CHUNKED_HEAD + b"5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n"
    for i in range(len(body)):
        client.send(body[i : i + 1])
    (server,) = h.connector.servers
    events = server.read()
    assert b"".join(e.data for e in events if isinstance(e, h11.Data)) == b"hello"
    assert isinstance(events[-1], h11.EndOfMessage)
    server.respond()
    client.request(target="/again")
    server.read()
    server.respond()
    assert [r[0] for r in client.responses()] == [200, 200]


# ------------------------------------------------------------------ responses


def test_overflowing_size_with_the_response_head_is_502() -> None:
    """The server's head and an overflowing size in one read: 502 (PH), server not pooled."""
    h = Harness(ONE)
    client = h.client()
    client.request()
    (server,) = h.connector.servers
    server.read()
    server.protocol.dataReceived(RESPONSE_HEAD + OVERFLOW + b"abc")
    ((status, _, body),) = client.responses()
    assert status == 502 and b"abc" not in body
    assert server.transport.aborted
    assert h.pools.idle_count() == 0
    assert " 502 " in h.sink.lines[0] and " PH" in h.sink.lines[0]
    assert h.backend is not None and h.backend.state.last_response_error is not None


@pytest.mark.parametrize("split", [1, len(OVERFLOW)])
def test_overflowing_size_after_the_response_head_cuts_the_client(split: int) -> None:
    """Head and a chunk sent on, then an overflowing size (even a byte per read): the client
    is closed with the response unfinished (SD), the server connection aborted."""
    h = Harness(ONE)
    client = h.client()
    client.request()
    (server,) = h.connector.servers
    server.read()
    server.protocol.dataReceived(RESPONSE_HEAD + b"5\r\nhello\r\n")
    for i in range(0, len(OVERFLOW), split):
        server.protocol.dataReceived(OVERFLOW[i : i + split])
    raw = client.raw()
    assert raw.startswith(b"HTTP/1.1 200 ") and raw.endswith(b"5\r\nhello\r\n")  # no last chunk
    assert client.transport.disconnecting
    assert server.transport.aborted
    assert h.pools.idle_count() == 0
    assert " SD" in h.sink.lines[0]
    assert h.quiet()


def test_chunked_response_to_head_is_not_scanned() -> None:
    """A HEAD response announcing chunked has no body: the connection is reused."""
    h = Harness(ONE)
    client = h.client()
    client.request(method="HEAD")
    (server,) = h.connector.servers
    server.read()
    server.protocol.dataReceived(RESPONSE_HEAD)
    ((status, _, _),) = client.responses()
    assert status == 200
    assert server.protocol.chunks is None
    assert h.pools.idle_count() == 1
