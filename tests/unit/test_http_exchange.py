"""HTTP mode in memory: per-request balancing, queue, pools, timeouts, errors, in order."""

from __future__ import annotations

import errno

import h11

from tests.unit.http_harness import UNIX_PEER, Harness, answer_all

THREE = """
frontend fe
    bind 127.0.0.1:8080
    default_backend be
backend be
    balance roundrobin
    server a /s/a.sock
    server b /s/b.sock
    server c /s/c.sock
"""


def test_each_request_on_one_connection_is_balanced() -> None:
    """roundrobin over 3 servers rotates exactly across 30 requests on ONE client connection."""
    h = Harness(THREE)
    client = h.client()
    names = []
    for _ in range(30):
        client.request()
        answer_all(h)
        ((status, headers, body),) = client.responses()
        assert status == 200
        names.append(body.decode())
    assert names == ["a", "b", "c"] * 10
    # http-reuse safe: the first request opened its own connection; later ones reuse the pool.
    assert len(h.connector.servers) == 3
    client.close()
    assert h.quiet() or h.pools.idle_count() == 3


def test_pipelined_requests_are_answered_in_order() -> None:
    """Three requests in one write get three responses in request order."""
    h = Harness(THREE)
    client = h.client()
    wire = b""
    for path in ("/1", "/2", "/3"):
        wire += b"GET " + path.encode() + b" HTTP/1.1\r\nHost: app\r\n\r\n"
    client.send(wire)
    # Only the first is in flight: the next waits for its response.
    assert [r.target for s in h.connector.servers for r in _reqs(s)] == [b"/1"]
    answer_all(h)
    targets = [r.target for s in h.connector.servers for r in s.requests()]
    assert sorted(targets) == [b"/1", b"/2", b"/3"]
    raw = client.raw()
    assert raw.count(b"HTTP/1.1 200 ") == 3
    assert raw.index(b"X-Backend: a") < raw.index(b"X-Backend: b") < raw.index(b"X-Backend: c")


def _reqs(server):  # type: ignore[no-untyped-def]
    server.read()
    return server.requests()


def test_maxconn_queues_requests_and_queue_timeout_is_503_sq() -> None:
    """maxconn 1: a second request waits in the queue; after timeout queue it gets 503 sQ."""
    h = Harness(
        """
        frontend fe
            bind :8080
            default_backend be
        backend be
            timeout queue 2s
            server a /s/a.sock maxconn 1
        """
    )
    first, second = h.client(), h.client()
    first.request(target="/first")
    second.request(target="/second")
    assert h.backend is not None and len(h.backend.queue) == 1
    h.advance(2.1)
    ((status, headers, body),) = second.responses()
    assert status == 503 and b"No server is available" in body
    assert any(" 503 " in line and " sQ-- " in line for line in h.sink.lines)
    # The first request still completes, and its slot is released.
    answer_all(h)
    assert [s for s, _, _ in first.responses()] == [200]
    assert h.backend.servers[0].scur == 0


def test_a_released_slot_goes_to_the_queue_head_in_the_same_turn() -> None:
    """When the first response completes, the queued request is sent at once (no polling)."""
    h = Harness(
        """
        frontend fe
            bind :8080
            default_backend be
        backend be
            server a /s/a.sock maxconn 1
        """
    )
    first, second = h.client(), h.client()
    first.request(target="/first")
    second.request(target="/second")
    answer_all(h)
    # the queued request is on the wire already
    targets = [r.target for s in h.connector.servers for r in _reqs(s)]
    assert targets == [b"/first", b"/second"]


def test_client_leaving_the_queue_frees_its_place_at_once() -> None:
    """A queued client that closes leaves the queue in the same call (CQ in the log)."""
    h = Harness(
        """
        frontend fe
            bind :8080
            default_backend be
        backend be
            server a /s/a.sock maxconn 1
        """
    )
    first, second = h.client(), h.client()
    first.request()
    second.request()
    assert h.backend is not None and len(h.backend.queue) == 1
    second.close()
    assert len(h.backend.queue) == 0
    assert any(" CQ-- " in line for line in h.sink.lines)
    answer_all(h)
    first.close()
    assert h.quiet() or h.pools.idle_count() == 1


def test_client_gone_while_waiting_for_the_response_closes_the_server_connection() -> None:
    """An unfinished exchange's server connection is closed, never pooled; the slot is freed."""
    h = Harness(THREE)
    client = h.client()
    client.request()
    server = h.connector.servers[0]
    client.close()
    assert server.transport.disconnecting
    assert h.pools.idle_count() == 0
    assert all(s.scur == 0 for s in h.backend.servers)  # type: ignore[union-attr]


def test_no_server_is_503_sc() -> None:
    """A backend whose only server is in maintenance answers 503 with SC and <NOSRV>."""
    h = Harness(
        """
        frontend fe
            bind :8080
            default_backend be
        backend be
            server a /s/a.sock disabled
        """
    )
    client = h.client()
    client.request()
    ((status, _, _),) = client.responses()
    assert status == 503
    assert "<NOSRV>" in h.sink.lines[-1] and " SC-- " in h.sink.lines[-1]
    # the connection stays usable: a 503 after a complete request keeps keep-alive
    assert not client.transport.disconnecting


def test_connect_failures_retry_then_redispatch() -> None:
    """ENOENT on a: redispatched to b at once, the log's retries field +1 (as HAProxy)."""
    h = Harness(
        """
        frontend fe
            bind :8080
            default_backend be
        backend be
            retries 2
            option redispatch
            balance first
            server a /s/a.sock id 1
            server b /s/b.sock id 2
        """
    )
    h.connector.failures = [("/s/a.sock", errno.ENOENT)]
    client = h.client()
    client.request()
    answer_all(h)
    ((status, headers, body),) = client.responses()
    assert status == 200 and body == b"b"
    assert h.connector.calls == ["/s/a.sock", "/s/b.sock"]
    assert "/+1 " in h.sink.lines[-1]


def test_connect_failures_after_retries_are_503_sc() -> None:
    """Every connect failing: 503 after retries, SC, the retry count in the log."""
    h = Harness(
        """
        frontend fe
            bind :8080
            default_backend be
        backend be
            retries 1
            server a /s/a.sock
        """
    )
    h.connector.failures = [("/s/a.sock", errno.ECONNREFUSED)] * 2
    client = h.client()
    client.request()
    ((status, _, _),) = client.responses()
    assert status == 503 and " SC-- " in h.sink.lines[-1]


def test_server_closing_without_response_is_502_sh() -> None:
    """A new connection closed before any response byte: 502 SH."""
    h = Harness(THREE)
    client = h.client()
    client.request(method="POST", body=b"x")
    h.connector.servers[0].close()
    ((status, _, body),) = client.responses()
    assert status == 502 and b"invalid or incomplete" in body
    assert " SH-- " in h.sink.lines[-1]


def test_reused_connection_closed_by_the_server_is_retried_once_on_a_new_one() -> None:
    """An idempotent request sent on a pooled connection the server had closed is resent."""
    h = Harness(
        """
        frontend fe
            bind :8080
            default_backend be
        backend be
            server a /s/a.sock
        """
    )
    client = h.client()
    client.request()
    answer_all(h)
    assert [s for s, _, _ in client.responses()] == [200]
    assert h.pools.idle_count() == 1
    client.request(target="/again")  # a subsequent request: takes the pooled connection
    first = h.connector.servers[0]
    first.read()
    assert first.requests()[-1].target == b"/again"
    first.close()  # the server's keep-alive timer fired just as the request arrived
    assert len(h.connector.servers) == 2
    answer_all(h)
    ((status, _, _),) = client.responses()
    assert status == 200


def test_server_timeout_before_the_head_is_504_then_truncates_after() -> None:
    """timeout server: 504 sH before the response head."""
    h = Harness(
        """
        frontend fe
            bind :8080
            default_backend be
        backend be
            timeout server 1s
            server a /s/a.sock
        """
    )
    client = h.client()
    client.request()
    h.advance(1.2)
    ((status, _, _),) = client.responses()
    assert status == 504 and " sH-- " in h.sink.lines[-1]


def test_server_dying_mid_response_truncates_the_client() -> None:
    """Headers sent, then the server dies: the client connection is aborted (SD), never hangs."""
    h = Harness(THREE)
    client = h.client()
    client.request()
    server = h.connector.servers[0]
    server.read()
    server.respond(body=b"12345", headers=[("Content-Length", "100")], end=False)
    server.close()
    assert client.transport.disconnecting and b"12345" in client.raw()
    assert " SD-- " in h.sink.lines[-1]


def test_http_request_timeout_is_408_and_keep_alive_idle_closes_silently() -> None:
    """A silent new connection and a slow head get 408; an idle keep-alive connection just closes."""
    h = Harness(
        """
        frontend fe
            bind :8080
            timeout http-request 1s
            timeout http-keep-alive 3s
            default_backend be
        backend be
            server a /s/a.sock
        """
    )
    silent = h.client()
    slow = h.client()
    slow.send(b"GET / HTTP/1.1\r\nHost: a")
    h.advance(1.2)
    assert silent.raw().startswith(b"HTTP/1.1 408 ")
    assert slow.raw().startswith(b"HTTP/1.1 408 ")
    assert any(" cR-- " in line for line in h.sink.lines)
    idle = h.client()
    idle.request()
    answer_all(h)
    assert [s for s, _, _ in idle.responses()] == [200]
    h.advance(2.5)
    assert not idle.transport.disconnecting
    h.advance(1.0)
    assert idle.transport.disconnecting and idle.raw() == b""


def test_smuggling_attempts_never_reach_a_server() -> None:
    """CL+TE, duplicate differing CL, obs-fold, TE not chunked: 400 and close, nothing sent."""
    attacks = [
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nxxxxx",
        b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n folded\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost : a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\n" + b"X: y\r\n" * 101 + b"\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"y" * 16000 + b"\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ]
    for attack in attacks:
        h = Harness(THREE)
        client = h.client()
        client.send(attack)
        out = client.raw()
        assert out.startswith(b"HTTP/1.1 400 "), (attack, out)
        assert client.transport.disconnecting, attack
        for server in h.connector.servers:  # a chunked body error may follow a valid head
            server.read()
            assert not any(
                (b"content-length" in dict(r.headers) and b"transfer-encoding" in dict(r.headers))
                for r in server.requests()
            )
        assert h.runtime.frontends["fe"].ereq >= 1
        assert h.runtime.frontends["fe"].last_request_error is not None


def test_a_second_request_in_a_bad_one_is_not_forwarded() -> None:
    """The bytes after a refused head are never parsed as a request."""
    h = Harness(THREE)
    client = h.client()
    client.send(
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 30\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n"
    )
    assert h.connector.servers == []


def test_hop_by_hop_headers_are_removed_and_forwardfor_added_for_tcp_clients() -> None:
    """Connection and what it names, Keep-Alive, TE go; names keep their case; XFF is appended."""
    h = Harness(
        """
        frontend fe
            bind :8080
            option forwardfor
            default_backend be
        backend be
            server a /s/a.sock
        """
    )
    client = h.client()
    client.request(
        headers=[
            ("Connection", "keep-alive, X-Secret"),
            ("X-Secret", "1"),
            ("Keep-Alive", "timeout=5"),
            ("TE", "trailers"),
            ("X-Mixed-Case", "v"),
            ("X-Forwarded-For", "1.2.3.4"),
        ]
    )
    server = h.connector.servers[0]
    server.read()
    (req,) = server.requests()
    raw = req.headers.raw_items()
    names = [n for n, _ in raw]
    assert b"X-Mixed-Case" in names
    assert not {b"connection", b"x-secret", b"keep-alive", b"te"} & {n.lower() for n in names}
    assert [v for n, v in raw if n.lower() == b"x-forwarded-for"] == [b"1.2.3.4", b"10.0.0.1"]


def test_no_forwardfor_for_unix_clients() -> None:
    """HAProxy adds no X-Forwarded-For for a client on a unix socket."""
    h = Harness(
        """
        frontend fe
            bind :8080
            option forwardfor
            default_backend be
        backend be
            server a /s/a.sock
        """
    )
    client = h.client(UNIX_PEER)
    client.request()
    server = h.connector.servers[0]
    server.read()
    (req,) = server.requests()
    assert b"x-forwarded-for" not in dict(req.headers)


def test_connect_is_405_and_absolute_form_becomes_origin_form() -> None:
    """CONNECT gets 405; an absolute-form target is sent as a path with Host from it
    (the authority and Host agree, compared without case)."""
    h = Harness(THREE)
    client = h.client()
    client.send(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
    assert client.raw().startswith(b"HTTP/1.1 405 ")
    h = Harness(THREE)
    client = h.client()
    client.send(b"GET http://Example.com/x?y=1 HTTP/1.1\r\nHost: example.com\r\n\r\n")
    server = h.connector.servers[0]
    server.read()
    (req,) = server.requests()
    assert req.target == b"/x?y=1" and dict(req.headers)[b"host"] == b"Example.com"


def test_absolute_form_whose_authority_is_not_the_host_is_400() -> None:
    """As HAProxy: an absolute URI naming another authority than Host is refused, not sent."""
    h = Harness(THREE)
    client = h.client()
    client.send(b"GET http://example.com/x HTTP/1.1\r\nHost: other\r\n\r\n")
    assert client.raw().startswith(b"HTTP/1.1 400 ")
    assert h.connector.servers == [] and client.transport.disconnecting


def test_http_reuse_never_keeps_connections_private() -> None:
    """http-reuse never: another client never gets this client's idle connection."""
    h = Harness(
        """
        frontend fe
            bind :8080
            default_backend be
        backend be
            http-reuse never
            server a /s/a.sock
        """
    )
    one, two = h.client(), h.client()
    one.request()
    answer_all(h)
    one.responses()
    two.request()
    assert len(h.connector.servers) == 2  # not the idle one of client one
    answer_all(h)
    two.responses()
    one.request()
    answer_all(h)
    assert len(h.connector.servers) == 2  # client one reuses its own
    one.close()
    assert h.connector.servers[0].transport.disconnecting


def test_http_reuse_always_lets_a_first_request_reuse() -> None:
    """http-reuse always: a new client's first request takes an idle connection."""
    h = Harness(
        """
        frontend fe
            bind :8080
            default_backend be
        backend be
            http-reuse always
            server a /s/a.sock
        """
    )
    one = h.client()
    one.request()
    answer_all(h)
    one.responses()
    two = h.client()
    two.request()
    assert len(h.connector.servers) == 1


def test_server_connection_close_is_not_pooled_and_no_error() -> None:
    """A server answering Connection: close (gunicorn sync) is fine: 200, then a new connection."""
    h = Harness(THREE)
    client = h.client()
    client.request()
    server = h.connector.servers[0]
    server.read()
    server.respond(headers=[("Connection", "close")])
    ((status, headers, _),) = client.responses()
    assert status == 200 and "connection" not in headers
    assert h.pools.idle_count() == 0 and not client.transport.disconnecting


def test_pool_purge_delay_closes_idle_connections() -> None:
    """An idle pooled connection is closed after pool-purge-delay."""
    h = Harness(
        """
        frontend fe
            bind :8080
            default_backend be
        backend be
            server a /s/a.sock pool-purge-delay 1s
        """
    )
    client = h.client()
    client.request()
    answer_all(h)
    client.responses()
    assert h.pools.idle_count() == 1
    h.advance(1.3)
    assert h.pools.idle_count() == 0
    assert h.connector.servers[0].transport.disconnecting


def test_early_response_while_uploading_keeps_forwarding_the_body() -> None:
    """A server answering before the body ends (413): the client gets it at once, the rest of
    the body still reaches the server, and the connection serves the next request (HAProxy)."""
    h = Harness(THREE)
    client = h.client()
    client.send(b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n0123456789")
    server = h.connector.servers[0]
    server.read()
    server.respond(status=413, body=b"too big")
    ((status, _, _),) = client.responses()
    assert status == 413 and not client.transport.disconnecting
    client.send(b"x" * 90)
    events = server.read()
    body = b"".join(e.data for e in events if isinstance(e, h11.Data))
    assert body == b"x" * 90 and any(isinstance(e, h11.EndOfMessage) for e in events)
    assert h.pools.idle_count() == 1  # the server read it all: its connection is reusable
    assert "413" in h.sink.lines[-1] and " ---- " in h.sink.lines[-1]
    client.raw()
    client.send(b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n")
    answer_all(h)
    assert client.raw().startswith(b"HTTP/1.1 200 ")


def test_early_response_then_server_close_closes_the_client_with_sd() -> None:
    """The server answers early then closes mid-upload: the client gets the answer, then a
    close (nothing more can be forwarded); the log says SD, not ----."""
    h = Harness(THREE)
    client = h.client()
    client.send(b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n0123456789")
    server = h.connector.servers[0]
    server.read()
    server.respond(status=413, body=b"too big", headers=[("Connection", "close")])
    server.close()
    ((status, _, _),) = client.responses()
    assert status == 413 and client.transport.disconnecting
    assert " SD-- " in h.sink.lines[-1]
    assert h.pools.idle_count() == 0


def test_chunked_request_is_forwarded_chunked_with_trailers() -> None:
    """Chunked in, chunked out to an HTTP/1.1 server; trailers are forwarded."""
    h = Harness(THREE)
    client = h.client()
    client.send(
        b"POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 42\r\n\r\n"
    )
    server = h.connector.servers[0]
    events = server.read()
    body = b"".join(e.data for e in events if isinstance(e, h11.Data))
    (eom,) = [e for e in events if isinstance(e, h11.EndOfMessage)]
    assert body == b"hello world" and (b"x-sum", b"42") in list(eom.headers)


def test_http10_client_gets_a_close_delimited_body() -> None:
    """HTTP/1.0 clients get no chunked encoding: the body ends with the connection."""
    h = Harness(THREE)
    client = h.client()
    client.send(b"GET / HTTP/1.0\r\n\r\n")
    server = h.connector.servers[0]
    server.read()
    server.respond(headers=[("Transfer-Encoding", "chunked")], body=b"hello")
    if server.h11.our_state is h11.MUST_CLOSE:
        server.close()  # the request was HTTP/1.0: the server's body ends with its close
    out = client.raw()
    assert b"chunked" not in out.lower() and out.endswith(b"hello")
    assert client.transport.disconnecting


def test_http10_request_without_host_is_sent_as_it_is() -> None:
    """As HAProxy: an HTTP/1.0 request without Host reaches the server as HTTP/1.0 with no
    invented Host, asking to keep the connection; one with a Host goes as HTTP/1.1."""
    h = Harness(THREE)
    client = h.client()
    client.send(b"GET /x HTTP/1.0\r\nAccept: */*\r\n\r\n")
    server = h.connector.servers[0]
    wire = server.transport.value()
    assert wire == b"GET /x HTTP/1.0\r\nAccept: */*\r\nconnection: keep-alive\r\n\r\n"
    server.read()
    server.respond(body=b"hi")
    assert client.raw().endswith(b"hi")
    client = h.client()
    client.send(b"GET /y HTTP/1.0\r\nHost: app\r\n\r\n")
    wire = b"".join(s.transport.value() for s in h.connector.servers)
    assert b"GET /y HTTP/1.1\r\nHost: app\r\n" in wire


def test_head_and_304_carry_no_body() -> None:
    """HEAD keeps the server's Content-Length, without a body; 304 has none either."""
    h = Harness(THREE)
    client = h.client()
    client.request(method="HEAD")
    server = h.connector.servers[0]
    server.read()
    out = server.h11.send(h11.Response(status_code=200, headers=[("Content-Length", "42")]))
    out += server.h11.send(h11.EndOfMessage())
    server.feed(out)
    raw = client.raw()
    assert b"Content-Length: 42" in raw and raw.endswith(b"\r\n\r\n")


def test_timers_and_slots_are_clean_after_a_session() -> None:
    """After clients leave and pools are purged nothing is left: no slot, queue entry or timer."""
    h = Harness(THREE)
    for _ in range(3):
        client = h.client()
        client.request()
        answer_all(h)
        client.responses()
        client.close()
    h.pools.close_all()
    assert h.quiet()


def one_server(options: str) -> Harness:
    return Harness(
        f"""
        frontend fe
            bind :8080
            default_backend be
        backend be
        {options}
            server a /s/a.sock
            server b /s/b.sock
        """
    )


def test_http_server_close_sends_connection_close_and_pools_nothing() -> None:
    """option http-server-close: Connection: close to the server; the client stays open."""
    h = one_server("    option http-server-close")
    client = h.client()
    client.request()
    server = h.connector.servers[0]
    server.read()
    (req,) = server.requests()
    assert dict(req.headers)[b"connection"] == b"close"
    server.respond()
    assert [s for s, _, _ in client.responses()] == [200]
    assert h.pools.idle_count() == 0 and not client.transport.disconnecting


def test_httpclose_closes_the_client_after_the_response() -> None:
    """option httpclose: the response says Connection: close and the client is closed."""
    h = one_server("    option httpclose")
    client = h.client()
    client.request()
    answer_all(h)
    ((status, headers, _),) = client.responses()
    assert status == 200 and headers.get("connection") == "close"
    assert client.transport.disconnecting


def test_prefer_last_server_keeps_a_client_on_its_server() -> None:
    """option prefer-last-server: a client's next requests go where its last one went."""
    h = one_server("    option prefer-last-server")
    client = h.client()
    bodies = []
    for _ in range(4):
        client.request()
        answer_all(h)
        bodies += [b for _, _, b in client.responses()]
    assert len(set(bodies)) == 1


def test_abortonclose_abandons_a_queued_request_on_fin() -> None:
    """option abortonclose: a client FIN while queued leaves the queue; without it, it waits."""
    for option, expect_queue in (("    option abortonclose", 0), ("", 1)):
        h = Harness(
            f"""
            frontend fe
                bind :8080
                default_backend be
            backend be
            {option}
                server a /s/a.sock maxconn 1
            """
        )
        first, second = h.client(), h.client()
        first.request()
        second.request()
        second.protocol.readConnectionLost()
        assert h.backend is not None and len(h.backend.queue) == expect_queue


def test_pool_max_conn_bounds_idle_connections() -> None:
    """pool-max-conn 1: of two idle connections to a server one is kept, one closed."""
    h = Harness(
        """
        frontend fe
            bind :8080
            default_backend be
        backend be
            http-reuse never
            server a /s/a.sock pool-max-conn 1
        """
    )
    h.ctx.settings.reuse = "safe"  # both first requests open their own connection
    one, two = h.client(), h.client()
    one.request()
    two.request()
    answer_all(h)
    one.responses()
    two.responses()
    assert h.pools.idle_count() == 1
    assert sum(s.transport.disconnecting for s in h.connector.servers) == 1


def test_frontend_counts_bytes_in_and_out() -> None:
    """HTTP mode counts the frontend's bytes (request body in, response out), as show stat reads."""
    h = Harness(THREE)
    client = h.client()
    client.request(method="POST", body=b"12345")
    answer_all(h)
    ((status, _, _),) = client.responses()
    fe = h.runtime.frontends["fe"]
    assert status == 200 and fe.bin == 5
    assert h.backend is not None
    assert fe.bout > 0 and fe.bout == sum(s.bout for s in h.backend.servers)


def test_connect_and_response_outcomes_reach_the_health_hook() -> None:
    """Each connect failure (with its errno class) and each response is reported to the server."""
    h = Harness(
        """
        frontend fe
            bind :8080
            default_backend be
        backend be
            retries 1
            server a /s/a.sock
        """
    )
    assert h.backend is not None
    reports = []
    h.backend.state.add_report_observer(reports.append)
    h.connector.failures = [("/s/a.sock", errno.ENOENT)]
    client = h.client()
    client.request()
    answer_all(h)
    ((status, _, _),) = client.responses()
    assert status == 200
    assert [(r.outcome.value, r.cause) for r in reports] == [
        ("connect-error", "ENOENT"),
        ("connect-ok", ""),
        ("response-ok", "200"),  # the status: observe layer7 judges it
    ]
    assert h.backend.servers[0].econ == 1 and h.backend.servers[0].connect_error is None


def test_a_removed_servers_idle_connections_are_closed() -> None:
    """Pools.forget_server closes a removed server's idle connections and drops its pool."""
    h = Harness(THREE)
    client = h.client()
    client.request()
    answer_all(h)
    client.responses()
    assert h.pools.idle_count() == 1 and h.backend is not None
    a = h.backend.servers[0]
    h.pools.forget_server(a)
    assert h.pools.idle_count() == 0 and a not in h.pools.by_server
    assert h.connector.servers[0].transport.disconnecting


def test_http2_preface_is_refused_and_nothing_is_forwarded() -> None:
    """The HTTP/2 prior-knowledge preface on an HTTP/1.1 frontend: 400, closed, no server."""
    h = Harness(THREE)
    client = h.client()
    client.send(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
    assert client.raw().startswith(b"HTTP/1.1 400 ")
    assert h.connector.servers == [] and client.transport.disconnecting
    assert h.runtime.frontends["fe"].ereq == 1


def test_http09_request_line_is_400_at_once() -> None:
    """``GET /x`` and its line end: 400 now, not a wait for timeout http-request (408)."""
    h = Harness(THREE)
    client = h.client()
    client.send(b"GET /x\r\n")
    assert client.raw().startswith(b"HTTP/1.1 400 ")
    assert h.connector.servers == [] and client.transport.disconnecting
    assert "<BADREQ>" in h.sink.lines[-1] and " PR-- " in h.sink.lines[-1]  # as HAProxy 2.6.12
