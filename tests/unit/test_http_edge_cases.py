"""HTTP edge cases found by review: held uploads, closing clients, early answers, drain."""

from __future__ import annotations

from tests.unit.http_harness import Harness, Transport, answer_all

QUEUED = """
frontend fe
    bind 127.0.0.1:8080
    default_backend be
backend be
    timeout queue 30s
    timeout server 60s
    server a /s/a.sock maxconn 1
"""

KEEPALIVE_1S = """
frontend fe
    bind 127.0.0.1:8080
    timeout http-keep-alive 1s
    timeout http-request 1s
    default_backend be
backend be
    server a /s/a.sock
"""

MAXCONN_1 = """
frontend fe
    bind 127.0.0.1:8080
    default_backend be
backend be
    server a /s/a.sock maxconn 1
"""

PREFER_LAST = """
frontend fe
    bind 127.0.0.1:8080
    default_backend be
backend be
    option prefer-last-server
    server a /s/a.sock
    server b /s/b.sock
"""


class UnreadTransport(Transport):
    """As Twisted's transports with bytes queued: loseConnection waits for the flush."""

    def loseConnection(self) -> None:
        self.disconnecting = True


def test_a_queued_upload_held_by_the_proxy_is_not_a_client_timeout() -> None:
    """While the proxy holds a queued request's body (reading paused), timeout client does not
    run: the request waits under timeout queue instead of getting 408 cD."""
    h = Harness(QUEUED)  # timeout client 10s, server 10s, connect 1s
    c1 = h.client()
    c1.request("GET", "/busy")  # holds the only slot
    h.connector.servers[0].read()
    c2 = h.client()
    body = b"x" * 100_000
    head = b"POST /up HTTP/1.1\r\nHost: app\r\nContent-Length: %d\r\n\r\n" % len(body)
    # A real client's bytes arrive in reads; once PRECONNECT pauses reading the rest
    # stays in the socket (the client is blocked by TCP flow control, not idle).
    c2.send(head + body[:70_000])
    assert len(h.backend.queue) == 1
    out = c2.raw()
    # Expected (HAProxy): still queued until timeout queue (30 s), or served when a slot frees.
    assert b"408" not in out, "queued upload refused 408 cD by timeout client while we held reading"


def test_a_closing_client_that_does_not_read_is_aborted_after_client_fin() -> None:
    """A connection closing after its last response, whose client never reads that response,
    is cut after timeout client-fin (else client) instead of holding its fd forever."""
    h = Harness(KEEPALIVE_1S)
    client = h.client()
    t = UnreadTransport()
    t.protocol = client.protocol
    client.transport = t
    client.protocol.transport = t
    client.protocol.gate.transport = t
    client.request("GET", "/")
    answer_all(h)
    # The client has not read: a write queue as a real transport's, not empty.
    t.dataBuffer = b"x" * 1000  # type: ignore[attr-defined]
    t.offset = 0  # type: ignore[attr-defined]
    t._tempDataLen = 0  # type: ignore[attr-defined]
    h.advance(1.2)  # keep-alive timeout: close() -> loseConnection (waits for the flush)
    assert client.protocol.closing and t.disconnecting
    h.advance(3600)  # timeout client is 10 s: an hour later...
    assert t.aborted, "a closing client that does not read is never aborted (no timeout covers it)"


def test_a_fin_after_an_early_answer_frees_the_slot() -> None:
    """Answered early, then the client's FIN before its body's end: the exchange is abandoned
    at once (CD), its slot freed."""
    h = Harness(MAXCONN_1)
    c = h.client()
    c.send(b"POST /up HTTP/1.1\r\nHost: app\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10)
    srv = h.connector.servers[0]
    srv.read()
    srv.respond(413, b"too big")  # answered before the body's end
    assert c.responses()[0][0] == 413
    c.protocol.readConnectionLost()  # the client is done sending: the body will never end
    assert h.server_load()[0][1] == 0, "slot still held after the client's FIN cut the body"
    assert " CD-- " in h.sink.lines[-1]


def test_a_server_that_answered_early_is_not_blamed_for_the_client() -> None:
    """After an early answer, a client that stops sending is not a server timeout (no eresp)."""
    h = Harness(MAXCONN_1)
    c = h.client()
    c.send(b"POST /up HTTP/1.1\r\nHost: app\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10)
    srv = h.connector.servers[0]
    srv.read()
    srv.respond(413, b"too big")
    c.protocol.readConnectionLost()
    h.advance(11)
    assert h.backend.servers[0].eresp == 0, "a server that answered is counted a response timeout"


def test_a_client_that_stops_sending_after_an_early_answer_is_a_client_timeout() -> None:
    """Answered early, then the client's body stalls: timeout client ends it (cD), not the
    server's timeout."""
    h = Harness(MAXCONN_1)
    c = h.client()
    c.send(b"POST /up HTTP/1.1\r\nHost: app\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10)
    srv = h.connector.servers[0]
    srv.read()
    srv.respond(413, b"too big")
    h.advance(11)
    assert h.backend.servers[0].eresp == 0 and " cD-- " in h.sink.lines[-1]
    assert h.server_load()[0][1] == 0


def test_prefer_last_server_skips_a_drained_server() -> None:
    """option prefer-last-server prefers the last server only while it is usable (HAProxy):
    drained, it gets no new request."""
    h = Harness(PREFER_LAST)
    c = h.client()
    c.request("GET", "/1")
    answer_all(h)
    first = c.responses()[0][1]["x-backend"]
    srv = h.backend.server(first)
    srv.set_admin("drain")  # also: set weight 0, or disable-on-404 (NOLB)
    got = []
    for i in range(5):
        c.request("GET", f"/{i + 2}")
        answer_all(h)
        got += [r[1]["x-backend"] for r in c.responses()]
    assert first not in got, f"drained server {first} still receives new requests: {got}"
