"""The real twistd under a process manager's signals: graceful stop, reload, sd_notify."""

from __future__ import annotations

import os
import select
import signal
import socket
import time

import pytest

from tests.integration.backends import HTTPClient, connect, read_until_close, wait_connectable
from tests.integration.proxy import StartProxy

HTTP_CONFIG = """
global
    {global_extra}
defaults
    mode http
    timeout connect 1s
    timeout client 10s
    timeout server 10s
frontend fe
    bind {sockdir}/fe.sock
    default_backend be
backend be
{servers}
"""


ADMIN = "stats socket {sockdir}/admin.sock level admin"


def stats(admin: str, command: str) -> str:
    with connect(f"unix@{admin}") as sock:
        sock.sendall(command.encode() + b"\n")
        return read_until_close(sock).decode()


def wait_server_scur(admin: str, backend: str, server: str, scur: int) -> None:
    """Poll ``show stat`` until ``backend/server`` has ``scur`` streams (a request in flight)."""
    deadline = time.monotonic() + 10
    while True:
        for line in stats(admin, "show stat").splitlines():
            cols = line.split(",")
            if cols[:2] == [backend, server] and cols[4] == str(scur):
                return
        assert time.monotonic() < deadline, f"{backend}/{server} never had {scur} streams"
        select.select([], [], [], 0.02)


def http_config(sockdir: str, servers: str, global_extra: str = "") -> str:
    return HTTP_CONFIG.format(sockdir=sockdir, servers=servers, global_extra=global_extra)


def test_sigterm_lets_a_slow_request_finish_and_refuses_new_ones(
    sockdir: str, start_backend, start_proxy: StartProxy
) -> None:  # type: ignore[no-untyped-def]
    """SIGTERM: the request in flight completes (Connection: close), new connections are
    refused, the socket file is removed and twistd exits 0."""
    start_backend("a", f"{sockdir}/a.sock")
    fe = f"{sockdir}/fe.sock"
    proxy = start_proxy(
        http_config(sockdir, f"    server a {sockdir}/a.sock", ADMIN.format(sockdir=sockdir)),
        ready=f"unix@{fe}",
    )
    idle = HTTPClient(f"unix@{fe}")
    assert idle.request("GET", "/").status == 200  # an idle keep-alive client
    with HTTPClient(f"unix@{fe}") as slow:
        slow.sock.sendall(b"GET /slow?ms=700 HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_server_scur(f"{sockdir}/admin.sock", "be", "a", 1)  # in flight at the backend
        proxy.proc.send_signal(signal.SIGTERM)
        proxy.wait_log("received SIGTERM: stopping gracefully")
        assert not os.path.exists(fe)
        with pytest.raises(OSError):
            connect(f"unix@{fe}", timeout=1.0).close()
        response = slow._read_response()
        assert response.status == 200 and response.body == b"slow 700 ms\n"
        assert response.header("connection") == "close"
    assert idle.sock.recv(1) == b""  # closed by the stop while idle
    idle.close()
    assert proxy.proc.wait(10) == 0
    assert "every connection has finished: exiting" in proxy.log()


def test_second_sigterm_stops_at_once(sockdir: str, start_backend, start_proxy: StartProxy) -> None:  # type: ignore[no-untyped-def]
    """A second SIGTERM while draining exits at once, cutting the request in flight."""
    start_backend("a", f"{sockdir}/a.sock")
    fe = f"{sockdir}/fe.sock"
    proxy = start_proxy(
        http_config(sockdir, f"    server a {sockdir}/a.sock", ADMIN.format(sockdir=sockdir)),
        ready=f"unix@{fe}",
    )
    with HTTPClient(f"unix@{fe}") as slow:
        slow.sock.sendall(b"GET /slow?ms=20000 HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_server_scur(f"{sockdir}/admin.sock", "be", "a", 1)
        proxy.proc.send_signal(signal.SIGTERM)
        proxy.wait_log("received SIGTERM: stopping gracefully")
        proxy.proc.send_signal(signal.SIGTERM)
        assert proxy.proc.wait(10) == 0
        # Cut: closed, or a 5xx when the server side went first during the shutdown.
        assert b"slow" not in read_until_close(slow.sock)
    assert "received SIGTERM again: stopping now, closing 1 connection(s)" in proxy.log()


def test_sd_notify_ready_and_stopping(sockdir: str, start_backend, start_proxy: StartProxy) -> None:  # type: ignore[no-untyped-def]
    """With NOTIFY_SOCKET (abstract @name): READY=1 once listening, STOPPING=1 on SIGTERM."""
    name = f"udsproxy-test-{os.getpid()}-{os.path.basename(sockdir)}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sd:
        sd.bind(b"\0" + name.encode())
        sd.settimeout(10)
        start_backend("a", f"{sockdir}/a.sock")
        fe = f"{sockdir}/fe.sock"
        proxy = start_proxy(
            http_config(sockdir, f"    server a {sockdir}/a.sock"),
            ready=f"unix@{fe}",
            env={"NOTIFY_SOCKET": "@" + name},
        )
        ready = sd.recv(4096).decode()
        assert ready.split("\n")[0] == "READY=1" and "STATUS=serving 1 listener(s)" in ready
        wait_connectable(f"unix@{fe}")
        proxy.proc.send_signal(signal.SIGTERM)
        assert sd.recv(4096).decode().split("\n")[0] == "STOPPING=1"
        assert proxy.proc.wait(10) == 0
