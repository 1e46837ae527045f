"""Header rules end to end: twistd udsproxy, a real backend on a socket file, real clients."""

from __future__ import annotations

import json

from tests.integration.backends import HTTPClient, connect, read_until_close
from tests.integration.proxy import StartProxy

CONFIG = """
global
    log stdout format raw local0
defaults
    mode http
    log global
    option httplog
    timeout connect 2s
    timeout client 10s
    timeout server 10s
userlist ops
    user ann insecure-password pw
frontend fe
    bind {fe}
    http-request deny if {{ path_beg /admin }}
    http-request auth realm Ops if {{ path_beg /ops }} !{{ http_auth(ops) }}
    http-request redirect prefix /v2 if {{ path_beg /v1/ }}
    http-request return status 200 content-type text/plain lf-string "pong %[method]" if {{ path /ping }}
    http-request set-header X-Forwarded-Proto https
    http-request set-header Host %[req.fhdr(x-host)] if {{ req.hdr(x-host) -m found }}
    http-request set-var(txn.uri) url
    http-request del-header X-Debug
    http-response set-header X-Uri %[var(txn.uri)]
    http-response del-header X-Connection-Id
    http-response deny if {{ res.hdr(x-secret) -m found }}
    default_backend be
backend be
    http-request add-header X-Via-Backend %[be_name]
    server a {sockdir}/a.sock
"""


def test_rules_on_one_keep_alive_connection(
    sockdir, start_backend, start_proxy: StartProxy
) -> None:  # type: ignore[no-untyped-def]
    """Replies (deny, auth, redirect, return), rewritten requests, a denied response and a
    failed rewrite follow one another on one client connection; the log has each line."""
    start_backend("a", f"{sockdir}/a.sock")
    fe = f"unix@{sockdir}/fe.sock"
    proxy = start_proxy(CONFIG.format(fe=fe, sockdir=sockdir), ready=fe)
    with HTTPClient(fe) as client:
        assert client.request("GET", "/admin/x").status == 403
        denied = client.request("GET", "/ops")
        assert denied.status == 401 and denied.header("www-authenticate") == 'Basic realm="Ops"'
        moved = client.request("GET", "/v1/a?b")
        assert moved.status == 302 and moved.header("location") == "/v2/v1/a?b"
        pong = client.request("HEAD", "/ping")
        assert (pong.status, pong.header("content-length"), pong.body) == (200, "9", b"")
        seen = client.request("GET", "/headers?q=1", [("X-Debug", "1"), ("X-Host", "app.example")])
        request = json.loads(seen.body)
        assert request["target"] == "/headers?q=1"
        assert request["headers"] == [
            ["Host", "app.example"],
            ["X-Host", "app.example"],
            ["X-Forwarded-Proto", "https"],
            ["X-Via-Backend", "be"],
        ]
        assert seen.header("x-uri") == "/headers?q=1" and seen.header("x-connection-id") is None
        ops = client.request("GET", "/ops", [("Authorization", "Basic YW5uOnB3")])
        assert ops.status == 404 and ops.header("x-backend") == "a"  # the backend answered
        secret = client.request("GET", "/respond?h=X-Secret:1")
        assert secret.status == 502 and b"502 Bad Gateway" in secret.body
        broken = client.request("GET", "/", [("X-Host", "a b")])
        assert broken.status == 500
        assert client.request("GET", "/").status == 200
    log = proxy.wait_log('"GET / HTTP/1.1"')
    for needle in (
        " 403 ",
        "fe/<NOSRV>",
        " PR-- ",
        " 401 ",
        " LR-- ",
        " 302 ",
        " PH-- ",
        " IR-- ",
    ):
        assert needle in log, needle


def test_a_denied_request_with_a_body_closes_the_connection(
    sockdir, start_backend, start_proxy: StartProxy
) -> None:  # type: ignore[no-untyped-def]
    """A request denied before its body was read: the answer, then a close (the unread
    body must never be taken for a next request)."""
    start_backend("a", f"{sockdir}/a.sock")
    fe = f"unix@{sockdir}/fe.sock"
    start_proxy(CONFIG.format(fe=fe, sockdir=sockdir), ready=fe)
    sock = connect(fe)
    try:
        smuggled = b"GET /admin/secret HTTP/1.1\r\nHost: a\r\n\r\n"
        sock.sendall(
            b"POST /admin HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % len(smuggled)
            + smuggled
        )
        data = read_until_close(sock)
    finally:
        sock.close()
    assert data.startswith(b"HTTP/1.1 403 Forbidden\r\n")
    assert data.count(b"HTTP/1.1") == 1 and b"connection: close" in data.lower()
