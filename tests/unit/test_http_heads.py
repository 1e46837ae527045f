"""The request-head parser against h11 and RawHead: whatever it accepts, they accept alike."""

from __future__ import annotations

from typing import Any, List, Optional, Tuple

import h11 as h11_pure
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.http_harness import ONE_SERVER, Harness, answer_all
from udsproxy.http.h11lib import h11 as h11_used
from udsproxy.http.headers import (
    HOP_BY_HOP,
    HeadError,
    Item,
    check_raw_head,
    check_request,
    end_to_end_items,
    is_bodyless,
    is_chunked,
    request_upgrade,
)
from udsproxy.http.heads import NOTED, ParsedRequest, ParsedResponse, parse_request, parse_response
from udsproxy.http.writer import request_keeps_alive

# Both builds when both are installed (the compiled one on CPython with the fast extra).
PARSERS = [h11_pure] if h11_used is h11_pure else [h11_pure, h11_used]

ONE = ONE_SERVER


def ours(buf: bytes, maxhdr: int) -> Optional[Tuple[ParsedRequest, int]]:
    """What the frontend does at its first look: the head up to the first CRLFCRLF."""
    end = buf.find(b"\r\n\r\n") + 4
    if end < 4:
        return None
    request = parse_request(bytearray(buf), end, maxhdr)
    return None if request is None else (request, end)


def h11_view(module: Any, buf: bytes) -> Tuple[Any, List[Any], bytes, Any, bool]:
    """h11's request, the events after it, what it leaves unparsed, its state, 100-continue."""
    conn = module.Connection(module.SERVER)
    conn.receive_data(buf)
    request = conn.next_event()
    waiting = conn.client_is_waiting_for_100_continue
    state = conn.their_state
    after = [conn.next_event()]
    return request, after, conn.trailing_data[0], state, waiting


def assert_same_head(ours: Any, theirs: Any, names: Tuple[str, ...]) -> None:
    """The same attributes as h11's event, and the same header triples (and pairs)."""
    assert [getattr(ours, n) for n in names] == [getattr(theirs, n) for n in names]
    assert ours.headers._full_items == theirs.headers._full_items
    assert list(ours.headers) == list(theirs.headers)


def assert_as_h11(buf: bytes, maxhdr: int = 100) -> Optional[ParsedRequest]:
    """If the parser accepts ``buf``'s head: h11 gives the same request and leaves the same
    bytes, the request has no body and asks for no switch; RawHead passes the same head."""
    got = ours(buf, maxhdr)
    if got is None:
        return None
    request, end = got
    for module in PARSERS:
        theirs, after, rest, state, waiting = h11_view(module, buf)
        assert type(theirs) is module.Request, buf
        assert_same_head(request, theirs, ("method", "target", "http_version"))
        assert state is module.SEND_BODY and not waiting
        assert [type(e) for e in after] == [module.EndOfMessage]  # no body
        assert rest == buf[end:]
    assert_noted_decide_alike(request)
    # RawHead: no 400 (size, fields, fold, HTTP/0.9) with the frontend's size limit for
    # the parser (end - 4 <= limit), and complete exactly at this end.
    assert check_raw_head(buf[:end], end - 4, maxhdr) is True
    try:
        partial = check_raw_head(buf[: end - 1], end, maxhdr)
    except HeadError:  # pragma: no cover - the assertion below says what went wrong
        partial = None
    assert partial is False
    return request


def check_verdict(request: ParsedRequest, items: List[Item]) -> Optional[Tuple[str, int]]:
    try:
        check_request(request.method, request.target, items)
    except HeadError as exc:
        return exc.reason, exc.status
    return None


def assert_noted_decide_alike(request: ParsedRequest) -> None:
    """The header rules the frontend applies to the noted fields answer as on all fields."""
    items = request.headers._full_items
    noted = request.noted
    assert noted == [item for item in items if item[1] in NOTED]
    version = request.http_version
    assert is_bodyless(noted) == is_bodyless(items)
    assert is_chunked(noted) == is_chunked(items)
    assert request_keeps_alive(version, noted) == request_keeps_alive(version, items)
    assert request_upgrade(noted) == request_upgrade(items)
    assert check_verdict(request, noted) == check_verdict(request, items)
    if not any(item[1] in HOP_BY_HOP for item in noted):
        assert end_to_end_items(items) == items


COMMON = [
    b"GET / HTTP/1.1\r\nHost: app\r\n\r\n",
    b"GET /a?b=c&d=%20 HTTP/1.1\r\nHost: app\r\nUser-Agent: x\r\nAccept: */*\r\n\r\n",
    b"HEAD /x HTTP/1.0\r\n\r\n",
    b"DELETE /r/1 HTTP/1.1\r\nhost:app\r\nX-Empty:\r\nX-Spaces:  a  b \t\r\n\r\n",
    b"GET http://app/p HTTP/1.1\r\nHost: app\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: app\r\nX-Obs: caf\xe9\x01\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Drop\r\nX-Drop: 1\r\n"
    b"Keep-Alive: 300\r\nTE: trailers\r\nProxy-Connection: keep-alive\r\n\r\n",
]

# Left to h11 (and to RawHead's checks): bodies, switches, smuggling attempts, oddities.
DECLINED = [
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
    b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n",
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    b"GET / HTTP/1.1\r\n\r\n",  # no Host
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    b"GET / HTTP/1.0\r\nHost: a\r\nhost: a\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",  # obs-fold
    b"GET / HTTP/1.1\r\nHost : a\r\n\r\n",  # space before the colon
    b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x00c\r\n\r\n",  # NUL
    b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n",  # bare CR
    b"GET / HTTP/1.1\nHost: a\r\n\r\n",  # bare LF
    b"GET / HTTP/1.1\r\nHost: a\r\nX-A: \x0b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\n: empty name\r\n\r\n",
    b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",  # an empty line first
    b"GET /\r\n\r\n",  # HTTP/0.9
    b"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
    b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET / x HTTP/1.1\r\nHost: a\r\n\r\n",
    b"G@T / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /\xe9 HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nX-B: 2\r\n\r\n",  # with maxhdr=1: too many
]


@pytest.mark.parametrize("buf", COMMON)
def test_common_heads_are_parsed_as_h11_parses_them(buf: bytes) -> None:
    """The usual heads are taken by the parser, and h11 agrees on every byte of them."""
    assert assert_as_h11(buf) is not None


@pytest.mark.parametrize("buf", DECLINED)
def test_unusual_and_hostile_heads_are_left_to_h11(buf: bytes) -> None:
    """Bodies, switches, smuggling attempts and malformed heads: the parser declines."""
    assert ours(buf, 1 if b"X-B" in buf else 100) is None


def test_the_browser_head_of_the_benchmarks_is_parsed() -> None:
    """tools/hotpath.py's browser head (16 fields, cookies) takes the fast path."""
    from tools.hotpath import BROWSER_REQUEST

    request = assert_as_h11(BROWSER_REQUEST + BROWSER_REQUEST)
    assert request is not None and len(request.headers) == 16


method = st.sampled_from([b"GET", b"HEAD", b"get", b"DELETE", b"M-S.E_A~R!CH", b"PRI", b"CONNECT"])
target = st.sampled_from([b"/", b"/a?b=c", b"*", b"http://h/p", b"/%7e~!$&'()*+,;=:@"])
version = st.sampled_from([b"HTTP/1.1", b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0"])
name = st.sampled_from(
    [b"X-A", b"Cookie", b"Connection", b"Accept", b"x!#$%&'*+.^_`|~9", b"Host", b"HOST"]
    + [b"Content-Length", b"Transfer-Encoding", b"Upgrade", b"Expect"]
    + [b"TE", b"Keep-Alive", b"Proxy-Connection", b"X-Drop"]
)
value = st.one_of(
    st.sampled_from(
        [b"a", b"", b" a ", b"a b", b"a\tb", b"\x01\x7f", b"\x80\xff", b"100-continue", b"0"]
        + [b"close", b"keep-alive, X-Drop", b"upgrade", b"websocket"]
    ),
    st.binary(max_size=8).filter(lambda v: not set(v) & set(b"\x00\r\n\x0b\x0c")),
)
# Edits that make a head hostile or malformed, spliced anywhere.
SNIPPETS = [b"\x00", b"\r", b"\n", b" ", b"\t", b":", b"\r\n", b"\r\n ", b"\x0b", b"\x0c"]
SNIPPETS += [b"Host: b\r\n", b"Content-Length: 1\r\n", b"Transfer-Encoding: chunked\r\n"]
SNIPPETS += [b"\x80", b"\r\n\r\n", b"HTTP/1.1", b"@"]
tail = st.sampled_from([b"", b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", b"xyz", b"\r\n"])


@st.composite
def heads(draw: Any) -> bytes:
    """A well-formed head (one Host) with up to two hostile edits, then what follows it."""
    line = draw(method) + b" " + draw(target) + b" " + draw(version) + b"\r\n"
    fields = draw(st.lists(st.tuples(name, value), max_size=6))
    fields.insert(draw(st.integers(0, len(fields))), (b"Host", b"app"))
    head = line + b"".join(n + b": " + v + b"\r\n" for n, v in fields) + b"\r\n"
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(0, len(head)))
        edit = draw(st.one_of(st.sampled_from(SNIPPETS), st.binary(min_size=1, max_size=2)))
        if draw(st.booleans()):
            head = head[:at] + edit + head[at:]
        else:
            head = head[:at] + edit + head[at + len(edit) :]
    return head + draw(tail)


@settings(max_examples=1500, deadline=None)
@given(buf=heads(), maxhdr=st.integers(min_value=0, max_value=8))
def test_generated_heads_are_parsed_as_h11_or_left_to_it(buf: bytes, maxhdr: int) -> None:
    """Generated heads, good and hostile: accepted ones are exactly h11's requests."""
    assert_as_h11(buf, maxhdr)


@settings(max_examples=500, deadline=None)
@given(buf=st.binary(max_size=80), prefix=st.sampled_from(COMMON))
def test_common_heads_with_random_bytes_are_parsed_as_h11_or_left_to_it(
    buf: bytes, prefix: bytes
) -> None:
    """A common head with random bytes spliced in: never a request h11 would not give."""
    cut = len(buf) % (len(prefix) + 1)
    assert_as_h11(prefix[:cut] + buf + prefix[cut:])


def test_a_common_head_needs_no_h11_parser_and_reaches_the_server_unchanged() -> None:
    """Proxied through the fast path, the server gets what h11's path would send it."""
    h = Harness(ONE)
    client = h.client()
    client.send(COMMON[1])
    assert client.protocol.h11 is None  # no parser was made for it
    answer_all(h)
    assert client.responses()[0][0] == 200
    (request,) = h.connector.servers[0].requests()
    assert request.target == b"/a?b=c&d=%20"
    assert list(request.headers) == [
        (b"host", b"app"),
        (b"user-agent", b"x"),
        (b"accept", b"*/*"),
    ]


def test_a_head_in_pieces_and_a_body_go_through_h11_between_common_ones() -> None:
    """Pipelined: a common head, a POST with a body, a head cut in two reads, a common one."""
    h = Harness(ONE)
    client = h.client()
    post = b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
    client.send(b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n" + post + b"GET /3 HTTP/1.1\r\nHo")
    for _ in range(3):
        answer_all(h)
    client.send(b"st: a\r\n\r\nGET /4 HTTP/1.1\r\nHost: a\r\n\r\n")
    for _ in range(3):
        answer_all(h)
    assert client.raw().count(b"HTTP/1.1 200 ") == 4
    requests = [r for s in h.connector.servers for r in s.requests()]
    assert [r.target for r in requests] == [b"/1", b"/p", b"/3", b"/4"]
    server = h.connector.servers[0]
    bodies = [e.data for e in server.events if type(e) is h11_pure.Data]
    assert bodies == [b"abc"]


# ----------------------------------------------------------------------------- responses
def h11_response_events(module: Any, method: bytes, buf: bytes) -> Tuple[List[Any], Any]:
    """What an h11 client that sent a bodyless ``method`` request reads from ``buf``."""
    conn = module.Connection(module.CLIENT)
    conn.send(module.Request(method=method, target=b"/", headers=[(b"Host", b"a")]))
    conn.send(module.EndOfMessage())
    conn.receive_data(buf)
    events: List[Any] = []
    while not events or type(events[-1]) is not module.EndOfMessage:
        event = conn.next_event()
        if event is module.NEED_DATA or event is module.PAUSED:
            break
        events.append(event)
    return events, conn


def assert_response_as_h11(buf: bytes, method: bytes = b"GET") -> Optional[ParsedResponse]:
    """If the parser takes ``buf``'s head: h11 reads the same response, a body of the same
    length, keeps the connection alike and leaves the same bytes after the body."""
    end = buf.find(b"\r\n\r\n") + 4
    if end < 4:
        return None
    got = parse_response(buf, end, method, 100)
    if got is None:
        return None
    response, length, keep = got
    for module in PARSERS:
        events, conn = h11_response_events(module, method, buf)
        head = events[0]
        assert type(head) is module.Response, buf
        assert_same_head(response, head, ("status_code", "reason", "http_version"))
        assert response.noted == [i for i in response.headers._full_items if i[1] in NOTED]
        if len(buf) < end + length:
            continue  # the body is not all there: h11 waits for it as the counting does
        body = b"".join(bytes(e.data) for e in events[1:-1])
        assert [type(e) for e in events[1:]][-1:] == [module.EndOfMessage]
        assert body == buf[end : end + length]
        assert conn.their_state is (module.DONE if keep else module.MUST_CLOSE)
        assert conn.trailing_data[0] == buf[end + length :]
    return response


COMMON_RESPONSES = [
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello",
    b"HTTP/1.1 404 Not Found\r\nServer: nginx\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n",
    b"HTTP/1.1 304 \r\nETag: x\r\nContent-Length: 99\r\n\r\n",
    b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi",
    b"HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 2\r\n\r\nhi",
    b"HTTP/1.1 200\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1 200",
    b"HTTP/1.1 599 A\tweird \x80 reason\r\ncontent-length:007\r\n\r\n1234567",
]

DECLINED_RESPONSES = [
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: ws\r\n\r\n",
    b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"HTTP/1.1 200 OK\r\n\r\nclose-delimited",
    b"HTTP/1.1 200 OK\r\nContent-Length: 1, 1\r\n\r\nx",
    b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
    b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 123456789012345678901\r\n\r\n",
    b"HTTP/1.1 204 No Content\r\nContent-Length: x\r\n\r\n",
    b"HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1  200 OK\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nX-A: b\x00c\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\n folded\r\nContent-Length: 0\r\n\r\n",
]


@pytest.mark.parametrize("buf", COMMON_RESPONSES)
def test_common_responses_are_read_as_h11_reads_them(buf: bytes) -> None:
    """The usual response heads are taken, and h11 agrees on them and on their framing."""
    assert assert_response_as_h11(buf) is not None
    assert assert_response_as_h11(buf, b"HEAD") is not None  # no body, whatever the length


@pytest.mark.parametrize("buf", DECLINED_RESPONSES)
def test_unusual_and_hostile_responses_are_left_to_h11(buf: bytes) -> None:
    """1xx, chunked, close-delimited, ambiguous lengths, malformed heads: declined."""
    end = buf.find(b"\r\n\r\n") + 4
    assert parse_response(buf, end, b"GET", 100) is None


status_line = st.sampled_from(
    [b"HTTP/1.1 200 OK", b"HTTP/1.0 200 OK", b"HTTP/1.1 204 No Content", b"HTTP/1.1 304 "]
    + [b"HTTP/1.1 404", b"HTTP/1.1 100 Continue", b"HTTP/1.1 101 S", b"HTTP/1.1 999 a\tb"]
)
response_name = st.sampled_from(
    [b"Content-Length", b"content-length", b"Transfer-Encoding", b"Connection", b"X-A"]
    + [b"Content-Type", b"Set-Cookie"]
)
response_value = st.sampled_from(
    [b"5", b"0", b"05", b"5, 5", b"-1", b"", b" 5 ", b"chunked", b"close", b"keep-alive"]
    + [b"Keep-Alive, close", b"a b", b"\x80"]
)


@st.composite
def responses(draw: Any) -> bytes:
    """A response head with up to two hostile edits, then five body bytes and more."""
    fields = draw(st.lists(st.tuples(response_name, response_value), max_size=5))
    head = draw(status_line) + b"\r\n" + b"".join(n + b": " + v + b"\r\n" for n, v in fields)
    head += b"\r\n"
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(0, len(head)))
        edit = draw(st.one_of(st.sampled_from(SNIPPETS), st.binary(min_size=1, max_size=2)))
        head = head[:at] + edit + head[at + (0 if draw(st.booleans()) else len(edit)) :]
    return head + draw(st.sampled_from([b"hello", b"hello" + b"HTTP/1.1 200 OK\r\n", b"he"]))


@settings(max_examples=1500, deadline=None)
@given(buf=responses(), method=st.sampled_from([b"GET", b"HEAD"]))
def test_generated_responses_are_read_as_h11_or_left_to_it(buf: bytes, method: bytes) -> None:
    """Generated response heads, good and hostile: taken ones are exactly h11's."""
    assert_response_as_h11(buf, method)


def test_a_response_h11_must_read_comes_after_a_request_written_without_it() -> None:
    """A chunked response to a bodyless request: h11 is told of the request, then reads it;
    the next request on the connection is written without h11 again."""
    h = Harness(ONE)
    client = h.client()
    client.request()
    server = h.connector.servers[0]
    server.read()
    server.respond(body=b"abc", headers=[("Transfer-Encoding", "chunked")])
    assert client.responses() == [(200, {"transfer-encoding": "chunked", "x-backend": "a"}, b"abc")]
    client.request(target="/2")
    assert h.connector.servers == [server]  # the connection was kept
    assert server.protocol.h11 is None  # written without h11
    server.read()
    server.respond(body=b"de")
    assert client.responses()[0][2] == b"de"
