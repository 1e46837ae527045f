"""Random and broken requests at an in-memory frontend: proxied or refused, nothing leaks."""

from __future__ import annotations

import re

import h11
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.http_harness import Harness

CONFIG = """
frontend fe
    bind :8080
    timeout http-request 5s
    default_backend be
backend be
    server a /s/a.sock maxconn 2
    server b /s/b.sock maxconn 2
"""

token = st.sampled_from(
    ["Host", "Content-Length", "Transfer-Encoding", "Connection", "X-A", "TE", "Expect", "Host "]
)
value = st.one_of(
    st.sampled_from(
        ["0", "5", "-1", "chunked", "gzip, chunked", "close", "keep-alive", "100-continue", ""]
    ),
    st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=255), max_size=12),
)
header_line = st.one_of(
    st.tuples(token, value).map(lambda t: f"{t[0]}: {t[1]}"),
    st.just(" folded"),
    st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=127), max_size=20),
)
request_line = st.one_of(
    st.tuples(
        st.sampled_from(["GET", "POST", "HEAD", "PUT", "CONNECT", "OPTIONS", "G ET", "get"]),
        st.sampled_from(["/", "/x?y=1", "http://h/p", "*", "", "/%00", "/a b"]),
        st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/1.1 ", "HTTX"]),
    ).map(lambda t: f"{t[0]} {t[1]} {t[2]}"),
    st.text(max_size=30),
)
body = st.binary(max_size=40)


@st.composite
def wire(draw):  # type: ignore[no-untyped-def]
    head = (
        draw(request_line)
        + "\r\n"
        + "".join(line + "\r\n" for line in draw(st.lists(header_line, max_size=6)))
    )
    data = head.encode("latin-1", "replace") + b"\r\n" + draw(body)
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=4)))
    pieces, last = [], 0
    for cut in cuts + [len(data)]:
        pieces.append(data[last:cut])
        last = cut
    return [p for p in pieces if p]


STATUS = re.compile(rb"HTTP/1\.1 (\d{3}) ")


@given(st.lists(wire(), min_size=1, max_size=3))
def test_random_requests_are_proxied_or_refused_and_nothing_leaks(clients) -> None:  # type: ignore[no-untyped-def]
    """Each client's bytes get 200 (proxied) or the proxy's 400/405/408; no slot, queue entry,
    timer or client connection is left once the clients have gone."""
    h = Harness(CONFIG)
    conns = []
    for pieces in clients:
        client = h.client()
        conns.append(client)
        for piece in pieces:
            if client.transport.disconnecting:
                break
            client.send(piece)
            for server in list(h.connector.servers):
                server.read() if server.h11.their_state is not h11.ERROR else None
                if server.h11.our_state is h11.SEND_RESPONSE and server.h11.their_state in (
                    h11.DONE,
                    h11.SEND_BODY,
                ):
                    if server.h11.their_state is h11.DONE:
                        server.respond(body=b"fine")
    h.advance(6)  # http-request timeouts fire for heads left incomplete
    for client in conns:
        out = client.raw()
        for status in STATUS.findall(out):
            assert int(status) in (200, 400, 405, 408, 502, 503), out
        client.close()
    for server in h.connector.servers:
        server.close()
    h.pools.close_all()
    assert h.quiet(), (h.server_load(), h.clock.getDelayedCalls())


RESPONSE_CONFIG = """
frontend fe
    bind :8080
    default_backend be
backend be
    http-reuse always
    server a /s/a.sock
"""


@st.composite
def server_answer(draw):  # type: ignore[no-untyped-def]
    """A response as a server could frame it, cut into reads at random places."""
    status = draw(st.sampled_from([200, 201, 204, 304, 404, 503]))
    payload = draw(st.binary(max_size=300))
    framing = draw(st.sampled_from(["length", "chunked", "close"]))
    if status in (204, 304):
        payload, framing = b"", "length"
    version = b"1.0" if framing == "close" else b"1.1"
    head = b"HTTP/%s %d R\r\nX-A: 1\r\n" % (version, status)
    if framing == "length":
        data = head + b"Content-Length: %d\r\n\r\n" % len(payload) + payload
    elif framing == "chunked":
        data = head + b"Transfer-Encoding: chunked\r\n\r\n"
        if payload:
            data += b"%x\r\n%s\r\n" % (len(payload), payload)
        data += b"0\r\n\r\n"
    else:
        data = head + b"\r\n" + payload
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=4)))
    pieces, last = [], 0
    for cut in cuts + [len(data)]:
        pieces.append(data[last:cut])
        last = cut
    return status, payload, framing, [p for p in pieces if p]


@given(
    st.lists(
        st.tuples(
            st.sampled_from([b"GET", b"HEAD"]), st.sampled_from([b"1.1", b"1.0"]), server_answer()
        ),
        min_size=1,
        max_size=3,
    )
)
def test_random_responses_reach_the_client_intact(exchanges) -> None:  # type: ignore[no-untyped-def]
    """Whatever framing and reads the server uses, the client gets the status and the body
    (none for HEAD, 204, 304), framed so that its own parser accepts it; nothing leaks."""
    h = Harness(RESPONSE_CONFIG)
    for method, version, (status, payload, framing, pieces) in exchanges:
        client = h.client()
        client.send(b"%s / HTTP/%s\r\nHost: app\r\n\r\n" % (method, version))
        server = h.connector.servers[-1]
        if server.transport.disconnecting:
            continue
        server.transport.clear()
        for piece in pieces:
            server.protocol.dataReceived(piece)
        if framing == "close":
            server.close()
        parser = h11.Connection(h11.CLIENT)
        parser.send(h11.Request(method=method, target="/", headers=[("Host", "app")]))
        parser.send(h11.EndOfMessage())
        parser.receive_data(client.raw())
        if client.transport.disconnecting:
            parser.receive_data(b"")
        events = []
        while True:
            event = parser.next_event()
            if event in (h11.NEED_DATA, h11.PAUSED) or type(event) is h11.ConnectionClosed:
                break
            events.append(event)
        assert events and events[0].status_code == status
        got = b"".join(e.data for e in events if type(e) is h11.Data)
        expected = b"" if method == b"HEAD" or status in (204, 304) else payload
        assert got == expected and type(events[-1]) is h11.EndOfMessage
        client.close()
    for server in h.connector.servers:
        server.close()
    h.pools.close_all()
    assert h.quiet(), (h.server_load(), h.clock.getDelayedCalls())
