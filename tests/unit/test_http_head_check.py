"""The raw request-head check as bytes arrive: the same verdicts as whole, linear work."""

from __future__ import annotations

from typing import Any, List, Tuple, Union

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.http_harness import ONE_SERVER, Harness
from udsproxy.http.headers import HeadError, RawHead, check_raw_head, check_request

ONE = ONE_SERVER

Verdict = Union[bool, Tuple[str, int, int]]

# Pieces that make every branch likely: empty lines first, ends of head, folds, fields.
PIECES = [b"\r\n", b"\n", b"\r", b" ", b"\t", b"a", b"X: 1", b"GET / HTTP/1.1"]


def whole(buf: bytes, limit: int, maxhdr: int) -> Verdict:
    try:
        return check_raw_head(buf, limit, maxhdr)
    except HeadError as exc:
        return (exc.reason, exc.status, exc.position)


def step(head: RawHead) -> Verdict:
    try:
        return head.check()
    except HeadError as exc:
        return (exc.reason, exc.status, exc.position)


@settings(max_examples=400, deadline=None)
@given(
    pieces=st.lists(st.sampled_from(PIECES), max_size=40),
    limit=st.integers(min_value=1, max_value=60),
    maxhdr=st.integers(min_value=0, max_value=5),
    cuts=st.lists(st.integers(min_value=1, max_value=7), min_size=1, max_size=8),
)
def test_pieces_give_the_verdicts_of_the_whole(
    pieces: List[bytes], limit: int, maxhdr: int, cuts: List[int]
) -> None:
    """Fed in pieces, each check answers as a check of everything so far at once would."""
    data = b"".join(pieces)
    head = RawHead(limit, maxhdr)
    i = 0
    k = 0
    while i < len(data):
        cut = cuts[k % len(cuts)]
        k += 1
        head.feed(data[i : i + cut])
        i += cut
        got = step(head)
        assert got == whole(data[:i], limit, maxhdr), data[:i]
        if got is not False:
            break


def test_byte_by_byte_work_is_linear() -> None:
    """A head near the limit sent a byte per read: the bytes searched stay a few per byte."""
    data = b"GET / HTTP/1.1\r\n" + b"X-Long: " + b"v" * 15000 + b"\r\n\r\n"
    head = RawHead(16000, 100)
    verdicts = []
    for i in range(len(data)):
        head.feed(data[i : i + 1])
        verdicts.append(head.check())
    assert verdicts[-1] is True and not any(verdicts[:-1])
    assert head.scanned <= 6 * len(data)
    assert head.resume >= len(data) - 4  # the search went on from where it stopped


def test_empty_lines_before_the_request_are_skipped_once() -> None:
    """Empty lines, a byte per read (a lone CR may yet be one), then a request."""
    head = RawHead(1000, 10)
    for byte in b"\r\n\n\r\n" * 200:
        head.feed(bytes([byte]))
        assert head.check() is False
    assert head.start == 1000
    head.feed(b"GET / HTTP/1.1\r\n\r\n")
    assert head.check() is True
    assert head.scanned < 1100


def client_sends_byte_by_byte(h: Harness, data: bytes) -> Any:
    client = h.client()
    for i in range(len(data)):
        client.send(data[i : i + 1])
    return client


def test_frontend_reads_a_large_head_byte_by_byte_in_linear_work() -> None:
    """Through a client connection: the request is forwarded and the work stays linear."""
    h = Harness(ONE)
    data = b"GET / HTTP/1.1\r\nHost: app\r\nX-Long: " + b"v" * 14000 + b"\r\n\r\n"
    client = client_sends_byte_by_byte(h, data)
    (server,) = h.connector.servers
    (request,) = server.read()[:1]
    assert request.target == b"/"
    assert client.protocol.raw_head.scanned <= 6 * len(data)


def test_frontend_too_large_head_byte_by_byte_is_the_same_400() -> None:
    """A head over the limit, a byte per read: 400 and the error captured at the same
    position as for the whole head in one read."""
    data = b"GET / HTTP/1.1\r\nHost: app\r\nX-Long: " + b"v" * 16000
    captured = []
    for pieces in (len(data), 1):
        h = Harness(ONE)
        client = h.client()
        for i in range(0, len(data), pieces):
            if client.transport.disconnecting:
                break
            client.send(data[i : i + pieces])
        ((status, _, _),) = client.responses()
        assert status == 400 and client.transport.disconnecting
        error = h.ctx.counters.last_request_error
        assert error is not None
        captured.append((error.reason, error.position))
    assert captured[0] == captured[1]


def test_next_cycle_checks_the_pipelined_head_afresh() -> None:
    """A second request pipelined with the first is checked from its own start."""
    h = Harness(ONE)
    client = h.client()
    client.send(b"GET /1 HTTP/1.1\r\nHost: app\r\n\r\nGET /2 HTTP/1.1\r\nHo")
    (server,) = h.connector.servers
    server.read()
    server.respond()
    client.send(b"st: app\r\n\r\n")
    server.read()
    server.respond()
    assert client.raw().count(b"HTTP/1.1 200 ") == 2
    assert [r.target for r in server.requests()] == [b"/1", b"/2"]


def test_endless_empty_lines_before_a_request_are_bounded() -> None:
    """Empty lines before a request are skipped, but not without limit: beyond it, a 400."""
    head = RawHead(limit=100, maxhdr=10)
    head.feed(b"\r\n" * 50)
    assert head.check() is False
    head.feed(b"\r\n" * 2)
    with pytest.raises(HeadError, match="empty lines"):
        head.check()


REFUSED_HEADS = [
    b"GET / HTTP/1.1\r\nHost: x\r\nBadHeaderLine\r\n\r\n",
    b"GET /x\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
    b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    b"GET /a\x01b HTTP/1.1\r\nHost: x\r\n\r\n",
    # Parsed, then refused (headers.check_request); HAProxy 2.6.12 logs these alike.
    b"GET http://a.example/ HTTP/1.1\r\nHost: b.example\r\n\r\n",
    b"GET /a#b HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
]


@pytest.mark.parametrize("head", REFUSED_HEADS)
def test_a_refused_head_is_logged_as_haproxy_does(head: bytes) -> None:
    """A head refused while the client is still connected: 400, logged as HAProxy 2.6.12 does
    (``fe/<NOSRV> ... 400 0 ... PR-- ... "<BADREQ>"``: refused by the proxy, no page bytes)."""
    h = Harness(ONE)
    client = h.client()
    client.send(head)
    assert client.raw().startswith(b"HTTP/1.1 400 ")
    (line,) = h.sink.lines
    assert " 400 0 " in line and " PR-- " in line, line
    assert line.endswith('"<BADREQ>"') and " fe/<NOSRV> -1/-1/-1/-1/0 " in line, line


def test_a_head_cut_short_by_the_clients_close_is_cr() -> None:
    """A head the client's FIN cut short is the client's doing: 400 CR-- (as HAProxy)."""
    h = Harness(ONE)
    client = h.client()
    client.send(b"GET / HTTP/1.1\r\nHost: x\r\n")
    client.protocol.readConnectionLost()
    (line,) = h.sink.lines
    assert " 400 0 " in line and " CR-- " in line, line


# Transfer-Encoding values h11 refuses, and HAProxy 2.6.12's answers to them (observed):
# 422 for a well-formed list ending with one chunked behind codings it does not apply.
TRANSFER_CODINGS = [
    (b"gzip", 400),
    (b"chunked, gzip", 400),
    (b"chunked, chunked", 400),
    (b"chunked;q=1", 400),
    (b"gzip, chunked", 422),
    (b"gzip,chunked", 422),
    (b"identity, chunked", 422),
    (b"x, chunked", 422),
    (b"gzip\r\nTransfer-Encoding: chunked", 422),
]


@pytest.mark.parametrize("codings,status", TRANSFER_CODINGS)
def test_an_unsupported_transfer_encoding_is_answered_as_haproxy_does(
    codings: bytes, status: int
) -> None:
    """400 or 422 as HAProxy, logged as a refused head, nothing sent to a server, closed."""
    h = Harness(ONE)
    client = h.client()
    client.send(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: %s\r\n\r\n0\r\n\r\n" % codings)
    assert client.raw().startswith(b"HTTP/1.1 %d " % status)
    (line,) = h.sink.lines
    assert line.endswith(f' fe/<NOSRV> -1/-1/-1/-1/0 {status} 0 - - PR-- 1/1/0/0/0 0/0 "<BADREQ>"')
    assert h.connector.servers == [] and client.transport.disconnecting


@pytest.mark.parametrize("codings,status", TRANSFER_CODINGS + [(b"chunked", 0)])
def test_check_request_refuses_transfer_codings_as_the_raw_path_does(
    codings: bytes, status: int
) -> None:
    """A parsed request's Transfer-Encoding is judged by the same rule as a raw head h11
    refused (headers.coding_refusal): a head that reaches check_request by another parser
    gets the same 400/422."""
    items = [
        (b"Transfer-Encoding", b"transfer-encoding", value.strip())
        for value in codings.split(b"\r\nTransfer-Encoding:")
    ]
    if status == 0:
        check_request(b"POST", b"/", items)
        return
    with pytest.raises(HeadError) as refused:
        check_request(b"POST", b"/", items)
    assert refused.value.status == status
