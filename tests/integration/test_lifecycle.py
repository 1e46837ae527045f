"""The real twistd under a process manager's signals: graceful stop, reload, sd_notify."""

from __future__ import annotations

import os
import select
import signal
import socket
import sys
import threading
import time
from typing import Callable, List, Optional

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
        try:
            answer = stats(admin, "show stat")
        except OSError:  # the stats socket is bound just after the frontend (a slow start)
            answer = ""
        for line in answer.splitlines():
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


class ClientLoop(threading.Thread):
    """Requests in a loop until told to stop: one keep-alive connection, or a new one each."""

    def __init__(self, address: str, keep_alive: bool) -> None:
        super().__init__(daemon=True)
        self.address = address
        self.keep_alive = keep_alive
        self.stop = threading.Event()
        self.backends: List[str] = []
        self.failures: List[str] = []

    def run(self) -> None:
        client: Optional[HTTPClient] = None
        try:
            while not self.stop.is_set() and len(self.backends) < 5000:
                try:
                    if client is None:
                        client = HTTPClient(self.address)
                    response = client.request("GET", "/")
                    if response.status != 200:
                        self.failures.append(f"status {response.status}")
                    self.backends.append(response.header("x-backend") or "?")
                    if response.header("connection") == "close" or not self.keep_alive:
                        client.close()
                        client = None
                except Exception as exc:  # every failure counts: the test wants none
                    self.failures.append(repr(exc))
                    if client is not None:
                        client.close()
                    client = None
        finally:
            if client is not None:
                client.close()


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        select.select([], [], [], 0.02)


def test_reload_adding_a_server_refuses_nothing(
    sockdir: str, start_backend, start_proxy: StartProxy
) -> None:  # type: ignore[no-untyped-def]
    """SIGHUP during sequential and concurrent keep-alive client loops: zero failed
    requests, the new server gets traffic; an invalid reload keeps the old config."""
    start_backend("a", f"{sockdir}/a.sock")
    start_backend("b", f"{sockdir}/b.sock")
    fe = f"{sockdir}/fe.sock"
    one = f"    server a {sockdir}/a.sock"
    proxy = start_proxy(http_config(sockdir, one), ready=f"unix@{fe}")
    loops = [ClientLoop(f"unix@{fe}", keep) for keep in (False, True, True)]
    for loop in loops:
        loop.start()
    try:
        wait_for(lambda: all(len(loop.backends) > 20 for loop in loops), "no traffic")
        with open(proxy.cfg_path, "w") as f:
            f.write("backend broken\n    balanse roundrobin\n")
        proxy.proc.send_signal(signal.SIGHUP)
        proxy.wait_log("reload failed (1 error); still serving generation 1")
        with open(proxy.cfg_path, "w") as f:
            f.write(http_config(sockdir, f"{one}\n    server b {sockdir}/b.sock"))
        seen = [len(loop.backends) for loop in loops]
        proxy.proc.send_signal(signal.SIGHUP)
        proxy.wait_log("reloaded")
        wait_for(
            lambda: all("b" in loop.backends[n:] for loop, n in zip(loops, seen)),
            "the new server got no traffic from every client",
        )
    finally:
        for loop in loops:
            loop.stop.set()
        for loop in loops:
            loop.join(10)
    assert [loop.failures for loop in loops] == [[], [], []]
    log = proxy.log()
    assert "received SIGHUP: reloading the configuration" in log
    assert "'balanse'" in log
    assert "servers: 1 kept, 1 new, 0 removed or changed" in log


def test_socket_activation_adopts_inherited_sockets_and_never_unlinks_them(
    sockdir: str, start_backend, start_proxy: StartProxy
) -> None:  # type: ignore[no-untyped-def]
    """LISTEN_FDS as systemd passes them (fd 3 on, LISTEN_PID, LISTEN_FDNAMES): one socket
    adopted by name (bind systemd@web), one by address; neither is chmod-ed nor removed."""
    start_backend("a", f"{sockdir}/a.sock")
    web, other = f"{sockdir}/web.sock", f"{sockdir}/other.sock"
    inherited = []
    for path in (web, other):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(path)
        sock.listen(16)
        os.chmod(path, 0o600)
        inherited.append(sock)
    try:
        fds = [s.fileno() for s in inherited]
        # systemd sets LISTEN_PID to the service's pid: this puts the fds at 3 and 4 and
        # execs twistd under its own pid.
        setup = (
            f"import os, sys; os.dup2({fds[0]}, 3); os.dup2({fds[1]}, 4); "
            "os.environ['LISTEN_PID'] = str(os.getpid()); os.execv(sys.executable, sys.argv[1:])"
        )
        prefix = [sys.executable, "-c", setup]
        config = http_config(sockdir, f"    server a {sockdir}/a.sock").replace(
            f"bind {sockdir}/fe.sock", f"bind systemd@web\n    bind {other} mode 666"
        )
        proxy = start_proxy(
            config,
            prefix=prefix,
            env={"LISTEN_FDS": "2", "LISTEN_FDNAMES": "web:other"},
            pass_fds=fds,
        )
        # (The sockets accept before the proxy runs: their backlog is ours.)
        proxy.wait_log(f"listening on unix@{other}")
        for path in (web, other):
            with HTTPClient(f"unix@{path}") as client:
                assert client.request("GET", "/").header("x-backend") == "a"
        assert os.stat(other).st_mode & 0o777 == 0o600  # not chmod-ed to the bind's 666
        proxy.proc.send_signal(signal.SIGTERM)
        assert proxy.proc.wait(10) == 0
        assert os.path.exists(web) and os.path.exists(other)
    finally:
        for sock in inherited:
            sock.close()


def test_reload_and_soft_stop_signals_let_requests_in_flight_finish(
    sockdir: str, start_backend, start_proxy: StartProxy
) -> None:  # type: ignore[no-untyped-def]
    """logrotate's SIGHUP and haproxy.service's SIGUSR2 reload while a request is in flight,
    which finishes, and the proxy keeps serving; SIGUSR1 in the foreground is a soft stop:
    the request in flight finishes, then exit 0 with the socket files and pid file gone."""
    start_backend("a", f"{sockdir}/a.sock")
    fe, admin, pidfile = f"{sockdir}/fe.sock", f"{sockdir}/admin.sock", f"{sockdir}/u.pid"
    proxy = start_proxy(
        http_config(sockdir, f"    server a {sockdir}/a.sock", ADMIN.format(sockdir=sockdir)),
        ready=f"unix@{fe}",
        twistd_args=["-n", f"--pidfile={pidfile}"],
    )
    assert os.path.exists(pidfile)
    for number, signum in enumerate((signal.SIGHUP, signal.SIGUSR2), start=2):
        with HTTPClient(f"unix@{fe}") as slow:
            slow.sock.sendall(b"GET /slow?ms=500 HTTP/1.1\r\nHost: x\r\n\r\n")
            wait_server_scur(admin, "be", "a", 1)
            proxy.proc.send_signal(signum)
            proxy.wait_log(f"received {signum.name}: reloading the configuration")
            proxy.wait_log(f"generation {number};")
            response = slow._read_response()
            assert response.status == 200 and response.body == b"slow 500 ms\n"
        assert proxy.proc.poll() is None
        with HTTPClient(f"unix@{fe}") as client:
            assert client.request("GET", "/").status == 200
    with HTTPClient(f"unix@{fe}") as slow:
        slow.sock.sendall(b"GET /slow?ms=500 HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_server_scur(admin, "be", "a", 1)
        proxy.proc.send_signal(signal.SIGUSR1)
        proxy.wait_log("received SIGUSR1: stopping gracefully")
        response = slow._read_response()
        assert response.status == 200 and response.body == b"slow 500 ms\n"
        assert response.header("connection") == "close"
    assert proxy.proc.wait(10) == 0
    assert "every connection has finished: exiting" in proxy.log()
    assert not any(os.path.exists(path) for path in (fe, admin, pidfile))
