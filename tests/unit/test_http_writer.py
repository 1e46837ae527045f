"""The response writer against h11 itself: the same bytes and the same keep-alive verdict."""

from __future__ import annotations

import itertools
from typing import List, Optional, Tuple

import h11
import pytest
from h11._headers import Headers

from udsproxy.http.headers import Item
from udsproxy.http.writer import (
    ResponseWriter,
    WriterError,
    request_keeps_alive,
    serialize_request,
)

CASES = list(
    itertools.product(
        [b"GET", b"HEAD", b"POST"],  # request method
        [b"1.1", b"1.0"],  # the client's version
        [False, True],  # the request says Connection: close
        [200, 204, 304, 404],  # response status
        [None, 5, 0],  # Content-Length the response announces (None: unknown length)
        [False, True],  # the proxy adds Connection: close (option httpclose)
    )
)


def h11_bytes(
    method: bytes,
    version: bytes,
    req_close: bool,
    status: int,
    fields: List[Item],
    chunks: List[bytes],
    trailers: List[Item],
) -> Tuple[bytes, bool]:
    """What h11 writes for the response, and whether it keeps the connection."""
    conn = h11.Connection(h11.SERVER)
    head = b"%s / HTTP/%s\r\nHost: x\r\n" % (method, version)
    if req_close:
        head += b"Connection: close\r\n"
    if method == b"POST":
        head += b"Content-Length: 0\r\n"
    conn.receive_data(head + b"\r\n")
    assert type(conn.next_event()) is h11.Request
    assert type(conn.next_event()) is h11.EndOfMessage
    out = conn.send(
        h11.Response(status_code=status, headers=Headers(fields), reason=b"R", _parsed=True)
    )
    for chunk in chunks:
        out += conn.send(h11.Data(data=chunk))
    out += conn.send(h11.EndOfMessage(headers=Headers(trailers)))
    return out, conn.our_state is h11.DONE


def ours(
    method: bytes,
    version: bytes,
    req_close: bool,
    status: int,
    fields: List[Item],
    chunks: List[bytes],
    trailers: List[Item],
) -> Tuple[bytes, bool]:
    items = [(b"Connection", b"connection", b"close")] if req_close else []
    writer = ResponseWriter(method, version, request_keeps_alive(version, items))
    out = writer.head(status, b"R", list(fields))
    for chunk in chunks:
        out += writer.data(chunk)
    out += writer.end(trailers)
    assert writer.done
    return out, writer.keep_alive


@pytest.mark.parametrize("method,version,req_close,status,length,add_close", CASES)
def test_same_bytes_and_verdict_as_h11(
    method: bytes,
    version: bytes,
    req_close: bool,
    status: int,
    length: Optional[int],
    add_close: bool,
) -> None:
    """Every framing case (HEAD, 204/304, known or unknown length, HTTP/1.0, close) as h11."""
    fields: List[Item] = [(b"X-Backend", b"x-backend", b"a"), (b"Date", b"date", b"today")]
    if length is not None:
        fields.insert(1, (b"Content-Length", b"content-length", str(length).encode()))
    if add_close:
        fields.append((b"connection", b"connection", b"close"))
    has_body = method != b"HEAD" and status not in (204, 304)
    chunks = [b"hello"[: length if length is not None else 5]] if has_body else []
    if length == 0 or not has_body:
        chunks = []
    expected = h11_bytes(method, version, req_close, status, fields, chunks, [])
    assert ours(method, version, req_close, status, fields, chunks, []) == expected


def test_chunked_with_trailers_as_h11() -> None:
    """Unknown length to an HTTP/1.1 client: chunks, then the trailers after the last one."""
    fields: List[Item] = [(b"X-A", b"x-a", b"1")]
    trailers: List[Item] = [(b"X-Sum", b"x-sum", b"42")]
    chunks = [b"abc", b"", b"defgh"]
    args = (b"GET", b"1.1", False, 200, fields, chunks, trailers)
    assert ours(*args) == h11_bytes(*args)


def test_trailers_to_an_http10_client_are_dropped() -> None:
    """h11 refuses the whole response; we drop what a 1.0 client cannot receive."""
    writer = ResponseWriter(b"GET", b"1.0", False)
    writer.head(200, b"OK", [])
    assert writer.data(b"body") == b"body"
    assert writer.end([(b"X-Sum", b"x-sum", b"1")]) == b""
    assert not writer.keep_alive


def test_content_length_is_enforced() -> None:
    """More or fewer bytes than announced is an error, never a corrupt keep-alive stream."""
    writer = ResponseWriter(b"GET", b"1.1", True)
    writer.head(200, b"OK", [(b"Content-Length", b"content-length", b"3")])
    with pytest.raises(WriterError):
        writer.data(b"toolong")
    writer = ResponseWriter(b"GET", b"1.1", True)
    writer.head(200, b"OK", [(b"Content-Length", b"content-length", b"3")])
    writer.data(b"ab")
    with pytest.raises(WriterError):
        writer.end()


def test_informational_then_final() -> None:
    """A 100 goes out as it is; a second final head is refused."""
    writer = ResponseWriter(b"POST", b"1.1", True)
    assert writer.informational(100, b"Continue", []) == b"HTTP/1.1 100 Continue\r\n\r\n"
    writer.head(200, b"OK", [(b"Content-Length", b"content-length", b"0")])
    with pytest.raises(WriterError):
        writer.head(200, b"OK", [])


def test_a_head_response_drops_body_bytes() -> None:
    """Our own error page answering HEAD keeps its Content-Length and sends no body."""
    writer = ResponseWriter(b"HEAD", b"1.1", True)
    head = writer.head(503, b"Service Unavailable", [(b"content-length", b"content-length", b"9")])
    assert head.endswith(b"content-length: 9\r\n\r\n")
    assert writer.data(b"some page") == b""
    assert writer.end() == b""
    assert writer.keep_alive


def test_body_bytes_come_out_as_bytes() -> None:
    """h11 hands out bytearray slices; what the writer returns is bytes (transports insist)."""
    writer = ResponseWriter(b"GET", b"1.0", False)
    writer.head(200, b"OK", [])
    out = writer.data(bytearray(b"abc"))
    assert type(out) is bytes and out == b"abc"


REQUEST_FIELDS: List[List[Item]] = [
    [(b"Host", b"host", b"app")],
    [(b"X-A", b"x-a", b"1"), (b"host", b"host", b"app"), (b"Cookie", b"cookie", b"a=b; c=d")],
    [(b"Host", b"host", b"app"), (b"connection", b"connection", b"close"), (b"X-E", b"x-e", b"")],
    [(b"Host", b"host", b"app"), (b"Content-Length", b"content-length", b"0")],
]


@pytest.mark.parametrize("fields", REQUEST_FIELDS)
@pytest.mark.parametrize("method,target", [(b"GET", b"/"), (b"DELETE", b"/a?b=%20")])
def test_bodyless_request_heads_as_h11(method: bytes, target: bytes, fields: List[Item]) -> None:
    """A bodyless request written without h11 (upstream) is h11's bytes: Host first."""
    conn = h11.Connection(h11.CLIENT)
    expected = conn.send(
        h11.Request(method=method, target=target, headers=Headers(fields), _parsed=True)
    )
    expected += conn.send(h11.EndOfMessage())
    assert serialize_request(method, target, fields) == expected
    assert request_keeps_alive(b"1.1", fields) is (conn.our_state is h11.DONE)


@pytest.mark.parametrize(
    "fields",
    [
        [(b"X-A", b"x-a", b"1"), (b"Host", b"host", b"h1"), (b"X-B", b"x-b", b"2")],
        [(b"host", b"host", b"h1"), (b"X-A", b"x-a", b"1"), (b"HOST", b"host", b"h2")],
        [(b"Host", b"host", b"h1")],
        [],
    ],
)
def test_host_fields_go_first_as_h11_writes_them(fields: List[Item]) -> None:
    """Wherever Host fields are, the head has them first, in their order (h11's write_headers)."""
    writer = ResponseWriter(b"GET", b"1.1", True)
    fields = fields + [(b"Content-Length", b"content-length", b"0")]
    expected, _ = h11_bytes(b"GET", b"1.1", False, 200, fields, [], [])
    assert writer.head(200, b"R", fields) + writer.end() == expected
