"""Routing end to end: use_backend per request on keep-alive connections, dynamic names from
a map, tcp-request rules in TCP mode, and the same routing decisions as HAProxy 2.6."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from typing import Callable, List, Tuple

import pytest

from tests.integration.backends import (
    HTTPClient,
    connect,
    recv_line,
    stop_process,
    wait_connectable,
)
from tests.integration.proxy import StartProxy
from tests.integration.test_http_mode import proxy_config
from tests.integration.test_tcp_mode import TIMEOUTS as TCP_TIMEOUTS
from tests.integration.test_tcp_mode import free_port

HAPROXY = "/usr/sbin/haproxy"


def tcp_config(body: str) -> str:
    return "global\n    log stdout format raw local0\n" + TCP_TIMEOUTS + body


def routing_config(sockdir: str, fe: str, hosts_map: str) -> str:
    """A typical edge: API and assets pools, admin by Host from the LAN only, a Host map."""
    return proxy_config(
        f"""
frontend fe
    bind {fe}
    acl is_api     path_beg /api/
    acl is_static  path_end .css .js .png
    acl is_static  path_beg /static/
    acl admin_host hdr(host) -i admin.example.com
    acl writes     method POST PUT DELETE
    use_backend admin   if admin_host
    use_backend api     if is_api writes || {{ path_reg ^/api/v[0-9]+/write }}
    use_backend api_ro  if is_api
    use_backend static  if is_static !{{ url_param(nocache) -m found }}
    use_backend %[req.hdr(host),lower,map({hosts_map},app)] if {{ hdr_end(host) -i .example.org }}
    default_backend app
backend app
    server app {sockdir}/app.sock
backend api
    server api {sockdir}/api.sock
backend api_ro
    server ro {sockdir}/ro.sock
backend static
    server static {sockdir}/static.sock
backend admin
    server admin {sockdir}/admin.sock
backend shop
    server shop {sockdir}/shop.sock
"""
    )


# (method, path, extra headers, the server that answers)
REQUESTS: List[Tuple[str, str, List[Tuple[str, str]], str]] = [
    ("GET", "/", [], "app"),
    ("GET", "/api/users", [], "ro"),
    ("POST", "/api/users", [], "api"),
    ("GET", "/api/v2/write", [], "api"),
    ("GET", "/static/app.css", [], "static"),
    ("GET", "/a/b.png", [], "static"),
    ("GET", "/a/b.png?nocache=1", [], "app"),
    ("GET", "/", [("Host", "Admin.Example.com")], "admin"),
    ("GET", "/", [("Host", "shop.example.org")], "shop"),
    ("GET", "/", [("Host", "blog.example.org")], "app"),
    ("DELETE", "/api/x", [], "api"),
    ("GET", "/apix", [], "app"),
]

SERVERS = ("app", "api", "ro", "static", "admin", "shop")


def start_servers(sockdir: str, start_backend: Callable[..., object]) -> None:
    for name in SERVERS:
        start_backend(name, f"{sockdir}/{name}.sock")


def write_map(sockdir: str) -> str:
    path = os.path.join(sockdir, "hosts.map")
    with open(path, "w") as f:
        f.write("# host -> backend\nshop.example.org shop\nold.example.org gone\n")
    return path


def answers(address: str) -> List[str]:
    """Every request of REQUESTS on one keep-alive connection: the server of each answer."""
    with HTTPClient(address) as client:
        out = []
        for method, path, headers, _ in REQUESTS:
            response = client.request(method, path, headers)
            assert response.status in (200, 404), (method, path, response)  # the demo's own 404
            out.append(response.header("x-backend") or "")
        return out


def test_each_request_of_a_keep_alive_connection_is_routed(
    sockdir, start_backend, start_proxy: StartProxy
) -> None:  # type: ignore[no-untyped-def]
    """One client connection, twelve requests: each goes to its backend's server, and the
    log names each backend; a Host mapped to a missing backend is a 503 with a log line."""
    start_servers(sockdir, start_backend)
    fe = f"unix@{sockdir}/fe.sock"
    proxy = start_proxy(routing_config(sockdir, fe, write_map(sockdir)), ready=fe)
    assert answers(fe) == [server for *_, server in REQUESTS]
    log = proxy.wait_log('"GET /apix HTTP/1.1"')
    assert " fe api_ro/ro " in log and " fe static/static " in log and " fe shop/shop " in log
    with HTTPClient(fe) as client:
        response = client.request("GET", "/", [("Host", "old.example.org")])
    assert response.status == 503
    log = proxy.wait_log("names backend 'gone', which does not exist")
    assert "use_backend %[req.hdr(host),lower,map(" in log


def tcp_backends(sockdir: str) -> str:
    """web, ssh and other: one tcp-name server each."""
    return "".join(
        f"backend {name}\n    server {name} {sockdir}/{name}.sock\n"
        for name in ("web", "ssh", "other")
    )


def test_tcp_mode_inspects_then_routes(sockdir, start_backend, start_proxy: StartProxy) -> None:  # type: ignore[no-untyped-def]
    """mode tcp: inspect-delay holds the first bytes, content rules reject or accept, and
    use_backend routes on the payload and the port; connection rules refuse at accept."""
    for name in ("web", "ssh", "other"):
        start_backend(name, f"{sockdir}/{name}.sock", mode="tcp-name")
    port, blocked = free_port(), free_port()
    config = tcp_config(
        f"""
frontend fe
    bind 127.0.0.1:{port}
    bind 127.0.0.1:{blocked}
    tcp-request connection reject if {{ dst_port {blocked} }}
    tcp-request inspect-delay 2s
    tcp-request content reject if {{ req.payload(0,4) -m bin 51554954 }}
    tcp-request content accept if {{ req.len ge 4 }}
    use_backend ssh if {{ req.payload(0,4) -m bin 5353482d }}
    use_backend web if {{ req.payload(0,4) -m str GET\\  }} || {{ req.payload(0,4),hex -m beg 504F }}
    default_backend other
"""
    ) + tcp_backends(sockdir)
    proxy = start_proxy(config, ready=f"127.0.0.1:{port}")
    address = f"127.0.0.1:{port}"

    def first_line(*pieces: bytes) -> bytes:
        with connect(address) as sock:
            for piece in pieces:
                sock.sendall(piece)
                time.sleep(0.05)  # separate reads: the rules see partial data first
            return recv_line(sock).strip()

    assert first_line(b"SSH-2.0-x\r\n") == b"ssh"
    assert first_line(b"GE", b"T / HTTP/1.0\r\n") == b"web"
    assert first_line(b"POST /") == b"web"
    assert first_line(b"hello") == b"other"
    with connect(address) as sock:  # QUIT: rejected, closed without a server
        sock.sendall(b"QUIT\r\n")
        sock.settimeout(5)
        assert sock.recv(100) == b""
    start = time.monotonic()
    with connect(address) as sock:  # too short: the last verdict comes with inspect-delay
        sock.sendall(b"ab")
        sock.settimeout(5)
        line = sock.recv(100)
    assert line.startswith(b"other\n") and 1.5 < time.monotonic() - start < 4.5
    with socket.create_connection(("127.0.0.1", blocked), timeout=5) as sock:
        assert sock.recv(100) == b""  # refused at accept, before any byte
    log = proxy.wait_log(" fe ssh/ssh ")
    assert " PR-- " in log or "PR" in log
    assert f":{blocked} " not in log  # a refused connection is not logged


# ----------------------------------------------------------------- HAProxy side by side
def run_haproxy(config: str, sockdir: str, ready: str) -> subprocess.Popen:  # type: ignore[type-arg]
    cfg = os.path.join(sockdir, "haproxy.cfg")
    with open(cfg, "w") as f:
        f.write(config)
    check = subprocess.run([HAPROXY, "-c", "-f", cfg], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    log = open(os.path.join(sockdir, "haproxy.log"), "wb")
    hap = subprocess.Popen([HAPROXY, "-db", "-f", cfg], stdout=log, stderr=subprocess.STDOUT)
    wait_connectable(ready, proc=hap)
    return hap


@pytest.mark.skipif(not shutil.which(HAPROXY), reason="HAProxy is not installed")
def test_routing_decisions_match_haproxy(sockdir, start_backend, start_proxy: StartProxy) -> None:  # type: ignore[no-untyped-def]
    """The same routing config and requests: udsproxy and HAProxy 2.6 pick the same servers."""
    start_servers(sockdir, start_backend)
    hosts = write_map(sockdir)
    ours_fe = f"{sockdir}/fe.sock"
    start_proxy(routing_config(sockdir, ours_fe, hosts), ready=f"unix@{ours_fe}")
    ours = answers(f"unix@{ours_fe}")
    theirs_fe = f"{sockdir}/hfe.sock"
    hap = run_haproxy(routing_config(sockdir, theirs_fe, hosts), sockdir, f"unix@{theirs_fe}")
    try:
        theirs = answers(f"unix@{theirs_fe}")
    finally:
        stop_process(hap)
    assert ours == theirs


@pytest.mark.skipif(not shutil.which(HAPROXY), reason="HAProxy is not installed")
def test_tcp_routing_matches_haproxy(sockdir, start_backend, start_proxy: StartProxy) -> None:  # type: ignore[no-untyped-def]
    """mode tcp routing by source and first bytes: the same choices as HAProxy 2.6."""
    for name in ("web", "ssh", "other"):
        start_backend(name, f"{sockdir}/{name}.sock", mode="tcp-name")

    def config(port: int) -> str:
        return tcp_config(
            f"""
frontend fe
    bind 127.0.0.1:{port}
    tcp-request inspect-delay 2s
    tcp-request content accept if {{ req.len ge 4 }}
    use_backend ssh if {{ req.payload(0,4) -m bin 5353482d }} {{ src 127.0.0.0/8 }}
    use_backend web if {{ req.payload(0,3) -m str GET }} !{{ src 10.0.0.0/8 }}
    default_backend other
"""
        ) + tcp_backends(sockdir)

    def lines(port: int) -> List[bytes]:
        out = []
        for data in (b"SSH-2.0-x\r\n", b"GET / HTTP/1.0\r\n", b"PUT /x", b"x"):
            with connect(f"127.0.0.1:{port}") as sock:
                sock.sendall(data)
                out.append(recv_line(sock).strip())
        return out

    ours_port, theirs_port = free_port(), free_port()
    start_proxy(config(ours_port), ready=f"127.0.0.1:{ours_port}")
    ours = lines(ours_port)
    hap = run_haproxy(config(theirs_port), sockdir, f"127.0.0.1:{theirs_port}")
    try:
        theirs = lines(theirs_port)
    finally:
        stop_process(hap)
    assert ours == theirs == [b"ssh", b"web", b"other", b"other"]
