"""HTTP routing in memory: use_backend per request, use-server, connection rules, 503s."""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional, Tuple

import h11
import pytest
from twisted.internet.address import IPv4Address, IPv6Address

from tests.unit.http_harness import UNIX_PEER, Harness, answer_all

ROUTES = """
frontend fe
    bind 127.0.0.1:8080
    acl is_api      path_beg /api/ /v2/api/
    acl is_static   path_end .css .js .png
    acl is_static   path_beg /static/
    acl admin_host  hdr(host) -i admin.example.com
    acl from_lan    src 10.0.0.0/8 192.168.0.0/16
    acl ws          hdr(upgrade) -i websocket
    acl writes      method POST PUT DELETE
    use_backend admin   if admin_host from_lan
    use_backend deny    if admin_host !from_lan
    use_backend sock    if ws
    use_backend api     if is_api writes || { path_reg ^/api/v[0-9]+/write }
    use_backend api_ro  if is_api
    use_backend static  if is_static !{ url_param(nocache) -m found }
    use_backend v6      if { src 2001:db8::/32 }
    default_backend app
backend app
    server app1 /s/app1.sock
backend api
    server api1 /s/api1.sock
backend api_ro
    server ro1 /s/ro1.sock
backend static
    server static1 /s/static1.sock
backend admin
    server admin1 /s/admin1.sock
backend deny
    server deny1 /s/deny1.sock
backend sock
    server sock1 /s/sock1.sock
backend v6
    server v61 /s/v61.sock
"""

LAN = IPv4Address("TCP", "10.1.2.3", 5000)
WAN = IPv4Address("TCP", "203.0.113.9", 5000)
V6 = IPv6Address("TCP", "2001:db8::7", 5000)

# (method, target, headers, peer, expected backend)
TABLE: List[Tuple[str, str, List[Tuple[str, str]], Any, str]] = [
    ("GET", "/", [], LAN, "app"),
    ("GET", "/index.html", [], WAN, "app"),
    ("GET", "/api/users", [], LAN, "api_ro"),
    ("POST", "/api/users", [], LAN, "api"),
    ("DELETE", "/v2/api/x", [], WAN, "api"),
    ("GET", "/api/v3/write", [], WAN, "api"),
    ("GET", "/apix", [], LAN, "app"),
    ("GET", "/static/logo.png", [], WAN, "static"),
    ("GET", "/a/b.css", [], WAN, "static"),
    ("GET", "/a/b.css?nocache=1", [], WAN, "app"),
    ("GET", "/a/b.CSS", [], WAN, "app"),
    ("GET", "/", [("Host", "ADMIN.example.com")], LAN, "admin"),
    ("GET", "/", [("Host", "admin.example.com")], WAN, "deny"),
    ("GET", "/", [("Host", "admin.example.com")], UNIX_PEER, "deny"),
    ("GET", "/chat", [("Upgrade", "WebSocket")], WAN, "sock"),
    ("PUT", "/static/x.js", [], LAN, "static"),
    ("GET", "/", [], V6, "v6"),
    ("GET", "/api/x", [], V6, "api_ro"),
    ("GET", "/", [], IPv6Address("TCP", "::ffff:10.9.9.9", 1), "app"),
]


def route_of(
    h: Harness, method: str, target: str, headers: List[Tuple[str, str]], peer: Any
) -> str:
    client = h.client(peer)
    hdrs = list(headers)
    host = [v for k, v in hdrs if k.lower() == "host"]
    if host:
        hdrs = [(k, v) for k, v in hdrs if k.lower() != "host"]
    req = [("Host", host[0] if host else "app")] + hdrs
    out = client.h11.send(h11.Request(method=method, target=target, headers=req))
    out += client.h11.send(h11.EndOfMessage())
    client.send(out)
    answer_all(h)
    status, resp, body = client.responses()[0]
    assert status == 200, (status, body)
    client.close()
    return resp["x-backend"]


@pytest.mark.parametrize("method, target, headers, peer, expected", TABLE)
def test_routing_table(
    method: str, target: str, headers: List[Tuple[str, str]], peer: Any, expected: str
) -> None:
    """Each request lands on the backend the first matching use_backend names."""
    h = Harness(ROUTES)
    server = route_of(h, method, target, headers, peer)
    backend = {
        "app1": "app",
        "api1": "api",
        "ro1": "api_ro",
        "static1": "static",
        "admin1": "admin",
        "deny1": "deny",
        "sock1": "sock",
        "v61": "v6",
    }[server]
    assert backend == expected


def test_one_keep_alive_connection_routes_each_request() -> None:
    """Requests on one client connection go to different backends, in order."""
    h = Harness(ROUTES)
    client = h.client(LAN)
    seen = []
    for target in ("/api/a", "/", "/static/a.png", "/api/b", "/x.js"):
        client.request("GET", target)
        answer_all(h)
        ((status, headers, _),) = client.responses()
        assert status == 200
        seen.append(headers["x-backend"])
    assert seen == ["ro1", "app1", "static1", "ro1", "static1"]
    assert not client.transport.disconnecting
    log = h.sink.lines
    assert [line.split()[3].split("/")[0] for line in log] == [
        "api_ro",
        "app",
        "static",
        "api_ro",
        "static",
    ]


def test_dynamic_backend_from_a_map(tmp_path: Path) -> None:
    """use_backend %[req.hdr(host),lower,map(...)] routes by Host; an unknown name is a 503
    with a log line naming it."""
    hosts = tmp_path / "hosts.map"
    hosts.write_text("a.example pool_a\nb.example pool_b\nz.example nowhere\n")
    h = Harness(
        f"""
        frontend fe
            bind 127.0.0.1:8080
            use_backend %[req.hdr(host),lower,map({hosts},pool_a)] if {{ path_beg /app }}
            use_backend be_%[req.hdr(x-pool)] if {{ req.hdr(x-pool) -m found }}
            default_backend pool_b
        backend pool_a
            server a1 /s/a1.sock
        backend pool_b
            server b1 /s/b1.sock
        backend be_c
            server c1 /s/c1.sock
        """
    )
    client = h.client(LAN)
    results = []
    for host, target, extra in [
        ("B.example", "/app", []),
        ("unknown.example", "/app", []),
        ("x", "/", [("X-Pool", "c")]),
        ("x", "/", []),
        ("z.example", "/app/x", []),
    ]:
        if client.h11.our_state is h11.DONE and client.h11.their_state is h11.DONE:
            client.h11.start_next_cycle()
        out = client.h11.send(
            h11.Request(method="GET", target=target, headers=[("Host", host)] + extra)
        )
        out += client.h11.send(h11.EndOfMessage())
        client.send(out)
        answer_all(h)
        ((status, headers, _),) = client.responses()
        results.append((status, headers.get("x-backend")))
    assert results == [(200, "b1"), (200, "a1"), (200, "c1"), (200, "b1"), (503, None)]
    events = [text for level, text in h.sink.events if level == "warning"]
    assert len(events) == 1
    assert "'nowhere'" in events[0] and "does not exist" in events[0]
    assert " 503 " in h.sink.lines[-1]


def test_use_server_pins_and_skips_a_down_server() -> None:
    """use-server sends matching requests to its server; while it is down, it is skipped."""
    h = Harness(
        """
        frontend fe
            bind 127.0.0.1:8080
            default_backend be
        backend be
            use-server s2 if { path_beg /two }
            use-server s3 if { path_beg /two }
            server s1 /s/s1.sock
            server s2 /s/s2.sock
            server s3 /s/s3.sock
        """
    )
    client = h.client(LAN)
    seen = []
    for target in ("/two", "/two/x", "/"):
        client.request("GET", target)
        answer_all(h)
        seen.append(client.responses()[0][1]["x-backend"])
    assert seen[:2] == ["s2", "s2"]
    assert seen[2] in ("s1", "s2", "s3")
    s2 = h.backend.server("s2")  # type: ignore[union-attr]
    assert s2 is not None
    s2.op_up = False
    client.request("GET", "/two")
    answer_all(h)
    assert client.responses()[0][1]["x-backend"] == "s3"


def test_tcp_request_connection_reject_closes_before_reading() -> None:
    """tcp-request connection reject closes at once, unlogged, counted in dcon."""
    h = Harness(
        """
        frontend fe
            bind 127.0.0.1:8080
            tcp-request connection accept if { src 10.0.0.0/8 }
            tcp-request connection reject
            default_backend be
        backend be
            server s1 /s/s1.sock
        """
    )
    counters = h.runtime.frontends["fe"]
    bad = h.client(WAN)
    assert bad.transport.disconnecting
    assert counters.dcon == 1 and counters.stot == 0
    good = h.client(LAN)
    good.request("GET", "/")
    answer_all(h)
    assert good.responses()[0][0] == 200
    assert counters.stot == 1 and counters.dcon == 1
    assert len(h.sink.lines) == 1


def test_no_rules_no_context() -> None:
    """A frontend without rules routes as before: no RuleContext is made per request."""
    h = Harness(
        """
        frontend fe
            bind 127.0.0.1:8080
            default_backend be
        backend be
            server s1 /s/s1.sock
        """
    )
    assert not h.ctx.rules and h.ctx.router is None and not h.ctx.connection_rules
    client = h.client(LAN)
    client.request("GET", "/")
    answer_all(h)
    assert client.responses()[0][0] == 200
    assert client.protocol.rule_conn is None


def test_routed_backend_settings_apply() -> None:
    """The chosen backend's own settings apply: its forwardfor and its server timeout."""
    h = Harness(
        """
        frontend fe
            bind 127.0.0.1:8080
            use_backend ff if { path_beg /ff }
            default_backend plain
        backend plain
            server p1 /s/p1.sock
        backend ff
            option forwardfor
            timeout server 2s
            server f1 /s/f1.sock
        """
    )
    client = h.client(LAN)
    client.request("GET", "/ff")
    answer_all(h)
    client.responses()
    client.request("GET", "/")
    answer_all(h)
    client.responses()
    (f1,) = h.connector.server("f1")
    (p1,) = h.connector.server("p1")
    assert (b"x-forwarded-for", b"10.1.2.3") in [(k, v) for k, v in f1.requests()[0].headers]
    assert b"x-forwarded-for" not in [k for k, _ in p1.requests()[0].headers]
    client.request("GET", "/ff")
    h.connector.servers[-1].read()
    h.advance(2.2)
    ((status, _, _),) = client.responses()
    assert status == 504


def status_of(h: Harness, target: str, peer: Optional[Any] = None) -> int:
    client = h.client(peer or LAN)
    client.request("GET", target)
    answer_all(h)
    return client.responses()[0][0]


def test_no_default_backend_is_503() -> None:
    """No rule matches and no default_backend: 503."""
    h = Harness(
        """
        frontend fe
            bind 127.0.0.1:8080
            use_backend be if { path_beg /be }
        backend be
            server s1 /s/s1.sock
        """
    )
    assert status_of(h, "/be/x") == 200
    assert status_of(h, "/other") == 503


@pytest.mark.parametrize("target", ["/index.html#.png", "/#", "/a.png#x", "http://app/x#.png"])
def test_a_fragment_in_the_target_is_refused_before_routing(target: str) -> None:
    """A '#' in the request target is a 400 logged PR--, never routed (as HAProxy 2.6.12)."""
    h = Harness(ROUTES)
    client = h.client(WAN)
    client.send(f"GET {target} HTTP/1.1\r\nHost: app\r\n\r\n".encode())
    answer_all(h)
    ((status, _, _),) = client.responses()
    assert status == 400
    assert not h.connector.servers
    (line,) = h.sink.lines
    assert " 400 " in line and " PR-- " in line


def test_abortonclose_is_the_routed_backends() -> None:
    """option abortonclose applies per routed backend, not per the frontend's default one:
    a FIN while queued abandons the request only where the request was routed to it."""
    h = Harness(
        """
        frontend fe
            bind :8080
            use_backend slow if { path_beg /slow }
            default_backend plain
        backend plain
            server p /s/p.sock maxconn 1
        backend slow
            option abortonclose
            server s /s/s.sock maxconn 1
        """
    )
    for path, name, expect_queue in (("/slow", "slow", 0), ("/", "plain", 1)):
        first, second = h.client(), h.client()
        first.request("GET", path)
        second.request("GET", path)
        queue = h.backends[name].queue
        assert len(queue) == 1
        second.protocol.readConnectionLost()
        assert len(queue) == expect_queue, name
