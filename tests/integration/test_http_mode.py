"""HTTP mode end to end: twistd udsproxy, real backends on socket files, curl and raw sockets."""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import subprocess
import time

import pytest

from tests.integration.backends import (
    HTTPClient,
    connect,
    http_request,
    read_until_close,
)
from tests.integration.proxy import StartProxy
from udsproxy.demo.backend import large_body

TIMEOUTS = """
    defaults
        mode http
        log global
        option httplog
        timeout connect 2s
        timeout client 10s
        timeout server 10s
"""


def three_backends(sockdir: str, start_backend) -> str:  # type: ignore[no-untyped-def]
    for name in ("a", "b", "c"):
        start_backend(name, f"{sockdir}/{name}.sock")
    return "".join(f"    server {n} {sockdir}/{n}.sock\n" for n in ("a", "b", "c"))


def proxy_config(body: str) -> str:
    return "global\n    log stdout format raw local0\n" + TIMEOUTS + body


def test_keepalive_connection_is_balanced_per_request(
    sockdir, start_backend, start_proxy: StartProxy
) -> None:  # type: ignore[no-untyped-def]
    """30 requests on one client connection rotate a, b, c exactly; the log has httplog lines."""
    servers = three_backends(sockdir, start_backend)
    fe = f"unix@{sockdir}/fe.sock"
    proxy = start_proxy(
        proxy_config(f"frontend fe\n    bind {fe}\n    default_backend be\nbackend be\n{servers}"),
        ready=fe,
    )
    with HTTPClient(fe) as client:
        seen = [client.request("GET", "/").header("x-backend") for _ in range(30)]
    assert seen[:3] in (["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"])
    assert seen == seen[:3] * 10
    log = proxy.wait_log('"GET / HTTP/1.1"')
    assert " 200 " in log and "be/a" in log


def test_twenty_mib_up_and_down_arrive_intact(
    sockdir, start_backend, start_proxy: StartProxy
) -> None:  # type: ignore[no-untyped-def]
    """20 MiB uploaded (Content-Length and chunked) and downloaded keep their sha256."""
    start_backend("a", f"{sockdir}/a.sock")
    fe = f"unix@{sockdir}/fe.sock"
    start_proxy(
        proxy_config(
            f"frontend fe\n    bind {fe}\n    default_backend be\nbackend be\n"
            f"    server a {sockdir}/a.sock\n"
        ),
        ready=fe,
    )
    size = 20 * 1024 * 1024
    data = large_body(size)
    digest = hashlib.sha256(data).hexdigest()
    with HTTPClient(fe, timeout=60) as client:
        up = client.request("POST", "/upload", body=data)
        assert json.loads(up.body) == {"bytes": size, "sha256": digest}
        chunks = (data[i : i + (1 << 20)] for i in range(0, size, 1 << 20))
        up = client.request("POST", "/upload", body=chunks)
        assert json.loads(up.body) == {"bytes": size, "sha256": digest}
        down = client.request("GET", f"/large?bytes={size}")
        assert hashlib.sha256(down.body).hexdigest() == digest


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_through_a_tcp_frontend(sockdir, start_backend, start_proxy: StartProxy) -> None:  # type: ignore[no-untyped-def]
    """curl: keep-alive over several URLs, Expect: 100-continue, HTTP/1.0, X-Forwarded-For."""
    start_backend("a", f"{sockdir}/a.sock")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start_proxy(
        proxy_config(
            f"frontend fe\n    bind 127.0.0.1:{port}\n    option forwardfor\n"
            f"    default_backend be\nbackend be\n    server a {sockdir}/a.sock\n"
        ),
        ready=f"127.0.0.1:{port}",
    )
    base = f"http://127.0.0.1:{port}"
    out = subprocess.run(
        ["curl", "-sS", "-m", "10", f"{base}/", f"{base}/"], capture_output=True, check=True
    )
    assert out.stdout == b"hello from a\nhello from a\n"
    body = b"x" * 200000
    out = subprocess.run(
        [
            "curl",
            "-sS",
            "-m",
            "10",
            "-H",
            "Expect: 100-continue",
            "--data-binary",
            "@-",
            f"{base}/upload",
        ],
        input=body,
        capture_output=True,
        check=True,
    )
    assert json.loads(out.stdout)["sha256"] == hashlib.sha256(body).hexdigest()
    out = subprocess.run(
        ["curl", "-sS", "-m", "10", "-0", "-i", f"{base}/chunked?n=3"],
        capture_output=True,
        check=True,
    )
    assert b"chunk 2" in out.stdout and b"chunked" not in out.stdout.lower()
    out = subprocess.run(
        ["curl", "-sS", "-m", "10", f"{base}/headers"], capture_output=True, check=True
    )
    headers = json.loads(out.stdout)["headers"]
    assert ["X-Forwarded-For", "127.0.0.1"] in headers


def test_errors_have_haproxy_codes(sockdir, start_backend, start_proxy: StartProxy) -> None:  # type: ignore[no-untyped-def]
    """502 for a server that dies, 503 with no server, 504 on timeout server, 400 for junk."""
    start_backend("a", f"{sockdir}/a.sock")
    fe = f"unix@{sockdir}/fe.sock"
    fe_dead = f"unix@{sockdir}/dead.sock"
    proxy = start_proxy(
        proxy_config(
            f"frontend fe\n    bind {fe}\n    default_backend be\n"
            f"frontend fe2\n    bind {fe_dead}\n    default_backend dead\n"
            f"backend be\n    timeout server 500ms\n    server a {sockdir}/a.sock\n"
            f"backend dead\n    retries 1\n    server x {sockdir}/nobody.sock\n"
        ),
        ready=fe,
    )
    assert http_request(fe, "GET", "/die").status == 502
    assert http_request(fe, "GET", "/slow?ms=3000").status == 504
    assert http_request(fe_dead, "GET", "/").status == 503
    with connect(fe) as sock:
        sock.sendall(
            b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        assert read_until_close(sock).startswith(b"HTTP/1.1 400 Bad request")
    # The proxy keeps serving everyone else.
    assert http_request(fe, "GET", "/").status == 200
    log = proxy.wait_log(" SC-- ")
    assert " SH-- " in log and " sH-- " in log and " PR-- " in log


def test_server_dying_mid_response_truncates_only_that_client(
    sockdir, start_backend, start_proxy: StartProxy
) -> None:  # type: ignore[no-untyped-def]
    """A response cut short closes its client connection (no hang); other clients are fine."""
    start_backend("a", f"{sockdir}/a.sock")
    fe = f"unix@{sockdir}/fe.sock"
    start_proxy(
        proxy_config(
            f"frontend fe\n    bind {fe}\n    default_backend be\nbackend be\n    server a {sockdir}/a.sock\n"
        ),
        ready=fe,
    )
    with connect(fe) as sock:
        sock.sendall(b"GET /partial HTTP/1.1\r\nHost: a\r\n\r\n")
        out = read_until_close(sock, timeout=5)
    assert b"Content-Length: 1000" in out and len(out.split(b"\r\n\r\n", 1)[1]) == 10
    assert http_request(fe, "GET", "/").status == 200


def test_thin_in_http_mode(sockdir, thin_backend, start_proxy: StartProxy) -> None:  # type: ignore[no-untyped-def]
    """Two real thin servers behind an HTTP frontend, balanced per request on one connection."""
    thin_backend("thin0", f"{sockdir}/thin0.sock")
    thin_backend("thin1", f"{sockdir}/thin1.sock")
    fe = f"unix@{sockdir}/fe.sock"
    start_proxy(
        proxy_config(
            f"frontend fe\n    bind {fe}\n    default_backend thins\nbackend thins\n"
            f"    server thin0 {sockdir}/thin0.sock\n    server thin1 {sockdir}/thin1.sock\n"
        ),
        ready=fe,
    )
    with HTTPClient(fe) as client:
        bodies = [client.request("GET", "/").body for _ in range(6)]
    assert {b.strip() for b in bodies} == {b"hello from thin0", b"hello from thin1"}
    assert bodies[0] != bodies[1]


def test_websocket_through_the_proxy(sockdir, start_backend, start_proxy: StartProxy) -> None:  # type: ignore[no-untyped-def]
    """A real WebSocket client: handshake, frames both ways, per-connection balancing, 101 logged."""
    from websockets.sync.client import unix_connect

    servers = three_backends(sockdir, start_backend)
    fe = f"{sockdir}/fe.sock"
    proxy = start_proxy(
        proxy_config(
            f"frontend fe\n    bind unix@{fe}\n    default_backend be\n"
            f"backend be\n    timeout tunnel 1h\n{servers}"
        ),
        ready=f"unix@{fe}",
    )
    greeted = []
    for _ in range(3):
        # close_timeout=None: the client joins its reader thread without a timeout. On PyPy
        # 3.9 a timed Thread.join can raise "cannot release un-acquired lock" (threading's
        # _wait_for_tstate_lock; seen in CI). pytest-timeout bounds the test instead.
        with unix_connect(fe, "ws://app/ws", open_timeout=5, close_timeout=None) as ws:
            greeting = ws.recv(timeout=5)
            assert isinstance(greeting, str) and greeting.startswith("hello from ")
            greeted.append(greeting.rsplit(" ", 1)[1])
            ws.send("ping")
            assert ws.recv(timeout=5) == "ping"
            blob = large_body(300_000)
            ws.send(blob)
            assert ws.recv(timeout=5) == blob
            pong = ws.ping(b"are you there")
            # Polled, not pong.wait(timeout): on PyPy 3.9 that wait can raise "cannot
            # release un-acquired lock" from the threading module (a flaky client-side error).
            deadline = time.monotonic() + 5
            while not pong.is_set():
                assert time.monotonic() < deadline, "no pong through the tunnel"
                time.sleep(0.01)
    assert sorted(greeted) == ["a", "b", "c"]
    for name in ("a", "b", "c"):  # one line per tunnel, written when it closes
        log = proxy.wait_log(f"be/{name} ")
        line = next(x for x in log.splitlines() if f"be/{name} " in x)
        assert " 101 " in line and line.endswith('"GET /ws HTTP/1.1"')


def test_a_head_cut_short_is_logged_as_badreq(sockdir, start_proxy: StartProxy) -> None:  # type: ignore[no-untyped-def]
    """``GET / HT`` then a close logs 400 CR-- "<BADREQ>" as HAProxy 2.6; dontlognull
    drops a connection that sent nothing, and only that one."""
    fe, quiet = f"{sockdir}/fe.sock", f"{sockdir}/quiet.sock"
    proxy = start_proxy(
        proxy_config(
            f"frontend fe\n    bind {fe}\n    default_backend be\n"
            f"frontend quiet\n    bind {quiet}\n    option dontlognull\n    default_backend be\n"
            f"backend be\n    server a {sockdir}/a.sock\n"
        ),
        ready=f"unix@{fe}",
    )
    for path, data in ((quiet, b""), (quiet, b"GET / HT"), (fe, b"GET / HT"), (fe, b"")):
        with connect(f"unix@{path}") as sock:
            if data:
                sock.sendall(data)
    # socat's way: send, half-close, read the answer.
    out = subprocess.run(
        ["socat", "-", f"UNIX-CONNECT:{fe}"], input=b"GET / HT", capture_output=True, timeout=10
    ).stdout
    assert out.startswith(b"HTTP/1.1 400 Bad request\r\n")
    deadline = time.monotonic() + 5
    while proxy.log().count('"<BADREQ>"') < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    log = proxy.log()
    lines = [line for line in log.splitlines() if "<BADREQ>" in line]
    assert all(" 400 " in line and " CR-- " in line for line in lines), log
    # (the start-up readiness probe is one more silent connection on fe)
    assert sum(" fe fe/<NOSRV> " in line for line in lines) >= 3, log
    assert sum(" quiet quiet/<NOSRV> " in line for line in lines) == 1, log
