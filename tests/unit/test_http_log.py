"""Session lines of HTTP and TCP mode in memory: captures, unique IDs, %[expr], timers.

The proxy runs on a Clock with fake clients and servers (tests/unit/http_harness.py); the
log lines are read from the sink. Dates print in the local zone, so lines are matched from
after the date.
"""

from __future__ import annotations

from typing import Any, List

import h11
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.python.failure import Failure

from tests.unit.http_harness import UNIX_PEER, Harness, answer_all
from tests.unit.test_tcp_session import CFG as TCP_CFG
from tests.unit.test_tcp_session import accepted, open_session, setup

APP = """
frontend fe
    bind /fe.sock
    {extra}
    default_backend app
backend app
    server a /a.sock
backend other
    server o /o.sock
"""


def harness(extra: str) -> Harness:
    return Harness(APP.format(extra=extra.replace("\n", "\n    ")))


def served(h: Harness, client: Any, **kwargs: Any) -> None:
    """One request, answered by its server; its response read."""
    client.request(**kwargs)
    answer_all(h)
    client.responses()


def test_captures_in_httplog_blocks() -> None:
    """Request captures are what the client sent (last occurrence, cut to len); response
    captures what the server sent; a header that is absent is an empty field."""
    h = harness(
        "capture request header X-Foo len 3\n"
        "capture request header User-Agent len 20\n"
        "capture response header X-Backend len 10\n"
        "capture response header Set-Cookie len 8"
    )
    client = h.client(UNIX_PEER)
    served(h, client, headers=[("x-foo", "first"), ("X-Foo", 'a"b|c')])
    line = h.sink.lines[-1]
    assert line.endswith(' {a#22b|} {a|} "GET / HTTP/1.1"'), line


def test_captures_of_a_request_the_proxy_answered() -> None:
    """A 503 from the proxy: the request's captures, empty response ones (HAProxy: {|})."""
    h = harness(
        "capture request header Host len 10\n"
        "capture response header X-Backend len 10\n"
        "capture response header Server len 10"
    )
    h.connector.failures = [("/a.sock", 111)] * 4
    client = h.client(UNIX_PEER)
    client.request()
    assert client.responses()[0][0] == 503
    assert " 503 " in h.sink.lines[-1] and h.sink.lines[-1].endswith(' {app} {|} "GET / HTTP/1.1"')


def test_no_capture_slots_unless_the_frontend_declares_some() -> None:
    """Captures cost nothing to a frontend without capture lines: no slots per request."""
    h = harness('log-format "%b %ST %[capture.req.hdr(0)]"')
    assert h.ctx.log.request_captures is None and h.ctx.log.response_captures is None
    client = h.client(UNIX_PEER)
    served(h, client)
    assert h.sink.lines[-1] == "app 200 -"


def test_capture_rules_fill_slots_that_logs_and_rules_read() -> None:
    """http-request capture (len: a new slot; id: a declared one, also from the backend),
    http-response capture into a declared response slot, header captures beside them: %hr,
    %hs and capture.req/res.hdr(<idx>) see the same slots, cut to each slot's length; a
    sample without a value leaves its slot empty; a slot the frontend lacks reads nothing
    and a backend rule naming one is ignored (HAProxy). capture.req.method/uri/ver read the
    request line as the client sent it (before set-method, set-path), capture.res.ver the
    server's version."""
    cfg = APP.replace(
        "    {extra}\n",
        "    capture request header X-Foo len 4\n"
        "    http-request capture req.hdr(host) len 2\n"
        "    declare capture request len 6\n"
        "    http-request capture req.hdr(x-none) id 0\n"
        "    declare capture response len 2\n"
        "    capture response header X-Backend len 10\n"
        "    http-response capture status id 0\n"
        "    http-response set-header X-Cap %[capture.req.hdr(1)]-%[capture.req.hdr(2)]\n"
        '    log-format "%hr %hs %[capture.req.hdr(0)] %[capture.req.hdr(2)] '
        "%[capture.res.hdr(0)] %[capture.res.hdr(1)] %[capture.req.hdr(9)] "
        '%[capture.req.method] %[capture.req.uri] %[capture.req.ver] %[capture.res.ver]"\n'
        "    http-request set-method POST\n"
        "    http-request set-path /x\n",
    ).replace(
        "\nbackend app\n",
        "\nbackend app\n    http-request capture path id 2\n    http-request capture path id 5\n",
    )
    h = Harness(cfg)
    client = h.client(UNIX_PEER)
    client.request(target="/abcdefgh", headers=[("X-Foo", "foobar")])
    answer_all(h)
    ((status, headers, _),) = client.responses()
    assert h.sink.lines[-1] == (
        "{foob|ap|/x} {20|a} foob /x 20 a - GET /abcdefgh HTTP/1.1 HTTP/1.1"
    )
    assert (status, headers["x-cap"]) == (200, "ap-/x")


def test_unique_id_reaches_the_server_and_the_log() -> None:
    """unique-id-format / unique-id-header: the server receives the ID in the header (before
    X-Forwarded-For, as HAProxy adds them), and %ID logs the same value."""
    h = harness(
        'unique-id-format "%{+X}o %ci:%cp_%rt_%[req.hdr(x-req),lower]"\n'
        "unique-id-header X-Unique-ID\n"
        "option forwardfor\n"
        'log-format "%ID %{+Q}ID"'
    )
    client = h.client(IPv4Address("TCP", "10.0.0.1", 4242))
    client.request(headers=[("X-Req", "AbC")])
    server = h.connector.servers[0]
    (request,) = [e for e in server.read() if hasattr(e, "target")]
    fields = [(k.decode(), v.decode()) for k, v in request.headers.raw_items()]
    uid = "0A000001:1092_0000_abc"
    assert fields[-2:] == [("X-Unique-ID", uid), ("X-Forwarded-For", "10.0.0.1")]
    server.respond()
    assert client.responses()[0][0] == 200
    assert h.sink.lines[-1] == f'{uid} "{uid}"'


def test_unique_id_of_a_refused_request_is_made_for_the_log() -> None:
    """A request answered before it reached a server still logs its ID (HAProxy makes it
    in strm_log)."""
    h = harness('unique-id-format "id-%rt"\nlog-format "%ID %ST"\nuse_backend nope%[path] if TRUE')
    client = h.client(UNIX_PEER)
    client.request()
    assert client.responses()[0][0] == 503
    assert h.sink.lines[-1] == "id-0 503"


def test_samples_in_the_log_line() -> None:
    """%[expr] reads the request, the response and the backend of this exchange."""
    h = harness(
        'log-format "%[req.hdr(host)] %[path] %[status] %[res.hdr(x-backend)] %[be_name] '
        '%[srv_name] %{+Q}[req.hdr(none)] %[req.hdr(none)]"\n'
        "use_backend other if { path_beg /o }"
    )
    client = h.client(UNIX_PEER)
    served(h, client, target="/o/x?y=1")
    assert h.sink.lines[-1] == 'app /o/x 200 o other o "" -'


def test_samples_of_a_bad_request_have_only_the_connection() -> None:
    """No request was parsed: connection fetches have values, request ones none."""
    h = harness('log-format "%[fe_name] %[path] %ST %tsc"')
    client = h.client(UNIX_PEER)
    client.send(b"GET / HT")
    client.close()
    assert h.sink.lines[-1] == "fe - 400 CR--"


def test_bytes_uploaded_count_the_head_and_the_body() -> None:
    """%U: what the client sent for this request, head included; %B what it received."""
    h = harness('log-format "%U %B"')
    client = h.client(UNIX_PEER)
    wire = b"POST / HTTP/1.1\r\nHost: app\r\nContent-Length: 5\r\n\r\nhello"
    client.send(wire)
    answer_all(h)
    received = len(client.raw())
    assert h.sink.lines[-1] == f"{len(wire)} {received}"


def test_request_counter_and_log_counter() -> None:
    """%rt numbers the process's streams from 0; %lc counts the frontend's lines."""
    h = harness('log-format "%rt %lc %{+X}rt"')
    client = h.client(UNIX_PEER)
    for _ in range(3):
        served(h, client)
    assert h.sink.lines == ["0 0 0000", "1 1 0001", "2 2 0002"]


def test_keep_alive_request_times_count_from_the_previous_one() -> None:
    """As HAProxy, a keep-alive connection's next stream starts when the last one ended:
    %Ti is the idle time before its first byte, %Tt counts from the stream's start."""
    h = harness('log-format "%Ti %TR %Tt %Ta"')
    client = h.client(UNIX_PEER)
    h.advance(0.2)
    served(h, client)
    h.advance(0.5)
    client.request()
    h.advance(0.1)
    answer_all(h)
    client.responses()
    first, second = h.sink.lines
    assert first.startswith("200 0 ")  # idle 200 ms after the accept
    assert second == "500 0 600 100"


def test_frontend_address_of_a_tcp_listener() -> None:
    """%fi:%fp: the listener's address, read while the connection is open."""
    h = harness('log-format "%fi:%fp %{+Q}fi"')
    client = h.client(IPv4Address("TCP", "10.0.0.1", 4242))
    served(h, client)
    host = client.transport.getHost()
    assert h.sink.lines[-1] == f'{host.host}:{host.port} "{host.host}"'


def test_server_address_and_source() -> None:
    """%si:%sp of a unix server: unix:0 (HAProxy); %bi:%bp: the server connection's own
    address, read when it connected; none when no server was reached."""
    h = harness('log-format "%si:%sp %bi:%bp"')
    client = h.client(UNIX_PEER)
    served(h, client)
    own = h.connector.servers[0].transport.getHost()
    assert h.sink.lines[-1] == f"unix:0 {own.host}:{own.port}"
    h = harness('log-format "%si:%sp %bi:%bp"')
    h.connector.failures = [("/a.sock", 111)] * 4
    client = h.client(UNIX_PEER)
    client.request()
    assert client.responses()[0][0] == 503
    assert h.sink.lines[-1] == "unix:0 -:-"  # tried, never connected (as HAProxy)


def test_tcp_session_log_format() -> None:
    """A TCP session's line: captures slots print empty ({}), %ST is 0 (no HTTP), the
    unique ID is made at log time, %[expr] reads the connection."""
    extra = (
        'log-format "%ci %b/%s %ST %U %B %ID %hr %[src] %[be_name] %rt"\n'
        "        capture request header Host len 5\n"
        "        unique-id-format %b-%s"
    )
    ctx, clock, runtime, connector = setup(TCP_CFG.format(extra=extra), [accepted])
    lines: List[str] = []

    class Sink:
        enabled = True

        def session(self, line: str, level: str = "info") -> None:
            lines.append(line)

    ctx.sink = ctx.log.sink = Sink()
    session, client_t = open_session(ctx)
    session.client.dataReceived(b"hello")
    client_t.close_reason = Failure(ConnectionDone())
    session.client.connectionLost(Failure(ConnectionDone()))
    assert lines == ["10.0.0.1 l/a 0 5 0 l-a {} 10.0.0.1 l 0"]


def test_set_log_level_silences_or_changes_the_session_line() -> None:
    """set-log-level silent: the request logs no line (health checks); another level is
    the line's syslog level; rules run in order, so the last one that runs wins (a response
    rule after a request rule)."""
    h = harness(
        'log-format "%HP %ST"\n'
        "http-request set-log-level silent if { path /health }\n"
        "http-request set-log-level debug if { path_beg /d }\n"
        "http-response set-log-level err if { status 500 }"
    )
    client = h.client(UNIX_PEER)
    served(h, client, target="/health")
    served(h, client, target="/d")
    client.request(target="/d/boom")
    for server in h.connector.servers:
        server.read()
        if server.h11.our_state is h11.SEND_RESPONSE:
            server.respond(500)
    client.responses()
    served(h, client, target="/plain")
    assert list(zip(h.sink.lines, h.sink.levels)) == [
        ("/d 200", "debug"),
        ("/d/boom 500", "err"),
        ("/plain 200", "info"),
    ]
